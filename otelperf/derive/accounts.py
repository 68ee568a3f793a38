"""Cache and external-API accounting: from CLIENT and cache spans, and from span-less records.

An API is the span's ``otelperf.api``, else its GenAI provider, else the ``host[:port]`` of
the server a client span names under either HTTP convention (``naming.http_authority``).
Tokens are split into four disjoint types (input, cached_input, output, reasoning) from the
current and the older GenAI attribute names, so none is counted or priced twice.

The span path (:meth:`Accounts.account`, called by the trace table for an ended span that
carries cache attributes or is a CLIENT span) and the span-less path (``record_cache()`` and
``record_api_call()`` through the processor) end in the same two counting methods, so one
figure never depends on how it was recorded.  Label sets are capped: past ``2 *
max_operations`` caches or ``max_operations`` (api, model) pairs, further ones are
``__overflow__`` (counted as component ``apis``).
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.metrics import Histogram, Observation
from opentelemetry.trace import SpanKind

from otelperf import _names as N
from otelperf._core.labels import safe_label
from otelperf._core.selfmetrics import Tally
from otelperf.derive.naming import http_authority, http_status
from otelperf.emit.checks import MAX_COUNT
from otelperf.emit.prices import cost_of

_CLIENT = SpanKind.CLIENT
_CACHE_NAME = N.ATTR_CACHE_NAME
OVERFLOW_COMPONENT = "apis"


def _tokens(attrs: Any, name: str, old_name: str) -> int:
    """A token count from the current attribute name, else the older one; 0 when neither
    holds an int >= 0."""
    n = attrs.get(name)
    if n is None:
        n = attrs.get(old_name)
    # Bounded like the API's arguments (MAX_COUNT): an absurd attribute must not reach the
    # price arithmetic or a scrape-time callback.
    return n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_COUNT else 0


def _cost(cost: Any) -> float | None:
    """A span's cost attribute when it is a finite number >= 0."""
    if isinstance(cost, bool) or not isinstance(cost, (int, float)):
        return None
    try:
        x = float(cost)
    except OverflowError:
        return None
    return x if 0 <= x < float("inf") else None


class Count:
    """One labelled counter value (calls, tokens, cost, lookups)."""

    __slots__ = ("attrs", "value")

    def __init__(self, attrs: dict[str, str], value: float = 0) -> None:
        self.attrs = attrs
        self.value = value


