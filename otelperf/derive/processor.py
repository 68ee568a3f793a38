"""BottleneckSpanProcessor: critical path, self time, cache and external-API counters.

A thin SpanProcessor adapter over its parts: the trace table (otelperf.derive.traces: filing,
sealing, TTL sweep, drops), the totals (otelperf.derive.totals, with the attribution of
otelperf.derive.attribution) and the cache/API accounts (otelperf.derive.accounts).  Per span
the cost is the table's: its ``on_start``/``on_end`` are bound as this processor's hooks at
set-up, so the SDK calls them directly (docs/processor.md has the figures).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import prometheus_client
from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otelperf import _names as N
from otelperf._core import fork, sdk_compat, sinks
from otelperf._core.selfmetrics import Tally
from otelperf.derive.accounts import Accounts
from otelperf.derive.instruments import instruments
from otelperf.derive.naming import SpanNamer
from otelperf.derive.red import Red, collectors
from otelperf.derive.totals import Totals
from otelperf.derive.traces import PublicView, TraceTable
from otelperf.emit import pipeline


def _check_buckets(buckets: Iterable[float]) -> tuple[float, ...]:
    try:
        out = tuple(float(b) for b in buckets)
    except (TypeError, ValueError):
        out = ()
    if not out or list(out) != sorted(set(out)) or not all(0 < b < float("inf") for b in out):
        raise ValueError(
            f"BottleneckSpanProcessor(duration_buckets={buckets!r}): must be increasing finite "
            "numbers of seconds > 0"
        )
    return out


def _check(
    max_operations: int, max_traces: int, max_spans: int, ttl: float, max_held: int = 1
) -> None:
    for arg, value in (("max_operations", max_operations),
                       ("max_traces_in_flight", max_traces),
                       ("max_spans_per_trace", max_spans),
                       ("max_spans_held", max_held)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"BottleneckSpanProcessor({arg}={value!r}): must be an int")
        if value < 1:
            raise ValueError(f"BottleneckSpanProcessor({arg}={value!r}): must be >= 1")
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, (int, float))
        or not ttl > 0
        or ttl == float("inf")
    ):
        raise ValueError(
            f"BottleneckSpanProcessor(trace_ttl_seconds={ttl!r}): must be a finite number of "
            "seconds > 0"
        )


def _ignore(span: Any, parent_context: Any = None) -> None:
    """A shut-down processor's hooks."""


class BottleneckSpanProcessor(SpanProcessor):
    """Turns each request's spans into critical-path, self-time, cache and API metrics.

    Add it to any SDK TracerProvider (``configure()`` adds one for you); with
    ``meter_provider`` it registers its instruments there, else on the global one.  Every span
    that is not noise is one observation of ``otelperf_operation_duration_seconds``, which is
    aggregated here and served from the prometheus_client ``registry`` (default:
    ``prometheus_client.REGISTRY``, whether or not ``meter_provider`` is given), not through
    the meter provider.  ``namer`` names the spans (default: ``SpanNamer()``).

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> tp = TracerProvider()
    >>> tp.add_span_processor(BottleneckSpanProcessor(meter_provider=mp))  # doctest: +SKIP
    """

    table: TraceTable
    totals: Totals
    accounts: Accounts
    red: Red
    count_cache: Callable[[str, bool], None]
    count_api: Callable[[str, str, bool, float | None, int, int, float | None, int, int], None]
    errors: Tally
    overflows: Tally

    def __init__(
        self,
        *,
        meter_provider: Any = None,
        max_operations: int = 1000,
        max_traces_in_flight: int = 10000,
        max_spans_per_trace: int = 1000,
        trace_ttl_seconds: float = 60.0,
        max_spans_held: int = 200_000,
        registry: prometheus_client.CollectorRegistry | None = None,
        duration_buckets: Iterable[float] = N.DEFAULT_DURATION_BUCKETS,
        namer: SpanNamer | None = None,
        _clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check(max_operations, max_traces_in_flight, max_spans_per_trace, trace_ttl_seconds,
               max_spans_held)  # fmt: skip
        self.max_operations = max_operations
        self.max_spans_held = max_spans_held
        self.max_traces_in_flight = max_traces_in_flight
        self.max_spans_per_trace = max_spans_per_trace
        self.trace_ttl_seconds = float(trace_ttl_seconds)
        self.duration_buckets = _check_buckets(duration_buckets)
        self.namer = namer if namer is not None else SpanNamer()
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        self._clock = _clock
        self._closed = False
        mp = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self._instruments = instruments.get(mp)
        self._collector = collectors.get(self.registry)
        self._init_state(fresh=False)
        self._instruments.current = self._instruments.self_metrics.current = self
        sinks.register(self)
        pipeline.processor_started()
        fork.on_fork(self._init_state)

    def _init_state(self, fresh: bool = True) -> None:
        # Also the after-fork reset: fresh parts (fresh locks: a parent thread may have held one
        # at fork) and empty tables, so the child counts only its own work.
        self.errors = Tally(N.COMPONENT)
        self.overflows = Tally(N.COMPONENT)
        self.totals = Totals(self.max_operations, self.overflows)
        self.accounts = Accounts(
            self.max_operations, self.totals.lock, self.overflows,
            self._instruments.api_duration,
        )  # fmt: skip
        self.red = self._collector.adopt(
            self, self.duration_buckets, self.max_operations, self.overflows, fresh
        )
        self.table = TraceTable(
            max_traces=self.max_traces_in_flight, max_spans=self.max_spans_per_trace,
            ttl=self.trace_ttl_seconds, clock=self._clock, finish=self.totals.add_root,
            account=self.accounts.account, errors=self.errors,
            classify=self.namer.classify, red=self.red, max_held=self.max_spans_held,
            plain_names=type(self.namer).classify is SpanNamer.classify,
        )  # fmt: skip
        self.table.closed = self.accounts.closed = self._closed
        # The SDK calls these for every span: bound straight to the table's methods, so the
        # adapter adds no frame (instance attributes shadow the delegating methods below).
        table = self.table
        if sdk_compat.DIRECT_FIELDS:
            self.on_start = table.on_start  # type: ignore[method-assign]
            self.on_end = table.on_end  # type: ignore[method-assign]
        else:  # an SDK whose fields the probe did not recognise: its public properties

            def on_start(span: Any, parent_context: Context | None = None) -> None:
                table.on_start(PublicView(span))

            def on_end(span: Any) -> None:
                table.on_end(PublicView(span))

            self.on_start = on_start  # type: ignore[method-assign]
            self.on_end = on_end  # type: ignore[method-assign]
        sdk_compat.skip_on_ending(self)  # and the SDK's empty per-span _on_ending: none
        # What record_cache() and record_api_call() reach through otelperf._core.sinks.
        self.count_cache = self.accounts.count_cache
        self.count_api = self.accounts.count_api

    # -- SpanProcessor (shadowed per instance by the table's bound methods) ---------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """A span started (see TraceTable.on_start)."""
        self.table.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """A span ended (see TraceTable.on_end)."""
        self.table.on_end(span)

    def shutdown(self) -> None:
        """Stop processing and forget spans in flight; totals stay readable.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.accounts.closed = True
        self.table.clear()
        # The SDK keeps calling a shut-down processor's hooks until it is removed: nothing
        # (the table's on_end reads ``closed`` only where a span would be filed or counted).
        self.on_start = self.on_end = _ignore  # type: ignore[method-assign]
        sinks.unregister(self)
        fork.forget(self._init_state)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered for export: always True."""
        return True
