"""Reading otelperf's metrics back: per-operation figures from a scrape or a registry.

The same code serves the demo's live summary, ``Telemetry.report()`` and ``otelperf report``:
families come either from ``registry.collect()`` or from parsing a scraped page with
prometheus_client's parser, and quantiles are interpolated from the buckets the way
Prometheus's histogram_quantile() does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from otelperf import _names as N


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile() on cumulative ``(le, count)`` pairs.

    Linear interpolation inside the bucket that holds the rank; the lowest bucket starts at 0
    when its bound is positive; a rank in the +Inf bucket returns the highest finite bound.
    NaN when there are no observations or no +Inf bucket.

    >>> histogram_quantile(0.5, [(1.0, 2), (2.0, 4), (math.inf, 4)])
    1.0
    """
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    b = sorted(buckets)
    if len(b) < 2 or not math.isinf(b[-1][0]):
        return math.nan
    # Counts must not decrease (Prometheus fixes up small non-monotonicity the same way).
    fixed: list[tuple[float, float]] = []
    running = 0.0
    for le, c in b:
        running = max(running, c)
        fixed.append((le, running))
    total = fixed[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    i = next(i for i, (_, c) in enumerate(fixed) if c >= rank)
    if i == len(fixed) - 1:
        return fixed[-2][0]
    if i == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start, prev = (0.0, 0.0) if i == 0 else fixed[i - 1]
    end, count = fixed[i]
    return start + (end - start) * (rank - prev) / (count - prev)


@dataclass
class OperationFigures:
    """Totals of one operation since its process started."""

    operation: str
    calls: float = 0.0
    errors: float = 0.0
    duration_sum: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)
    items: float = 0.0
    bytes: float = 0.0
    cpu_seconds: float | None = None
    in_flight: float = 0.0

    @property
    def error_ratio(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    def quantile(self, q: float) -> float:
        return histogram_quantile(q, list(self.buckets.items()))


def families_from_text(text: str) -> list[Metric]:
    """Parse a Prometheus text exposition (raises ValueError on content that is not one)."""
    return list(text_string_to_metric_families(text))


def operations(families: Iterable[Metric]) -> dict[str, OperationFigures]:
    """Per-operation figures from metric families (all outcomes and error types summed)."""
    ops: dict[str, OperationFigures] = {}

    def get(name: str) -> OperationFigures:
        f = ops.get(name)
        if f is None:
            f = ops[name] = OperationFigures(name)
        return f

    hist = N.OPERATION_DURATION.prom
    for fam in families:
        for s in fam.samples:
            op = s.labels.get(N.OPERATION)
            if op is None:
                continue
            if s.name == hist + "_bucket":
                le = float(s.labels["le"])
                f = get(op)
                f.buckets[le] = f.buckets.get(le, 0.0) + s.value
            elif s.name == hist + "_count":
                f = get(op)
                f.calls += s.value
                if s.labels.get(N.OUTCOME) == N.OUTCOME_ERROR:
                    f.errors += s.value
            elif s.name == hist + "_sum":
                get(op).duration_sum += s.value
            elif s.name == N.OPERATION_ITEMS.prom:
                get(op).items += s.value
            elif s.name == N.OPERATION_BYTES.prom:
                get(op).bytes += s.value
            elif s.name == N.OPERATION_CPU.prom:
                f = get(op)
                f.cpu_seconds = (f.cpu_seconds or 0.0) + s.value
            elif s.name == N.OPERATION_IN_FLIGHT.prom:
                get(op).in_flight += s.value
    return ops


class LiveSummary:
    """Rates between two calls plus since-start quantiles, for the demo's periodic summary."""

    def __init__(self) -> None:
        self._last: dict[str, OperationFigures] = {}
        self._last_t = time.monotonic()

    def render(self, telemetry: Any) -> str:
        now = time.monotonic()
        ops = operations(telemetry.registry.collect())
        dt = max(now - self._last_t, 1e-9)
        lines = [f"{'operation':<24} {'rate/s':>8} {'p95 ms':>9} {'errors %':>9}"]
        for name in sorted(ops):
            f = ops[name]
            prev = self._last.get(name)
            calls = f.calls - (prev.calls if prev else 0.0)
            p95 = f.quantile(0.95)
            p95_text = "-" if math.isnan(p95) else f"{p95 * 1000:.1f}"
            lines.append(
                f"{name[:24]:<24} {calls / dt:>8.1f} {p95_text:>9} {100 * f.error_ratio:>8.2f}%"
            )
        self._last, self._last_t = ops, now
        return "\n".join(lines)
