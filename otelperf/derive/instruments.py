"""The processor's instruments on one meter provider; each callback reads its current processor.

The SDK keeps the first instrument of a name and drops a later duplicate's callback, so a
processor replacing another on the same provider (configure, shutdown, configure again) must
reuse these rather than create its own.  Each observable counter gets its own reader, bound
here once (no dispatch on a field name at scrape time).  otelperf's own error and overflow
counters are otelperf._core.selfmetrics.Counters, made here on this meter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Observation

from otelperf import _names as N
from otelperf._core import selfmetrics
from otelperf._core.per_provider import PerProvider
from otelperf.derive.traces import COMPONENT

if TYPE_CHECKING:
    from otelperf.derive.processor import BottleneckSpanProcessor

METER_NAME = "otelperf.processor"

Reader = Callable[["BottleneckSpanProcessor"], list[Observation]]


def _in_flight(p: BottleneckSpanProcessor) -> list[Observation]:
    return [Observation(p.table.in_flight())]


def _dropped(p: BottleneckSpanProcessor) -> list[Observation]:
    return [Observation(v, {N.REASON: k}) for k, v in p.table.dropped_counts().items()]


# In registration order (the SDK runs callbacks in it); otelperf's error and overflow counters
# are registered between the two groups, where they always were.
_TOTALS: tuple[tuple[N.Metric, Reader], ...] = (
    (N.CRITICAL_PATH, lambda p: p.totals.observe_critical()),
    (N.SELF_TIME, lambda p: p.totals.observe_self()),
    (N.ROOT_DURATION, lambda p: p.totals.observe_duration()),
    (N.ROOTS, lambda p: p.totals.observe_roots()),
    (N.DROPPED_SPANS, _dropped),
)
_ACCOUNTS: tuple[tuple[N.Metric, Reader], ...] = (
    (N.CACHE_REQUESTS, lambda p: p.accounts.observe_cache()),
    (N.API_CALLS, lambda p: p.accounts.observe_calls()),
    (N.API_TOKENS, lambda p: p.accounts.observe_tokens()),
    (N.API_COST, lambda p: p.accounts.observe_cost()),
)


class Instruments:
    """The processor's counters, in-flight gauge and API duration histogram on one provider."""

    def __init__(self, meter_provider: Any) -> None:
        meter = meter_provider.get_meter(METER_NAME, N.VERSION)
        self.current: BottleneckSpanProcessor | None = None
        for metric, read in _TOTALS:
            self._counter(meter, metric, read)
        self.self_metrics = selfmetrics.Counters(meter)
        for metric, read in _ACCOUNTS:
            self._counter(meter, metric, read)
        g = N.TRACES_IN_FLIGHT
        meter.create_observable_up_down_counter(
            g.otel, callbacks=[self._callback(_in_flight)], unit=g.unit, description=g.help
        )
        d = N.API_CALL_DURATION
        self.api_duration = meter.create_histogram(
            d.otel, unit=d.unit, description=d.help,
            explicit_bucket_boundaries_advisory=list(N.DEFAULT_DURATION_BUCKETS),
        )  # fmt: skip

    def _counter(self, meter: Any, metric: N.Metric, read: Reader) -> None:
        meter.create_observable_counter(
            metric.otel, callbacks=[self._callback(read)], unit=metric.unit,
            description=metric.help,
        )  # fmt: skip

    def _callback(self, read: Reader) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            p = self.current
            if p is None:
                return []
            try:
                return read(p)
            except Exception as exc:
                p.errors.error(COMPONENT, exc)
                return []

        return observe


instruments: PerProvider[Instruments] = PerProvider(Instruments)
