"""measure(): one callable that is a decorator and a context manager emitting a span and metrics.

Per-call cost is the product (see BENCHMARKS.md), so everything that can be decided once is:
an operation's metric attributes are frozen dicts built when the name is first seen, a decorated
function binds its operation's state on first call and rebinds only when configure() changes the
pipeline, and the span is started with ``tracer.start_span`` plus one context attach rather than
the two generator-based context managers behind ``start_as_current_span``.  Items, bytes, CPU
and in-flight are plain integers under one lock, read by observable instruments at scrape time,
so the only synchronous OTel instrument call per operation is the duration histogram.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable
from contextvars import Token
from time import perf_counter_ns, thread_time_ns
from types import TracebackType
from typing import Any, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from otelperf import _names as N
from otelperf._errors import Tally
from otelperf._per_provider import PerProvider
from otelperf.resources import current_rss

_log = logging.getLogger("otelperf")

F = TypeVar("F", bound=Callable[..., Any])

MAX_ERROR_TYPES = 50  # distinct error_type values per operation before __overflow__
_COMPONENT = "instrument"

_attach = otel_context.attach
_detach = otel_context.detach
_set_span = trace.set_span_in_context
_NO_CONTEXT = otel_context.Context()


class _OpStats:
    """Per-operation state of one pipeline: frozen attributes and running totals."""

    __slots__ = (
        "bytes",
        "cpu_ns",
        "error_attrs",
        "in_flight",
        "items",
        "label",
        "ok_attrs",
        "op_attrs",
        "overflow",
        "pipeline",
    )  # fmt: skip

    def __init__(self, label: str, pipeline: _Pipeline, overflow: bool = False) -> None:
        self.label = label
        self.pipeline = pipeline
        self.op_attrs = {N.OPERATION: label}
        # error_type is omitted on success (as OTel's error.type is); the Prometheus exporter
        # back-fills it with "", and one attribute fewer is measurably cheaper per record().
        self.ok_attrs = {N.OPERATION: label, N.OUTCOME: N.OUTCOME_SUCCESS}
        self.error_attrs: dict[str, dict[str, str]] = {}
        self.in_flight = 0
        self.items = 0
        self.bytes = 0
        self.cpu_ns = 0
        self.overflow = overflow

    def attrs_for_error(self, error_type: str) -> dict[str, str]:
        attrs = self.error_attrs.get(error_type)
        if attrs is None:
            if len(self.error_attrs) >= MAX_ERROR_TYPES:
                error_type = N.OVERFLOW
                attrs = self.error_attrs.get(error_type)
            if attrs is None:
                attrs = {
                    N.OPERATION: self.label,
                    N.OUTCOME: N.OUTCOME_ERROR,
                    N.ERROR_TYPE: error_type,
                }
                self.error_attrs[error_type] = attrs
        return attrs


class _Instruments:
    """measure()'s instruments on one meter provider; the callbacks read its current pipeline.

    Shared per provider (see otelperf._per_provider): a second configure() on the application's
    provider must reuse them, or the SDK would keep the first pipeline's callbacks.
    """

    def __init__(self, meter_provider: Any, duration_buckets: Iterable[float]) -> None:
        meter = meter_provider.get_meter(N.METER_NAME)
        self.current: _Pipeline | None = None
        d = N.OPERATION_DURATION
        self.histogram = meter.create_histogram(
            d.otel, unit=d.unit, description=d.help,
            explicit_bucket_boundaries_advisory=list(duration_buckets),
        )  # fmt: skip
        m = N.OPERATION_MEMORY_DELTA
        self.memory_histogram = meter.create_histogram(
            m.otel, unit=m.unit, description=m.help,
            explicit_bucket_boundaries_advisory=list(N.DEFAULT_MEMORY_BUCKETS),
        )  # fmt: skip
        for metric, field in (
            (N.OPERATION_ITEMS, "items"),
            (N.OPERATION_BYTES, "bytes"),
            (N.OPERATION_CPU, "cpu_ns"),
            (N.INTERNAL_ERRORS, "errors"),
            (N.CARDINALITY_OVERFLOW, "overflows"),
        ):
            meter.create_observable_counter(
                metric.otel, callbacks=[self._callback(field)], unit=metric.unit,
                description=metric.help,
            )  # fmt: skip
        g = N.OPERATION_IN_FLIGHT
        meter.create_observable_up_down_counter(
            g.otel, callbacks=[self._callback("in_flight")], unit=g.unit, description=g.help
        )

    def _callback(self, field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            p = self.current
            if p is None:
                return []
            if field == "errors":
                return p.errors.observe(options)
            if field == "overflows":
                return p.overflows.observe(options)
            if field == "cpu_ns":
                return p._observe(field, 1e-9)
            return p._observe(field, skip_zero=field != "in_flight")

        return observe


# The first pipeline on a provider fixes the bucket boundaries there (the SDK keeps the first
# instrument of a name).
_instruments: PerProvider[_Instruments] = PerProvider(_Instruments)


class _Pipeline:
    """What measure() records into: a tracer, the instruments and the operation table.

    One per configure() (or one built lazily over the global OTel providers when configure()
    was never called, so a library can be decorated before the application sets OTel up).
    """

    def __init__(
        self,
        tracer: Tracer,
        meter_provider: Any,
        *,
        max_operations: int = 1000,
        duration_buckets: Iterable[float] = N.DEFAULT_DURATION_BUCKETS,
        track_cpu: bool = False,
        enabled: bool = True,
    ) -> None:
        self.tracer = tracer
        self.enabled = enabled
        self.max_operations = max_operations
        self.track_cpu = track_cpu
        self.lock = threading.Lock()
        self.ops: dict[str, _OpStats] = {}
        self.overflow = _OpStats(N.OVERFLOW, self, overflow=True)
        self.errors = Tally(N.COMPONENT)
        self.overflows = Tally(N.COMPONENT)
        self._warned_overflow = False
        inst = _instruments.get(meter_provider, duration_buckets)
        inst.current = self
        self.histogram = inst.histogram
        self.memory_histogram = inst.memory_histogram

    # -- operation table (bounded) ---------------------------------------------------------
    def stats(self, name: str) -> _OpStats:
        s = self.ops.get(name)
        if s is not None:
            return s
        with self.lock:
            s = self.ops.get(name)
            if s is None:
                if len(self.ops) >= self.max_operations:
                    if not self._warned_overflow:
                        self._warned_overflow = True
                        _log.warning(
                            "otelperf: more than %d distinct operation names; further ones are "
                            "recorded as operation=%r (raise max_operations or "
                            "OTELPERF_MAX_OPERATIONS if this is expected)",
                            self.max_operations, N.OVERFLOW,
                        )  # fmt: skip
                    return self.overflow
                s = _OpStats(name, self)
                self.ops[name] = s
            return s

    def _all(self) -> list[_OpStats]:
        with self.lock:
            out = list(self.ops.values())
        if (
            self.overflow.in_flight
            or self.overflow.items
            or self.overflow.bytes
            or self.overflow.cpu_ns
        ):
            out.append(self.overflow)
        return out

    def _observe(self, field: str, scale: float = 1.0, skip_zero: bool = True) -> list[Observation]:
        out = []
        for s in self._all():
            v = getattr(s, field)
            if v or not skip_zero:
                out.append(Observation(v * scale if scale != 1.0 else v, s.op_attrs))
        return out

    # -- per call ----------------------------------------------------------------------------
    def start(self, stats: _OpStats, name: str, cpu: bool, memory: bool) -> Operation:
        op = Operation(name)
        op._stats = stats
        try:
            span = self.tracer.start_span(name)
            op._span = span
            op._token = _attach(_set_span(span))
            with self.lock:
                stats.in_flight += 1
            if memory:
                op._rss0 = current_rss()
            if cpu and self.track_cpu:
                op._cpu0 = thread_time_ns()
            op._t0 = perf_counter_ns()
        except Exception as exc:  # never into the application
            self.errors.error(_COMPONENT, exc)
            op._failed = True
        return op

    def finish(self, op: Operation, exc: BaseException | None) -> None:
        t1 = perf_counter_ns()
        if op._failed or op._done:
            return
        op._done = True
        try:
            cpu = thread_time_ns() - op._cpu0 + op._cpu_acc if op._cpu0 >= 0 else op._cpu_acc
            stats = op._stats
            span = op._span
            if exc is None:
                attrs = stats.ok_attrs
            else:
                error_type = type(exc).__name__
                attrs = stats.attrs_for_error(error_type)
                span.set_attribute(N.ATTR_ERROR_TYPE, error_type)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"))
            if op._items:
                span.set_attribute(N.ATTR_ITEMS, op._items)
            if op._bytes:
                span.set_attribute(N.ATTR_BYTES, op._bytes)
            if op._token is not None:
                _detach(op._token)
                op._token = None
            span.end()
            # An explicit empty context: the exemplar filter then skips its reservoir work
            # (the Prometheus text format carries no exemplars), a measurable saving per call.
            self.histogram.record((t1 - op._t0 + op._elapsed) / 1e9, attrs, _NO_CONTEXT)
            if op._rss0 >= 0:
                # OTel histograms drop negative values (with a warning per call), so a release
                # records 0: the histogram is the growth an operation caused.
                grown = max(0, current_rss() - op._rss0)
                self.memory_histogram.record(grown, stats.op_attrs, _NO_CONTEXT)
            with self.lock:
                stats.in_flight -= 1
                stats.items += op._items
                stats.bytes += op._bytes
                if cpu > 0:
                    stats.cpu_ns += cpu
            if stats.overflow:
                self.overflows.add(N.OPERATION)
        except Exception as e:
            self.errors.error(_COMPONENT, e)


class Operation:
    """Handle of one running operation: ``with measure("parse") as op: op.add_items(3)``."""

    __slots__ = (
        "_bytes",
        "_cpu0",
        "_cpu_acc",
        "_done",
        "_elapsed",
        "_failed",
        "_items",
        "_rss0",
        "_span",
        "_stats",
        "_t0",
        "_token",
        "name",
    )  # fmt: skip

    _stats: _OpStats

    def __init__(self, name: str) -> None:
        self.name = name
        self._span: Span = trace.INVALID_SPAN
        self._token: Token[otel_context.Context] | None = None
        self._t0 = 0
        self._cpu0 = -1
        self._cpu_acc = 0
        self._elapsed = 0
        self._rss0 = -1
        self._items = 0
        self._bytes = 0
        self._failed = False
        self._done = False

    def add_items(self, n: int) -> None:
        """Count ``n`` items (rows, records, messages) processed by this operation.

        >>> with measure("parse") as op:
        ...     op.add_items(3)
        """
        if type(n) is not int or n < 0:
            raise _bad_count("add_items", n)
        self._items += n

    def add_bytes(self, n: int) -> None:
        """Count ``n`` bytes processed by this operation.

        >>> with measure("download") as op:
        ...     op.add_bytes(1024)
        """
        if type(n) is not int or n < 0:
            raise _bad_count("add_bytes", n)
        self._bytes += n

    def set_attribute(self, key: str, value: Any) -> None:
        """Set an attribute on this operation's span (not a metric label: no cardinality cost).

        >>> with measure("query") as op:
        ...     op.set_attribute("db.table", "orders")
        """
        if not isinstance(key, str) or not key:
            raise TypeError(f"set_attribute(key={key!r}): key must be a non-empty string")
        self._span.set_attribute(key, value)

    @property
    def span(self) -> Span:
        """The OTel span of this operation."""
        return self._span


def _bad_count(method: str, n: object) -> Exception:
    if isinstance(n, int) and not isinstance(n, bool):
        return ValueError(f"{method}(n={n}): n must be >= 0")
    return TypeError(f"{method}(n={n!r}): n must be an int, got {type(n).__name__}")


# -- the current pipeline ------------------------------------------------------------------------


class _State:
    """The pipeline measure() records into; ``gen`` changes whenever it is replaced."""

    __slots__ = ("gen", "lock", "pipeline")

    def __init__(self) -> None:
        self.pipeline: _Pipeline | None = None
        self.gen = 0
        self.lock = threading.Lock()


_STATE = _State()


def _install(pipeline: _Pipeline | None) -> None:
    with _STATE.lock:
        _STATE.pipeline = pipeline
        _STATE.gen += 1


def _current_pipeline() -> _Pipeline:
    p = _STATE.pipeline
    if p is None:
        with _STATE.lock:
            p = _STATE.pipeline
            if p is None:
                # configure() was never called: record into whatever global providers the
                # application has (the API proxies forward once it sets real ones).
                p = _Pipeline(trace.get_tracer(N.TRACER_NAME), metrics.get_meter_provider())
                _STATE.pipeline = p
                _STATE.gen += 1
    return p


class _Site:
    """One decorated function or measure(name) object: its name and its bound stats."""

    __slots__ = ("gen", "memory", "name", "stats")

    def __init__(self, name: str, memory: bool) -> None:
        self.name = name
        self.memory = memory
        self.gen = -1
        self.stats: _OpStats | None = None

    def bind(self) -> _OpStats | None:
        p = _current_pipeline()
        gen = _STATE.gen
        self.stats = p.stats(self.name) if p.enabled else None
        self.gen = gen
        return self.stats


# -- measure() -----------------------------------------------------------------------------------


# ``with measure("parse")`` makes a new object per block; sharing its _Site across blocks keeps
# the name's binding (stats lookup) from being redone on every call. Bounded: names past the
# cap get a fresh, unshared site (correct, just not cached).
_SITES_MAX = 1024
_sites: dict[tuple[str, bool], _Site] = {}


def _site_for(name: str, memory: bool) -> _Site:
    key = (name, memory)
    site = _sites.get(key)
    if site is None:
        site = _Site(name, memory)
        if len(_sites) < _SITES_MAX:
            _sites[key] = site
    return site


class _Measure:
    """What ``measure("name")`` returns: a decorator and a (sync or async) context manager."""

    __slots__ = ("_op", "_site")

    def __init__(self, name: str, memory: bool) -> None:
        self._site = _site_for(name, memory)
        self._op: Operation | None = None

    @property
    def name(self) -> str:
        return self._site.name

    def __call__(self, func: F) -> F:
        wrapped: F = _decorate(func, self._site)
        return wrapped

    def _enter(self, cpu: bool) -> Operation:
        if self._op is not None:
            raise RuntimeError(
                f"measure({self._site.name!r}) is already in use as a context manager; "
                "write `with measure(...)` once per block instead of reusing one object"
            )
        site = self._site
        stats = site.stats if site.gen == _STATE.gen else site.bind()
        if stats is None:
            op = Operation(site.name)
            op._failed = True
        else:
            op = stats.pipeline.start(stats, site.name, cpu, site.memory)
        self._op = op
        return op

    def _exit(self, exc: BaseException | None) -> None:
        op = self._op
        self._op = None
        if op is not None and not op._failed:
            op._stats.pipeline.finish(op, exc)

    def __enter__(self) -> Operation:
        return self._enter(True)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(ev)

    async def __aenter__(self) -> Operation:
        # Thread CPU time cannot be attributed across awaits (other tasks run on the same
        # thread in between), so async operations report no CPU rather than a wrong figure.
        return self._enter(False)

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(ev)


def _decorate(func: Any, site: _Site) -> Any:
    if isinstance(func, (staticmethod, classmethod)):
        return type(func)(_decorate(func.__func__, site))
    if not callable(func):
        raise TypeError(f"measure() can only decorate a callable, got {func!r}")

    if inspect.isasyncgenfunction(func):
        return _wrap_async_gen(func, site)
    if inspect.isgeneratorfunction(func):
        return _wrap_gen(func, site)
    if inspect.iscoroutinefunction(func):
        return _wrap_async(func, site)
    return _wrap_sync(func, site)


def _wrap_sync(func: Callable[..., Any], site: _Site) -> Callable[..., Any]:
    name = site.name
    memory = site.memory

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stats = site.stats if site.gen == _STATE.gen else site.bind()
        if stats is None:
            return func(*args, **kwargs)
        p = stats.pipeline
        op = p.start(stats, name, True, memory)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            p.finish(op, exc)
            raise
        p.finish(op, None)
        return result

    return wrapper


def _wrap_async(func: Callable[..., Awaitable[Any]], site: _Site) -> Callable[..., Any]:
    name = site.name
    memory = site.memory

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        stats = site.stats if site.gen == _STATE.gen else site.bind()
        if stats is None:
            return await func(*args, **kwargs)
        p = stats.pipeline
        op = p.start(stats, name, False, memory)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            p.finish(op, exc)
            raise
        p.finish(op, None)
        return result

    return wrapper


def _suspend(op: Operation) -> None:
    """Between a generator's steps the consumer runs: detach the span, bank CPU and time."""
    if op._token is not None:
        _detach(op._token)
        op._token = None
    now = perf_counter_ns()
    op._elapsed += now - op._t0
    op._t0 = now
    if op._cpu0 >= 0:
        op._cpu_acc += thread_time_ns() - op._cpu0
        op._cpu0 = -1


