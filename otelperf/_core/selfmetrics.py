"""otelperf's own failures and label overflows: the one place that registers their counters.

The hot path must never raise into the application, so failures are caught where they happen
and counted in a :class:`Tally`; a scrape shows them as ``otelperf_internal_errors_total
{component}`` and ``otelperf_cardinality_overflow_total{component}``.

Each part that counts (measure()'s pipeline, the span processor, the resource monitor) is a
*source* with an ``errors`` and an ``overflows`` tally; :class:`Counters` is the one
registration of the two counters, which each part's instrument holder makes on its meter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Protocol

from opentelemetry.metrics import CallbackOptions, Observation

from otelperf import _names as N
from otelperf._core.warn import Once, log


class Tally:
    """Thread-safe counts per label value (a handful of fixed keys: components, reasons).

    >>> t = Tally(N.COMPONENT)
    >>> t.add("processor"); t.get("processor")
    1
    """

    __slots__ = ("_counts", "_label", "_lock", "_logged")

    def __init__(self, label: str) -> None:
        self._label = label
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._logged = Once()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def error(self, key: str, exc: BaseException) -> None:
        """Count a caught failure and log the first one per key with its traceback."""
        self.add(key)
        if self._logged.first(key):
            log.error("otelperf %s failed; counted in otelperf_internal_errors_total, the "
                      "application is unaffected", key, exc_info=exc)  # fmt: skip

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def observe(self, options: CallbackOptions | None = None) -> list[Observation]:
        return [Observation(v, {self._label: k}) for k, v in self.snapshot().items()]


class Source(Protocol):
    """A part that counts its own failures (``errors``) and overflows (``overflows``)."""

    @property
    def errors(self) -> Tally: ...

    @property
    def overflows(self) -> Tally: ...


class Counters:
    """The two counters on one meter, reading the tallies of its ``current`` source.

    Each part's instrument holder (one per meter provider) makes one of these on its own meter
    while it registers its instruments, at the place the part registered the counters before:
    the SDK runs callbacks in registration order, so a failure in a scrape-time callback
    registered earlier is counted in the same scrape.  The component label values of the parts
    are disjoint and the reader adds no scope labels, so the exporter merges the three meters'
    series into one family per name.

    >>> from opentelemetry.sdk.metrics import MeterProvider
    >>> class Part:
    ...     errors, overflows = Tally(N.COMPONENT), Tally(N.COMPONENT)
    >>> counters = Counters(MeterProvider().get_meter("doc"))
    >>> counters.current = Part()
    """

    def __init__(self, meter: Any) -> None:
        self.current: Source | None = None
        for metric, callback in ((N.INTERNAL_ERRORS, self._observe_errors),
                                 (N.CARDINALITY_OVERFLOW, self._observe_overflows)):  # fmt: skip
            meter.create_observable_counter(
                metric.otel, callbacks=[callback], unit=metric.unit, description=metric.help
            )

    def _observe_errors(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self.current
        return [] if source is None else source.errors.observe()

    def _observe_overflows(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self.current
        return [] if source is None else source.overflows.observe()