class Accounts:
    """The cache and API tables; ``lock`` is the totals' lock (one lock for all totals)."""

    def __init__(
        self, max_operations: int, lock: threading.Lock, overflows: Tally, api_duration: Histogram
    ) -> None:
        self.max_operations = max_operations
        self.lock = lock
        self.overflows = overflows
        self.api_duration = api_duration
        self.closed = False
        self.cache: dict[tuple[str, str], Count] = {}
        self.api_keys: dict[tuple[str, str], tuple[str, str]] = {}
        self.api_calls: dict[tuple[str, str, str], Count] = {}
        self.api_tokens: dict[tuple[str, str, str], Count] = {}
        self.api_cost: dict[tuple[str, str], Count] = {}

    def account(self, span: Any, attrs: Any, kind: Any) -> None:
        """Count an ended span's cache lookup and, for a CLIENT span, its API call."""
        cache = attrs.get(_CACHE_NAME)
        if cache is not None:
            hit = attrs.get(N.ATTR_CACHE_HIT)
            if isinstance(cache, str) and cache and isinstance(hit, bool):
                self.count_cache(cache, hit)
        if kind is not _CLIENT:
            return
        api = attrs.get(N.ATTR_API) or attrs.get(N.GENAI_PROVIDER) or attrs.get(N.GENAI_SYSTEM)
        if api:
            error = N.ATTR_ERROR_TYPE in attrs
        else:
            # Any other client span that names its server, under the old or the stable HTTP
            # conventions: api = host[:port].
            api = http_authority(attrs)
            if not api:
                return
            status = http_status(attrs)
            etype = attrs.get(N.ATTR_ERROR_TYPE)
            if status is None:
                error = etype is not None
            else:
                # The stable conventions set error.type to the status code of every 4xx and
                # 5xx; the old ones set nothing.  So that both count alike, the code decides
                # (>= 500 or 429), and error.type only when it names something else.
                error = (
                    status >= 500
                    or status == 429
                    or (etype is not None and str(etype) != str(status))
                )
        model = attrs.get(N.GENAI_REQUEST_MODEL) or attrs.get(N.GENAI_RESPONSE_MODEL)
        tin = _tokens(attrs, N.GENAI_INPUT_TOKENS, N.GENAI_PROMPT_TOKENS_OLD)
        tout = _tokens(attrs, N.GENAI_OUTPUT_TOKENS, N.GENAI_COMPLETION_TOKENS_OLD)
        cached = _tokens(attrs, N.GENAI_CACHE_READ_TOKENS, N.GENAI_CACHE_READ_TOKENS_OLD)
        reasoning = _tokens(attrs, N.GENAI_REASONING_TOKENS, N.GENAI_REASONING_TOKENS_OLD)
        cost = attrs.get(N.ATTR_API_COST)
        start, end = span.start_time, span.end_time
        dur = None
        if start is not None and end is not None and end >= start:
            dur = (end - start) / 1e9
        self.count_api(
            str(api),
            str(model) if model else N.UNKNOWN_MODEL,
            error,
            dur,
            tin,
            tout,
            _cost(cost),
            cached,
            reasoning,
        )

    def count_cache(self, cache: str, hit: bool) -> None:
        """One lookup in ``cache``."""
        if self.closed:
            return
        result = N.RESULT_HIT if hit else N.RESULT_MISS
        with self.lock:
            key = (cache, result)
            c = self.cache.get(key)
            if c is None:
                if len(self.cache) >= 2 * self.max_operations:
                    self.overflows.add(OVERFLOW_COMPONENT)
                    key = (N.OVERFLOW, result)
                    c = self.cache.get(key)
                if c is None:
                    c = self.cache[key] = Count({N.CACHE: safe_label(key[0]), N.RESULT: result})
            c.value += 1

    def count_api(
        self,
        api: str,
        model: str,
        error: bool,
        duration: float | None,
        input_tokens: int,
        output_tokens: int,
        cost: float | None,
        cached_input_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> None:
        """One API call: calls by outcome, tokens by type, cost (priced if not given), duration.

        ``input_tokens`` includes ``cached_input_tokens`` and ``output_tokens`` includes
        ``reasoning_tokens``, as the GenAI conventions count them; they are split into the
        four disjoint token types here.  A part larger than its whole means the two were
        counted apart: both are then taken as they are."""
        if self.closed:
            return
        outcome = N.OUTCOME_ERROR if error else N.OUTCOME_SUCCESS
        if cached_input_tokens <= input_tokens:
            input_tokens -= cached_input_tokens
        if reasoning_tokens <= output_tokens:
            output_tokens -= reasoning_tokens
        tokens = (
            (N.TOKEN_INPUT, input_tokens),
            (N.TOKEN_OUTPUT, output_tokens),
            (N.TOKEN_CACHED_INPUT, cached_input_tokens),
            (N.TOKEN_REASONING, reasoning_tokens),
        )
        if cost is None and (input_tokens or output_tokens or cached_input_tokens
                             or reasoning_tokens):  # fmt: skip
            cost = cost_of(
                api, model, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens
            )
        with self.lock:
            labels = self.api_keys.get((api, model))
            if labels is None:
                if len(self.api_keys) >= self.max_operations:
                    self.overflows.add(OVERFLOW_COMPONENT)
                    labels = (N.OVERFLOW, N.OVERFLOW)
                else:
                    labels = self.api_keys[(api, model)] = (safe_label(api), safe_label(model))
            a, m = labels
            key3 = (a, m, outcome)
            calls = self.api_calls.get(key3)
            if calls is None:
                attrs = {N.API: a, N.MODEL: m, N.OUTCOME: outcome}
                calls = self.api_calls[key3] = Count(attrs)
            calls.value += 1
            for ttype, n in tokens:
                if n:
                    tk = (a, m, ttype)
                    c = self.api_tokens.get(tk)
                    if c is None:
                        c = self.api_tokens[tk] = Count({N.API: a, N.MODEL: m, N.TOKEN_TYPE: ttype})
                    c.value += n
            if cost is not None:
                c = self.api_cost.get(labels)
                if c is None:
                    c = self.api_cost[labels] = Count({N.API: a, N.MODEL: m}, 0.0)
                c.value += cost
        if duration is not None:
            self.api_duration.record(duration, calls.attrs)

    # -- readers of the observable counters (scrape time) ----------------------------------------
    def _observe(self, table: dict[Any, Count]) -> list[Observation]:
        with self.lock:
            return [Observation(v.value, v.attrs) for v in table.values()]

    def observe_cache(self) -> list[Observation]:
        return self._observe(self.cache)

    def observe_calls(self) -> list[Observation]:
        return self._observe(self.api_calls)

    def observe_tokens(self) -> list[Observation]:
        return self._observe(self.api_tokens)

    def observe_cost(self) -> list[Observation]:
        return self._observe(self.api_cost)