def _resume(op: Operation, cpu: bool) -> None:
    op._token = _attach(_set_span(op._span))
    if cpu:
        op._cpu0 = thread_time_ns()


def _wrap_gen(func: Callable[..., Generator[Any, Any, Any]], site: _Site) -> Callable[..., Any]:
    name = site.name
    memory = site.memory

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        stats = site.stats if site.gen == _STATE.gen else site.bind()
        if stats is None:
            return (yield from func(*args, **kwargs))
        p = stats.pipeline
        op = p.start(stats, name, True, memory)
        cpu = op._cpu0 >= 0
        ok = not op._failed
        # The operation runs from the first next() until exhaustion or close(); the wall time
        # includes the consumer's time between items (the generator is open), CPU only counts
        # the generator's own steps, and the span is current only while the body runs.
        gen = func(*args, **kwargs)
        send: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                try:
                    item = gen.send(send) if thrown is None else gen.throw(thrown)
                except StopIteration as stop:
                    if ok:
                        p.finish(op, None)
                    return stop.value
                if ok:
                    _suspend(op)
                try:
                    send = yield item
                    thrown = None
                except GeneratorExit:
                    gen.close()
                    if ok:
                        p.finish(op, None)
                    raise
                except BaseException as exc:  # thrown in by the consumer: pass it on
                    thrown = exc
                    send = None
                if ok:
                    _resume(op, cpu)
        except GeneratorExit:
            raise
        except BaseException as exc:
            if ok:
                p.finish(op, exc)
            raise

    return wrapper


