"""Duration histograms (rate, errors, duration) for every span the processor sees, with exemplars.

An OTel SDK ``histogram.record`` costs about 7 us here, more than the processor's whole budget
per span, so the processor aggregates itself: per (operation, outcome, error_type) series a
list of plain integer bucket counts and an integer-nanosecond sum, updated under one short lock
(bucket index by bisect).  :class:`DurationCollector` serves them as
``otelperf_operation_duration_seconds`` from the same prometheus_client registry as everything
else, in the shape the OTel Prometheus exporter gave that family (same name, help, unit, label
order, ``le`` strings), so a scrape reads exactly as before.

Exemplars: each bucket of each series keeps a reference to the ``(SpanContext, start, end)`` of
the latest *sampled* span that fell in it (one per bucket: bounded); formatting happens only
when an OpenMetrics scrape reads them.  The Prometheus text format carries no exemplars, and
prometheus_client prints them only in OpenMetrics.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Sample

from otelperf import _names as N
from otelperf._core.labels import safe_label
from otelperf._core.per_provider import PerProvider
from otelperf._core.selfmetrics import Tally
from otelperf._core.warn import Once
from otelperf.derive.traces import COMPONENT
from otelperf.emit.operation import MAX_ERROR_TYPES

if TYPE_CHECKING:
    from otelperf.derive.processor import BottleneckSpanProcessor

Key = tuple[str, str, str]  # (operation, outcome, error_type)

_log = logging.getLogger("otelperf")


class Series:
    """One (operation, outcome, error_type): per-bucket counts (not cumulative), the sum in ns,
    and per bucket the latest sampled span's ``(context, start_ns, end_ns)`` or None."""

    __slots__ = ("counts", "exemplars", "labels", "sum_ns")

    def __init__(self, key: Key, n_buckets: int) -> None:
        op, outcome, error_type = key
        # The exporter's label order (sorted names; success back-filled with error_type="").
        self.labels = [error_type, op, outcome]
        self.counts = [0] * n_buckets
        self.sum_ns = 0
        self.exemplars: list[tuple[Any, int, int] | None] = [None] * n_buckets


class Red:
    """The duration series of one processor, capped like measure()'s: ``max_operations``
    operation names and MAX_ERROR_TYPES error types per operation, then ``__overflow__``
    (counted in ``overflows``).

    >>> r = Red((0.1, 1.0), 10, Tally(N.COMPONENT))
    >>> r.record(("GET /", "success", ""), 50_000_000, None, 0)
    >>> r.series[("GET /", "success", "")].counts
    [1, 0, 0]
    """

    def __init__(self, buckets: Sequence[float], max_operations: int, overflows: Tally) -> None:
        self.buckets = tuple(float(b) for b in buckets)
        # Upper bounds in integer ns (int compares are the cheapest in bisect): a duration lands
        # in the first bucket whose bound is >= it, the ``le`` rule; the last bucket is +Inf.
        self.bounds = [round(b * 1e9) for b in self.buckets]
        self.les = [f"{b}" for b in self.buckets] + ["+Inf"]  # as the OTel exporter spells them
        self.n_buckets = len(self.buckets) + 1
        self.max_operations = max_operations
        self.overflows = overflows
        self.lock = threading.Lock()
        self.series: dict[Key, Series] = {}
        self.error_types: dict[str, set[str]] = {}  # operation label -> its error types
        self._warned = Once()

    def record(self, key: Key, duration_ns: int, ctx: Any, end_ns: int) -> None:
        """One observation of ``key`` = (operation, outcome, error_type), as SpanNamer.classify
        returns it; ``ctx`` (the span's SpanContext, or None) becomes the bucket's exemplar when
        the span is sampled.  The processor's on_end (otelperf.derive.traces) does the same
        steps inline."""
        s = self.series.get(key) or self.add(key)
        i = bisect_left(self.bounds, duration_ns)
        lock = self.lock
        lock.acquire()  # once per span: acquire/release cost half of ``with`` here
        s.counts[i] += 1
        s.sum_ns += duration_ns
        lock.release()
        # trace_flags is SpanContext's 4th slot; bit 0 = sampled.  One reference stored: the
        # exemplar is formatted only when an OpenMetrics scrape asks for it.
        if ctx is not None and ctx[3] & 1:
            s.exemplars[i] = (ctx, duration_ns, end_ns)

    def add(self, key: Key) -> Series:
        """The series of ``key``, made under the caps (a new name past them: ``__overflow__``)."""
        op, outcome, error_type = key
        with self.lock:
            s = self.series.get(key)
            if s is not None:
                return s
            # A new key: its names become exposition-safe label values here, once.
            op, error_type = safe_label(op), safe_label(error_type)
            types = self.error_types.get(op)
            if types is None:
                if len(self.error_types) >= self.max_operations and op != N.OVERFLOW:
                    self._overflow(N.OPERATION)
                    op = N.OVERFLOW
                types = self.error_types.setdefault(op, set())
            if error_type and error_type not in types:
                if len(types) >= MAX_ERROR_TYPES:
                    self._overflow(N.ERROR_TYPE)
                    error_type = N.OVERFLOW
                types.add(error_type)
            capped = (op, outcome, error_type)
            s = self.series.get(capped)
            if s is None:
                s = self.series[capped] = Series(capped, self.n_buckets)
            if capped == key:  # only names under the caps are looked up directly next time
                self.series[key] = s
            return s

    def _overflow(self, what: str) -> None:
        self.overflows.add(COMPONENT)
        self._warned.warn(
            what,
            "otelperf: the processor reached its cap of distinct %s values in "
            "otelperf_operation_duration_seconds; further ones are recorded as %r",
            what, N.OVERFLOW,
        )  # fmt: skip

    def snapshot(self) -> list[tuple[list[str], list[int], int, list[tuple[Any, int, int] | None]]]:
        """Each distinct series' labels, counts, sum and exemplars, copied under the lock."""
        with self.lock:
            seen: set[int] = set()
            out = []
            for s in self.series.values():
                if id(s) not in seen:  # a capped key and its overflow series share one
                    seen.add(id(s))
                    out.append((s.labels, list(s.counts), s.sum_ns, list(s.exemplars)))
            return out


