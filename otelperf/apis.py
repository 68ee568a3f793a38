"""External-API and cache accounting: api_call(), record_api_call(), record_cache(), prices.

One counting path: every figure lands in the counters of a :class:`BottleneckSpanProcessor`.
``api_call()`` makes a CLIENT span and the processor counts it when it ends (exactly as it
counts GenAI and HTTP client spans from other instrumentations); ``record_api_call()`` and
``record_cache()`` have no span and record straight into the *active* processor: the one
``configure()`` installed or, without configure(), the most recently created processor that is
still running.  With no active processor they record nothing and log one warning (per
function), so a library can call them before or without the application setting otelperf up.

Prices are per (api, model), in US dollars per million tokens; a call's cost is computed from
its tokens when it does not carry one.

>>> otelperf.set_api_price("openai", "gpt-4o", input_per_million_usd=2.5,
...                        output_per_million_usd=10.0)          # doctest: +SKIP
>>> with otelperf.api_call("openai", model="gpt-4o") as call:      # doctest: +SKIP
...     call.set_tokens(input=1200, output=300)
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import threading
import weakref
from collections.abc import Callable
from time import perf_counter_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelperf import _names as N

if TYPE_CHECKING:
    from otelperf.processor import BottleneckSpanProcessor

_log = logging.getLogger("otelperf")
F = TypeVar("F", bound=Callable[..., Any])

# GenAI semantic-convention attributes (what GenAI client instrumentations write; api_call()
# writes the same ones so one reader serves both).
GENAI_PROVIDER = "gen_ai.provider.name"
GENAI_SYSTEM = "gen_ai.system"  # the older spelling of the provider
GENAI_REQUEST_MODEL = "gen_ai.request.model"
GENAI_RESPONSE_MODEL = "gen_ai.response.model"
GENAI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GENAI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
SERVER_ADDRESS = "server.address"
HTTP_STATUS = "http.response.status_code"

# -- prices ----------------------------------------------------------------------------------

_prices: dict[tuple[str, str], tuple[float, float]] = {}
_prices_lock = threading.Lock()


def _name_arg(func: str, arg: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{func}({arg}={value!r}): {arg} must be a non-empty string")
    return value


def _money_arg(func: str, arg: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{func}({arg}={value!r}): {arg} must be a number")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{func}({arg}={value!r}): {arg} must be a finite number >= 0")
    return float(value)


def _count_arg(func: str, arg: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{func}({arg}={value!r}): {arg} must be an int")
    if value < 0:
        raise ValueError(f"{func}({arg}={value!r}): {arg} must be >= 0")
    return value


def set_api_price(
    api: str, model: str, *, input_per_million_usd: float, output_per_million_usd: float
) -> None:
    """Set the price of ``model`` on ``api``; costs of calls without one are computed from it.

    >>> set_api_price("openai", "gpt-4o", input_per_million_usd=2.5,
    ...               output_per_million_usd=10.0)
    >>> prices()[("openai", "gpt-4o")]
    (2.5, 10.0)
    """
    _name_arg("set_api_price", "api", api)
    _name_arg("set_api_price", "model", model)
    i = _money_arg("set_api_price", "input_per_million_usd", input_per_million_usd)
    o = _money_arg("set_api_price", "output_per_million_usd", output_per_million_usd)
    with _prices_lock:
        _prices[(api, model)] = (i, o)


def prices() -> dict[tuple[str, str], tuple[float, float]]:
    """A copy of the price table: ``{(api, model): (input_per_million, output_per_million)}``.

    >>> isinstance(prices(), dict)
    True
    """
    with _prices_lock:
        return dict(_prices)


def clear_prices() -> None:
    """Forget every price set with :func:`set_api_price` (tests, reconfiguration)."""
    with _prices_lock:
        _prices.clear()


def cost_of(api: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Cost in USD from the price table, None when (api, model) has no price.

    >>> set_api_price("acme", "m1", input_per_million_usd=1.0, output_per_million_usd=2.0)
    >>> cost_of("acme", "m1", 1_000_000, 500_000)
    2.0
    """
    p = _prices.get((api, model))
    if p is None:
        return None
    return (input_tokens * p[0] + output_tokens * p[1]) / 1_000_000


# -- where span-less records go --------------------------------------------------------------

_sink_lock = threading.Lock()
_configured: BottleneckSpanProcessor | None = None
_live: list[weakref.ref[BottleneckSpanProcessor]] = []  # weak: a dropped processor is no sink
_warned: set[str] = set()


def _after_fork() -> None:
    # A thread of the parent may have held a lock at fork(); the child starts with fresh ones.
    global _sink_lock, _prices_lock
    _sink_lock = threading.Lock()
    _prices_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _register(p: BottleneckSpanProcessor) -> None:
    with _sink_lock:
        _live[:] = [r for r in _live if r() is not None]
        _live.append(weakref.ref(p))


def _unregister(p: BottleneckSpanProcessor) -> None:
    global _configured
    with _sink_lock:
        _live[:] = [r for r in _live if r() is not None and r() is not p]
        if _configured is p:
            _configured = None


def _set_configured(p: BottleneckSpanProcessor | None) -> None:
    global _configured
    with _sink_lock:
        _configured = p


def active_processor() -> BottleneckSpanProcessor | None:
    """The processor record_cache() and record_api_call() record into (None: they drop).

    >>> active_processor() is None or hasattr(active_processor(), "on_end")
    True
    """
    p = _configured
    if p is not None:
        return p
    for ref in reversed(_live):
        live = ref()
        if live is not None:
            return live
    return None