def _wrap_async_gen(
    func: Callable[..., AsyncGenerator[Any, Any]], site: _Site
) -> Callable[..., Any]:
    name = site.name
    memory = site.memory

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        stats = site.stats if site.gen == _STATE.gen else site.bind()
        agen = func(*args, **kwargs)
        if stats is None:
            async for item in agen:
                yield item
            return
        p = stats.pipeline
        op = p.start(stats, name, False, memory)
        ok = not op._failed
        send: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                try:
                    if thrown is None:
                        item = await agen.asend(send)
                    else:
                        item = await agen.athrow(thrown)
                except StopAsyncIteration:
                    if ok:
                        p.finish(op, None)
                    return
                if ok:
                    _suspend(op)
                try:
                    send = yield item
                    thrown = None
                except GeneratorExit:
                    await agen.aclose()
                    if ok:
                        p.finish(op, None)
                    raise
                except BaseException as exc:
                    thrown = exc
                    send = None
                if ok:
                    _resume(op, False)
        except GeneratorExit:
            raise
        except BaseException as exc:
            if ok:
                p.finish(op, exc)
            raise

    return wrapper


@overload
def measure(name_or_func: F, /) -> F: ...
@overload
def measure(name_or_func: str | None = None, /, *, track_memory: bool = False) -> _Measure: ...