def _exemplar(ex: tuple[Any, int, int]) -> Exemplar:
    ctx, duration_ns, end_ns = ex
    return Exemplar(
        {"trace_id": f"{ctx[0]:032x}", "span_id": f"{ctx[1]:016x}"},
        duration_ns / 1e9,
        end_ns / 1e9,
    )


class DurationCollector(Collector):
    """Serves the current processor's :class:`Red` as ``otelperf_operation_duration_seconds``
    from one prometheus_client registry (one collector per registry: a processor replacing
    another on it takes over, like the OTel instruments in otelperf.derive.instruments)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.current: BottleneckSpanProcessor | None = None
        self.red: Red | None = None
        try:
            registry.register(self)
        except ValueError as exc:  # the name is taken there: never fail the application for it
            _log.warning(
                "otelperf: cannot serve otelperf_operation_duration_seconds on this registry "
                "(%s); the processor's duration histogram will be missing from /metrics", exc,
            )  # fmt: skip

    def adopt(
        self, p: BottleneckSpanProcessor, buckets: Sequence[float], max_operations: int,
        overflows: Tally, fresh: bool,
    ) -> Red:  # fmt: skip
        """The series ``p`` records into, served from now on.  They are cumulative per
        registry, as the OTel histogram was per provider: a processor replacing another here
        (configure, shutdown, configure again) continues its series unless ``fresh`` (after a
        fork) or its buckets differ."""
        red = self.red
        if fresh or red is None or red.buckets != tuple(float(b) for b in buckets):
            red = Red(buckets, max_operations, overflows)
        red.overflows = overflows
        self.red, self.current = red, p
        return red

    def describe(self) -> Iterable[Metric]:
        d = N.OPERATION_DURATION
        return [HistogramMetricFamily(d.prom, d.help, labels=_LABELS, unit="seconds")]

    def collect(self) -> Iterator[Metric]:
        p, red = self.current, self.red
        if p is None or red is None:
            return
        try:
            rows = red.snapshot()
            les = red.les
        except Exception as exc:  # never fail a scrape
            p.errors.error(COMPONENT, exc)
            return
        if not rows:
            return  # like the exporter: no family before the first observation
        d = N.OPERATION_DURATION
        # Like the exporter: error_type appears (back-filled with "") once any series has one.
        with_type = any(labels[0] for labels, _, _, _ in rows)
        family = HistogramMetricFamily(
            d.prom, d.help, labels=_LABELS if with_type else _LABELS[1:], unit="seconds"
        )
        # Samples built here rather than through add_metric (a list and a dict per bucket
        # fewer): a scrape of 1,000 operations is ~22,000 of them.
        bucket, count, total_ = d.prom + "_bucket", d.prom + "_count", d.prom + "_sum"
        samples = family.samples
        for (error_type, op, outcome), counts, sum_ns, exemplars in rows:
            base = (
                {N.ERROR_TYPE: error_type, N.OPERATION: op, N.OUTCOME: outcome}
                if with_type
                else {N.OPERATION: op, N.OUTCOME: outcome}
            )
            total = 0
            for le, n, ex in zip(les, counts, exemplars, strict=True):
                total += n
                labels = base.copy()
                labels["le"] = le
                samples.append(Sample(bucket, labels, total, None, ex and _exemplar(ex)))
            samples.append(Sample(count, base, total))
            samples.append(Sample(total_, base, sum_ns / 1e9))
        yield family


_LABELS = [N.ERROR_TYPE, N.OPERATION, N.OUTCOME]

collectors: PerProvider[DurationCollector] = PerProvider(DurationCollector)