def _no_sink(func: str) -> None:
    if func not in _warned:
        _warned.add(func)
        _log.warning(
            "otelperf.%s(): no BottleneckSpanProcessor is running (call otelperf.configure() "
            "first), so this and later records are dropped until one is", func,
        )  # fmt: skip


def record_cache(cache: str, hit: bool) -> None:
    """Count one lookup in ``cache``: ``otelperf_cache_requests_total{cache, result}``.

    Spans carrying ``otelperf.cache.name`` and ``otelperf.cache.hit`` count the same way.

    >>> value = store.get(key)                                 # doctest: +SKIP
    >>> otelperf.record_cache("sessions", hit=value is not None)  # doctest: +SKIP
    """
    _name_arg("record_cache", "cache", cache)
    if not isinstance(hit, bool):
        raise TypeError(f"record_cache(hit={hit!r}): hit must be True or False")
    p = active_processor()
    if p is None:
        _no_sink("record_cache")
        return
    p._count_cache(cache, hit)


def _check_model(func: str, model: object) -> str:
    if model is None:
        return N.UNKNOWN_MODEL
    return _name_arg(func, "model", model)


def record_api_call(
    api: str,
    *,
    model: str | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost_usd: float | None = None,
    error: BaseException | str | bool | None = None,
    duration_seconds: float | None = None,
) -> None:
    """Record an API call that already happened (no span): calls, duration, tokens, cost.

    ``error`` (an exception, an error type, or True) makes the outcome ``error``.  Without
    ``cost_usd`` the cost comes from :func:`set_api_price` (none recorded if no price is set).
    Without ``duration_seconds`` the call is counted but not observed in the duration histogram.

    >>> otelperf.record_api_call("openai", model="gpt-4o", input_tokens=900,
    ...                          output_tokens=120, duration_seconds=0.8)  # doctest: +SKIP
    """
    f = "record_api_call"
    _name_arg(f, "api", api)
    m = _check_model(f, model)
    _count_arg(f, "input_tokens", input_tokens)
    _count_arg(f, "output_tokens", output_tokens)
    cost = None if cost_usd is None else _money_arg(f, "cost_usd", cost_usd)
    dur = None if duration_seconds is None else _money_arg(f, "duration_seconds", duration_seconds)
    if error is not None and not isinstance(error, (BaseException, str, bool)):
        raise TypeError(f"{f}(error={error!r}): error must be an exception, a string, or a bool")
    p = active_processor()
    if p is None:
        _no_sink(f)
        return
    p._count_api(api, m, bool(error), dur, input_tokens, output_tokens, cost)


# -- api_call() ------------------------------------------------------------------------------


def _tracer() -> trace.Tracer:
    from otelperf.telemetry import current

    t = current()
    tp = getattr(t, "tracer_provider", None)
    if tp is not None:
        return tp.get_tracer(N.TRACER_NAME)  # type: ignore[no-any-return]
    return trace.get_tracer(N.TRACER_NAME)


class ApiCall:
    """Handle of one running API call (what ``with api_call(...) as call`` gives)."""

    __slots__ = ("_cost", "_done", "_in", "_out", "_span", "_t0", "_token", "api", "model")

    def __init__(self, api: str, model: str | None) -> None:
        self.api = api
        self.model = model
        self._span: trace.Span = trace.INVALID_SPAN
        self._token: Any = None
        self._t0 = 0
        self._in = 0
        self._out = 0
        self._cost: float | None = None
        self._done = False

    def set_tokens(self, input: int = 0, output: int = 0) -> None:
        """Tokens sent and received by this call (replaces earlier values).

        >>> with api_call("openai", model="gpt-4o") as call:   # doctest: +SKIP
        ...     call.set_tokens(input=1200, output=300)
        """
        self._in = _count_arg("set_tokens", "input", input)
        self._out = _count_arg("set_tokens", "output", output)
        self._span.set_attribute(GENAI_INPUT_TOKENS, self._in)
        self._span.set_attribute(GENAI_OUTPUT_TOKENS, self._out)

    def set_cost(self, usd: float) -> None:
        """The call's cost in US dollars (otherwise computed from the price table).

        >>> with api_call("maps") as call:   # doctest: +SKIP
        ...     call.set_cost(0.005)
        """
        self._cost = _money_arg("set_cost", "usd", usd)
        self._span.set_attribute(N.ATTR_API_COST, self._cost)

    @property
    def span(self) -> trace.Span:
        """The CLIENT span of this call."""
        return self._span

    def _start(self) -> None:
        try:
            attrs: dict[str, str] = {N.ATTR_API: self.api}
            if self.model is not None:
                attrs[GENAI_REQUEST_MODEL] = self.model
            name = self.api if self.model is None else f"{self.api} {self.model}"
            span = _tracer().start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
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
                p = active_processor()
                if p is not None:
                    model = self.model or N.UNKNOWN_MODEL
                    dur = (t1 - self._t0) / 1e9
                    p._count_api(self.api, model, exc is not None, dur, self._in, self._out,
                                 self._cost)  # fmt: skip
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
    p = active_processor()
    if p is not None:
        p._errors.error("apis", exc)
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
            raise TypeError(f"api_call() can only decorate a callable, got {func!r}")
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
    _name_arg("api_call", "api", api)
    if model is not None:
        _name_arg("api_call", "model", model)
    return _ApiCallFactory(api, model)
