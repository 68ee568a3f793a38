"""The pipeline measure() records into: a tracer, the instruments and the operation table.

Per-call cost is the product (see BENCHMARKS.md), so everything that can be decided once is:
an operation's metric attributes are frozen dicts built when the name is first seen, and the
span is started with ``tracer.start_span`` plus one context attach rather than the two
generator-based context managers behind ``start_as_current_span``.  Items, bytes, CPU and
in-flight are plain integers under one lock, read by observable instruments at scrape time.

The duration histogram: where a BottleneckSpanProcessor sees measure()'s spans (configure()
adds one to every SDK TracerProvider it uses), the processor records every span's duration,
measure()'s included, so measure() records none of its own (one call, one observation, and no
~7 us OTel ``histogram.record`` per call).  Only a pipeline with no processor to rely on (built
lazily without configure() while no processor runs) records its OTel histogram.  Decided when
the pipeline is built.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from time import perf_counter_ns, thread_time_ns, time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.trace import Status, StatusCode, Tracer

from otelperf import _names as N
from otelperf._core import fork, selfmetrics, sinks
from otelperf._core.per_provider import PerProvider
from otelperf._core.process import current_rss
from otelperf._core.selfmetrics import Tally
from otelperf._core.warn import Once
from otelperf.emit.operation import Operation, OpStats

COMPONENT = "instrument"

_attach = otel_context.attach
_detach = otel_context.detach
_set_span = trace.set_span_in_context
_NO_CONTEXT = otel_context.Context()

# Exceptions that interrupt an operation without it failing: a cancelled task or request, the
# process being stopped, a generator closed by its consumer.  Counted as outcome="success" with
# no error_type (docs/metrics.md "Interrupted operations"): an error-rate alert must not fire
# because clients hung up or a deployment restarted the service.
INTERRUPTIONS: tuple[type[BaseException], ...] = (
    asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit,
)  # fmt: skip


class Instruments:
    """measure()'s instruments on one meter provider; the callbacks read its current pipeline.

    Shared per provider (see otelperf._core.per_provider): a second configure() on the
    application's provider must reuse them, or the SDK would keep the first pipeline's
    callbacks.  Each observable instrument gets its own reader, bound here.
    """

    def __init__(self, meter_provider: Any, duration_buckets: Iterable[float]) -> None:
        meter = meter_provider.get_meter(N.METER_NAME)
        self.current: Pipeline | None = None
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
        for metric, read in (
            (N.OPERATION_ITEMS, Pipeline.observe_items),
            (N.OPERATION_BYTES, Pipeline.observe_bytes),
            (N.OPERATION_CPU, Pipeline.observe_cpu),
        ):
            meter.create_observable_counter(
                metric.otel, callbacks=[self._callback(read)], unit=metric.unit,
                description=metric.help,
            )  # fmt: skip
        self.self_metrics = selfmetrics.Counters(meter)  # errors and overflows
        g = N.OPERATION_IN_FLIGHT
        meter.create_observable_up_down_counter(
            g.otel, callbacks=[self._callback(Pipeline.observe_in_flight)], unit=g.unit,
            description=g.help,
        )  # fmt: skip

    def _callback(
        self, read: Callable[[Pipeline], list[Observation]]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            p = self.current
            if p is None:
                return []
            try:
                return read(p)
            except Exception as exc:  # never fail the scrape; counted
                p.errors.error(COMPONENT, exc)
                return []

        return observe


# The first pipeline on a provider fixes the bucket boundaries there (the SDK keeps the first
# instrument of a name).
_instruments: PerProvider[Instruments] = PerProvider(Instruments)


class Pipeline:
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
        record_duration: bool | None = None,
        lazy: bool = False,
    ) -> None:
        self.tracer = tracer
        self.enabled = enabled
        self.lazy = lazy
        # None: configure()'s pipeline, whose tracer is an SDK TracerProvider's exactly when
        # configure() adds its processor there (which then records the durations).
        self.record_duration = (
            not isinstance(tracer, SdkTracer) if record_duration is None else record_duration
        )
        self.max_operations = max_operations
        self.track_cpu = track_cpu
        self.lock = threading.Lock()
        self.ops: dict[str, OpStats] = {}
        self.overflow = OpStats(N.OVERFLOW, self, overflow=True)
        self.errors = Tally(N.COMPONENT)
        self.overflows = Tally(N.COMPONENT)
        self._warned = Once()
        inst = _instruments.get(meter_provider, duration_buckets)
        inst.current = inst.self_metrics.current = self
        self.histogram = inst.histogram
        self.memory_histogram = inst.memory_histogram
        fork.on_fork(self._after_fork)

    def _after_fork(self) -> None:
        # The child counts its own work (docs/workers.md): the parent's totals and its threads'
        # operations in flight are not the child's; the names and their labels stay.  A fresh
        # lock: a parent thread may have held this one at fork().
        self.lock = threading.Lock()
        for s in [*self.ops.values(), self.overflow]:
            s.items = s.bytes = s.cpu_ns = s.in_flight = 0

    # -- operation table (bounded) ---------------------------------------------------------
    def stats(self, name: str) -> OpStats:
        """The stats of operation ``name`` (``__overflow__``'s past max_operations names)."""
        s = self.ops.get(name)
        if s is not None:
            return s
        with self.lock:
            s = self.ops.get(name)
            if s is None:
                if len(self.ops) >= self.max_operations:
                    self._warned.warn(
                        "overflow",
                        "otelperf: more than %d distinct operation names; further ones are "
                        "recorded as operation=%r (raise max_operations or "
                        "OTELPERF_MAX_OPERATIONS if this is expected)",
                        self.max_operations, N.OVERFLOW,
                    )  # fmt: skip
                    return self.overflow
                s = OpStats(name, self)
                self.ops[name] = s
            return s

    def _all(self) -> list[OpStats]:
        with self.lock:
            out = list(self.ops.values())
        o = self.overflow
        if o.in_flight or o.items or o.bytes or o.cpu_ns:
            out.append(o)
        return out

    # -- readers of the observable instruments (scrape time) ----------------------------------
    def observe_items(self) -> list[Observation]:
        return [Observation(s.items, s.op_attrs) for s in self._all() if s.items]

    def observe_bytes(self) -> list[Observation]:
        return [Observation(s.bytes, s.op_attrs) for s in self._all() if s.bytes]

    def observe_cpu(self) -> list[Observation]:
        return [Observation(s.cpu_ns * 1e-9, s.op_attrs) for s in self._all() if s.cpu_ns]

    def observe_in_flight(self) -> list[Observation]:
        # Never below 0: an operation a forked child finishes started before the fork reset.
        return [Observation(max(0, s.in_flight), s.op_attrs) for s in self._all()]

    # -- per call ----------------------------------------------------------------------------
    def start(self, stats: OpStats, name: str, cpu: bool, memory: bool) -> Operation:
        """Start one operation of ``stats``: its span, made current, and its clocks."""
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
            self.errors.error(COMPONENT, exc)
            op._failed = True
        return op

    def finish(self, op: Operation, exc: BaseException | None) -> None:
        """End ``op`` (``exc``: what it raised): its span, the histogram and the totals."""
        t1 = perf_counter_ns()
        if op._failed or op._done:
            return
        op._done = True
        try:
            cpu = thread_time_ns() - op._cpu0 + op._cpu_acc if op._cpu0 >= 0 else op._cpu_acc
            stats = op._stats
            span = op._span
            end = None  # success: the span ends now (span.end() reads the clock)
            if exc is None:
                attrs = stats.ok_attrs
            elif isinstance(exc, INTERRUPTIONS):
                attrs = stats.ok_attrs
                span.set_attribute(N.ATTR_INTERRUPTED, type(exc).__name__)
            else:
                # The span ends when the call did, not after the exception is recorded below
                # (a traceback costs ~0.3 ms): the processor's duration histogram reads it.
                end = time_ns()
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
            span.end(end)
            if self.record_duration:
                # An explicit empty context: the exemplar filter then skips its reservoir work
                # (the Prometheus text format carries no exemplars), a saving per call.
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
            self.errors.error(COMPONENT, e)


def suspend(op: Operation) -> None:
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


def resume(op: Operation, cpu: bool) -> None:
    """A generator's next step runs: its span current again, CPU counted again."""
    op._token = _attach(_set_span(op._span))
    if cpu:
        op._cpu0 = thread_time_ns()


# -- the current pipeline ------------------------------------------------------------------------


class State:
    """The pipeline measure() records into; ``gen`` changes whenever it is replaced."""

    __slots__ = ("gen", "lock", "pipeline")

    def __init__(self) -> None:
        self.pipeline: Pipeline | None = None
        self.gen = 0
        self.lock = threading.Lock()


STATE = State()


def install(pipeline: Pipeline | None) -> None:
    """Make ``pipeline`` the one measure() records into (None: the lazy global one)."""
    with STATE.lock:
        STATE.pipeline = pipeline
        STATE.gen += 1


def processor_started() -> None:
    """A span processor that records durations started: a lazy pipeline recording its own OTel
    histogram is dropped, so the next measure() builds one that leaves them to the processor."""
    with STATE.lock:
        p = STATE.pipeline
        if p is not None and p.lazy and p.record_duration:
            STATE.pipeline = None
            STATE.gen += 1


def current_pipeline() -> Pipeline:
    """The installed pipeline, or one over the global OTel providers built on first use."""
    p = STATE.pipeline
    if p is None:
        with STATE.lock:
            p = STATE.pipeline
            if p is None:
                # configure() was never called: record into whatever global providers the
                # application has (the API proxies forward once it sets real ones).
                # A running processor records measure()'s durations from its spans.
                p = Pipeline(
                    trace.get_tracer(N.TRACER_NAME), metrics.get_meter_provider(),
                    record_duration=sinks.active() is None, lazy=True,
                )  # fmt: skip
                STATE.pipeline = p
                STATE.gen += 1
    return p
