"""External-API and cache accounting: api_call(), record_api_call(), record_cache().

One counting path: every figure lands in the counters of a BottleneckSpanProcessor.
``api_call()`` makes a CLIENT span and the processor counts it when it ends (exactly as it
counts GenAI and HTTP client spans from other instrumentations); ``record_api_call()`` and
``record_cache()`` have no span and record straight into the *active* processor (see
otelperf._core.sinks).  With no active processor they record nothing and log one warning (per
function), so a library can call them before or without the application setting otelperf up.

>>> with otelperf.api_call("openai", model="gpt-4o") as call:      # doctest: +SKIP
...     call.set_tokens(input=1200, output=300)
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from time import perf_counter_ns
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelperf import _names as N
from otelperf._core import sinks
from otelperf._core.warn import Once
from otelperf.emit.checks import check_count, check_money, check_name
from otelperf.emit.pipeline import INTERRUPTIONS
from otelperf.parsing import show

_log = logging.getLogger("otelperf")
F = TypeVar("F", bound=Callable[..., Any])

# One warning per function when there is nowhere to record (tests clear it).
_warned = Once()


def active_processor() -> sinks.Sink | None:
    """The processor record_cache() and record_api_call() record into (None: they drop).

    >>> active_processor() is None or hasattr(active_processor(), "on_end")
    True
    """
    return sinks.active()


def _no_sink(func: str) -> None:
    _warned.warn(
        func,
        "otelperf.%s(): no BottleneckSpanProcessor is running (call otelperf.configure() "
        "first), so this and later records are dropped until one is", func,
    )  # fmt: skip


def record_cache(cache: str, hit: bool) -> None:
    """Count one lookup in ``cache``: ``otelperf_cache_requests_total{cache, result}``.

    Spans carrying ``otelperf.cache.name`` and ``otelperf.cache.hit`` count the same way.

    >>> value = store.get(key)                                 # doctest: +SKIP
    >>> otelperf.record_cache("sessions", hit=value is not None)  # doctest: +SKIP
    """
    check_name("record_cache", "cache", cache)
    if not isinstance(hit, bool):
        raise TypeError(f"record_cache(hit={show(hit)}): hit must be True or False")
    p = sinks.active()
    if p is None:
        _no_sink("record_cache")
        return
    try:
        p.count_cache(cache, hit)
    except Exception as exc:  # otelperf's own failure: counted, never into the application
        p.errors.error("apis", exc)


def _check_model(func: str, model: object) -> str:
    if model is None:
        return N.UNKNOWN_MODEL
    return check_name(func, "model", model)


def record_api_call(
    api: str,
    *,
    model: str | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost_usd: float | None = None,
    error: BaseException | str | bool | None = None,
    duration_seconds: float | None = None,
    cached_input_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> None:
    """Record an API call that already happened (no span): calls, duration, tokens, cost.

    ``error`` (an exception, an error type, or True) makes the outcome ``error``.  Without
    ``cost_usd`` the cost comes from :func:`set_api_price` (none recorded if no price is set).
    Without ``duration_seconds`` the call is counted but not observed in the duration histogram.
    As the GenAI conventions count them, ``input_tokens`` includes ``cached_input_tokens``
    and ``output_tokens`` includes ``reasoning_tokens`` (OpenAI's ``prompt_tokens`` and
    ``prompt_tokens_details.cached_tokens`` go in as they are).

    >>> otelperf.record_api_call("openai", model="gpt-4o", input_tokens=900,
    ...                          output_tokens=120, duration_seconds=0.8)  # doctest: +SKIP
    """
    f = "record_api_call"
    check_name(f, "api", api)
    m = _check_model(f, model)
    check_count(f, "input_tokens", input_tokens)
    check_count(f, "output_tokens", output_tokens)
    check_part(f, "cached_input_tokens", cached_input_tokens, "input_tokens", input_tokens)
    check_part(f, "reasoning_tokens", reasoning_tokens, "output_tokens", output_tokens)
    cost = None if cost_usd is None else check_money(f, "cost_usd", cost_usd)
    dur = None if duration_seconds is None else check_money(f, "duration_seconds", duration_seconds)
    if error is not None and not isinstance(error, (BaseException, str, bool)):
        raise TypeError(
            f"{f}(error={show(error)}): error must be an exception, a string, or a bool"
        )
    p = sinks.active()
    if p is None:
        _no_sink(f)
        return
    # An interruption passed as the error (a cancelled call) is not a failure (docs/metrics.md).
    failed = bool(error) and not isinstance(error, INTERRUPTIONS)
    try:
        p.count_api(
            api, m, failed, dur, input_tokens, output_tokens, cost, cached_input_tokens,
            reasoning_tokens,
        )  # fmt: skip
    except Exception as exc:  # otelperf's own failure: counted, never into the application
        p.errors.error("apis", exc)


def check_part(func: str, arg: str, value: object, whole_arg: str, whole: int) -> int:
    """A token count that is part of another (cached of input, reasoning of output).

    >>> check_part("set_tokens", "cached_input", 2, "input", 3)
    2
    """
    n = check_count(func, arg, value)
    if n > whole:
        raise ValueError(
            f"{func}({arg}={n}): more than {whole_arg}={whole}; {whole_arg} counts all of "
            f"them, the {arg} ones included"
        )
    return n


# -- api_call() ------------------------------------------------------------------------------


class ApiCall:
    """Handle of one running API call (what ``with api_call(...) as call`` gives)."""

    __slots__ = (
        "_cached", "_cost", "_done", "_in", "_out", "_reasoning", "_span", "_t0", "_token", "api",
        "model",
    )  # fmt: skip

    def __init__(self, api: str, model: str | None) -> None:
        self.api = api
        self.model = model
        self._span: trace.Span = trace.INVALID_SPAN
        self._token: Any = None
        self._t0 = 0
        self._in = 0
        self._out = 0
        self._cached = 0
        self._reasoning = 0
        self._cost: float | None = None
        self._done = False

    def set_tokens(
        self, input: int = 0, output: int = 0, *, cached_input: int = 0, reasoning: int = 0
    ) -> None:
        """Tokens sent and received by this call (replaces earlier values).

        ``input`` counts every input token, the ``cached_input`` ones (served from the
        provider's cache) included; ``output`` every output token, ``reasoning`` included, as
        the GenAI conventions and the providers' usage fields count them.

        >>> with api_call("openai", model="gpt-4o") as call:   # doctest: +SKIP
        ...     call.set_tokens(input=1200, output=300, cached_input=1000, reasoning=100)
        """
        f = "set_tokens"
        tin = check_count(f, "input", input)
        tout = check_count(f, "output", output)
        cached = check_part(f, "cached_input", cached_input, "input", tin)
        reasoning = check_part(f, "reasoning", reasoning, "output", tout)
        span = self._span
        span.set_attribute(N.GENAI_INPUT_TOKENS, tin)
        span.set_attribute(N.GENAI_OUTPUT_TOKENS, tout)
        # The parts only when there are some (or to replace an earlier value).
        if cached or self._cached:
            span.set_attribute(N.GENAI_CACHE_READ_TOKENS, cached)
        if reasoning or self._reasoning:
            span.set_attribute(N.GENAI_REASONING_TOKENS, reasoning)
        self._in, self._out, self._cached, self._reasoning = tin, tout, cached, reasoning

    def set_cost(self, usd: float) -> None:
        """The call's cost in US dollars (otherwise computed from the price table).

        >>> with api_call("maps") as call:   # doctest: +SKIP
        ...     call.set_cost(0.005)
        """
        self._cost = check_money("set_cost", "usd", usd)
        self._span.set_attribute(N.ATTR_API_COST, self._cost)

    @property
    def span(self) -> trace.Span:
        """The CLIENT span of this call."""
        return self._span

    def _start(self) -> None:
        try:
            attrs: dict[str, str] = {N.ATTR_API: self.api}
            if self.model is not None:
                attrs[N.GENAI_REQUEST_MODEL] = self.model
            name = self.api if self.model is None else f"{self.api} {self.model}"
            span = sinks.tracer().start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
            self._span = span
            self._token = otel_context.attach(trace.set_span_in_context(span))
        except Exception as exc:  # never into the application
            _errors_add(exc)
        self._t0 = perf_counter_ns()

    def _finish(self, exc: BaseException | None) -> None:
        t1 = perf_counter_ns()
        if self._done:
            return
        self._done = True
        try:
            span = self._span
            if exc is not None and isinstance(exc, INTERRUPTIONS):
                # Cancelled or interrupted, not failed (docs/metrics.md): outcome success.
                span.set_attribute(N.ATTR_INTERRUPTED, type(exc).__name__)
                exc = None
            if exc is not None:
                span.set_attribute(N.ATTR_ERROR_TYPE, type(exc).__name__)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            if self._token is not None:
                otel_context.detach(self._token)
                self._token = None
            if span.is_recording():
                span.end()  # the processor on this span's provider counts it
            else:
                # No SDK provider recorded the span: count the call directly instead.
                p = sinks.active()
                if p is not None:
                    model = self.model or N.UNKNOWN_MODEL
                    dur = (t1 - self._t0) / 1e9
                    p.count_api(self.api, model, exc is not None, dur, self._in, self._out,
                                self._cost, self._cached, self._reasoning)  # fmt: skip
        except Exception as e:
            _errors_add(e)

    def __enter__(self) -> ApiCall:
        self._start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finish(ev)

    async def __aenter__(self) -> ApiCall:
        self._start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finish(ev)


def _errors_add(exc: BaseException) -> None:
    p = sinks.active()
    if p is not None:
        p.errors.error("apis", exc)
    else:
        _log.debug("otelperf apis failed", exc_info=exc)


class _ApiCallFactory:
    """What ``api_call(...)`` returns: a context manager (sync or async) and a decorator."""

    __slots__ = ("_call", "api", "model")

    def __init__(self, api: str, model: str | None) -> None:
        self.api = api
        self.model = model
        self._call: ApiCall | None = None

    def __enter__(self) -> ApiCall:
        call = ApiCall(self.api, self.model)
        self._call = call
        return call.__enter__()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        call, self._call = self._call, None
        if call is not None:
            call._finish(ev)

    async def __aenter__(self) -> ApiCall:
        return self.__enter__()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(et, ev, tb)

    def __call__(self, func: F) -> F:
        if not callable(func):
            raise TypeError(f"api_call() can only decorate a callable, got {show(func)}")
        api, model = self.api, self.model
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                async with ApiCall(api, model):
                    return await func(*args, **kwargs)

            return awrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with ApiCall(api, model):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def api_call(api: str, *, model: str | None = None) -> _ApiCallFactory:
    """Time an external API call as a CLIENT span; a context manager and a decorator.

    The span carries ``otelperf.api`` and the GenAI attributes (``gen_ai.request.model``,
    ``gen_ai.usage.*``), so the processor counts it like any GenAI client span: calls and
    duration by outcome, tokens, and cost (given with ``set_cost`` or from the price table).

    >>> with otelperf.api_call("openai", model="gpt-4o") as call:   # doctest: +SKIP
    ...     reply = client.chat(...)
    ...     call.set_tokens(input=reply.usage.input, output=reply.usage.output)
    >>> @otelperf.api_call("geocoder")                              # doctest: +SKIP
    ... def geocode(address): ...
    """
    check_name("api_call", "api", api)
    if model is not None:
        check_name("api_call", "model", model)
    return _ApiCallFactory(api, model)