def measure(name_or_func: Any = None, /, *, track_memory: bool = False) -> Any:
    """Measure an operation: a span named after it plus one duration observation per call.

    Use it as a bare decorator (operation name = ``module.qualname``), a named decorator, or a
    sync or async context manager whose handle counts throughput::

        @measure
        def handle(request): ...

        @measure("download")
        async def download(url): ...

        with measure("parse") as op:
            rows = parse(data)
            op.add_items(len(rows))
            op.add_bytes(len(data))

    ``track_memory=True`` also records the resident-memory change (one RSS read at each end).
    """
    if not isinstance(track_memory, bool):
        raise TypeError(f"measure(track_memory={track_memory!r}): must be True or False")
    if isinstance(name_or_func, str):
        if not name_or_func.strip():
            raise ValueError("measure(name=''): the operation name must be a non-empty string")
        return _Measure(name_or_func, track_memory)
    if name_or_func is None:
        raise TypeError("measure() needs an operation name, e.g. measure('parse')")
    if isinstance(name_or_func, (staticmethod, classmethod)):
        inner = name_or_func.__func__
        return _decorate(name_or_func, _Site(_qualified(inner), track_memory))
    if callable(name_or_func) and not isinstance(name_or_func, type):
        return _decorate(name_or_func, _Site(_qualified(name_or_func), track_memory))
    raise TypeError(
        f"measure({name_or_func!r}): expected an operation name (str) or a function, "
        f"got {type(name_or_func).__name__}"
    )


def _qualified(func: Any) -> str:
    module = getattr(func, "__module__", None) or "__main__"
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{module}.{qual}"
