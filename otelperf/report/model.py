"""The report's data: figures a source collects (:class:`Totals`), the rows and findings
built from them, and :class:`ReportData` with its JSON and CSV contract (docs/report.md).

Nothing here does I/O, and it imports only the base modules (``_names``, ``config``): sources
fill :class:`Totals`, :func:`otelperf.report.build.build_report` turns them into a report, and
:mod:`otelperf.report.rendering` adds the terminal text (its ``Report`` extends
:class:`ReportData`, so this module never imports the rendering).  Quantiles are interpolated
from the buckets the way Prometheus's histogram_quantile() does, so the report and a Grafana
panel agree.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from otelperf import _names as N
from otelperf.config import (
    DEFAULT_HEALTH_CPU_THRESHOLD,
    DEFAULT_HEALTH_DISK_THRESHOLD,
    DEFAULT_HEALTH_MEMORY_THRESHOLD,
    Settings,
)

# Resource gauges and the health thresholds over which they warn (see resource_limits()).
DEFAULT_RESOURCE_LIMITS: dict[str, float] = {
    N.HOST_CPU_UTILIZATION.prom: DEFAULT_HEALTH_CPU_THRESHOLD,
    N.HOST_MEMORY_UTILIZATION.prom: DEFAULT_HEALTH_MEMORY_THRESHOLD,
    N.HOST_FILESYSTEM_UTILIZATION.prom: DEFAULT_HEALTH_DISK_THRESHOLD,
}
# Gauges shown in the resources section (current values; the window's highest from Prometheus).
RESOURCE_METRICS: tuple[N.Metric, ...] = (
    N.HOST_CPU_UTILIZATION,
    N.HOST_MEMORY_UTILIZATION,
    N.HOST_FILESYSTEM_UTILIZATION,
    N.PROC_RESIDENT_MEMORY,
    N.PROC_OPEN_FDS,
    N.PROC_THREADS,
)


def resource_limits(settings: Settings) -> dict[str, float]:
    """The /health thresholds of ``settings`` keyed by the gauge they apply to.

    >>> from otelperf.config import resolve
    >>> resource_limits(resolve(env={}))[N.HOST_CPU_UTILIZATION.prom]
    0.8
    """
    limits = {
        N.HOST_CPU_UTILIZATION.prom: settings.health_cpu_threshold,
        N.HOST_MEMORY_UTILIZATION.prom: settings.health_memory_threshold,
        N.HOST_FILESYSTEM_UTILIZATION.prom: settings.health_disk_threshold,
    }
    if settings.process_memory_limit is not None:
        limits[N.PROC_RESIDENT_MEMORY.prom] = float(settings.process_memory_limit)
    return limits


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile() on cumulative ``(le, count)`` pairs.

    Linear interpolation inside the bucket that holds the rank; the lowest bucket starts at 0
    when its bound is positive; a rank in the +Inf bucket returns the highest finite bound.
    NaN when there are no observations or no +Inf bucket.

    >>> histogram_quantile(0.5, [(1.0, 2), (2.0, 4), (math.inf, 4)])
    1.0
    """
    if math.isnan(q):
        return math.nan
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
    # Same operations in the same order as Prometheus (promql/quantile.go), so the float
    # result is identical to the last bit; 0/0 is NaN there too.
    width = count - prev
    fraction = (rank - prev) / width if width else math.nan
    return start + (end - start) * fraction


@dataclass
class OperationFigures:
    """Totals of one operation (since its process started, or over a Prometheus window)."""

    operation: str
    calls: float = 0.0
    errors: float = 0.0
    duration_sum: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)
    items: float = 0.0
    bytes: float = 0.0
    cpu_seconds: float | None = None
    in_flight: float = 0.0
    error_types: dict[str, float] = field(default_factory=dict)
    # Quantiles Prometheus computed (window reports); None: interpolate from ``buckets``.
    quantiles: dict[float, float] | None = None

    @property
    def error_ratio(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    def quantile(self, q: float) -> float:
        if self.quantiles is not None:
            return self.quantiles.get(q, math.nan)
        return histogram_quantile(q, list(self.buckets.items()))


@dataclass
class Totals:
    """Raw figures of one source, keyed by label values; what :func:`build_report` reads."""

    operations: dict[str, OperationFigures] = field(default_factory=dict)
    critical_path: dict[tuple[str, str], float] = field(default_factory=dict)  # (root, op)
    self_time: dict[tuple[str, str], float] = field(default_factory=dict)  # (root, op)
    root_duration: dict[str, float] = field(default_factory=dict)
    roots: dict[str, float] = field(default_factory=dict)  # root spans finished, by root
    cache_requests: dict[tuple[str, str], float] = field(default_factory=dict)  # (cache, result)
    # (api, model, outcome) and (api, model, token_type)
    api_calls: dict[tuple[str, str, str], float] = field(default_factory=dict)
    api_tokens: dict[tuple[str, str, str], float] = field(default_factory=dict)
    api_cost: dict[tuple[str, str], float] = field(default_factory=dict)  # (api, model)
    # prom name -> [(labels, value)] for the gauges in RESOURCE_METRICS
    resources: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)
    # Seconds the figures cover: the process's uptime for a scrape or a registry (None when
    # the page has no process_start_time_seconds), the window or the part of it that holds
    # data for Prometheus.  Endpoint rates divide by it.
    seconds: float | None = None
    # The process start time a scrape showed (several processes: the earliest).
    started: float | None = None

    def op(self, name: str) -> OperationFigures:
        f = self.operations.get(name)
        if f is None:
            f = self.operations[name] = OperationFigures(name)
        return f

    def empty(self) -> bool:
        """True when there is nothing otelperf recorded (resource gauges alone do not count)."""
        return not (
            self.operations or self.root_duration or self.roots or self.cache_requests
            or self.api_calls or self.api_cost or self.api_tokens
        )  # fmt: skip


# --- rows, findings and the report ---------------------------------------------------------


@dataclass(frozen=True)
class OperationRow:
    operation: str
    calls: float
    errors: float
    error_ratio: float
    p50_seconds: float | None
    p95_seconds: float | None
    p99_seconds: float | None
    items: float
    bytes: float
    cpu_ratio: float | None
    duration_sum: float  # the JSON's sum_seconds; the text table sorts by it
    # Cumulative (le, count) of the duration histogram, +Inf last: what `otelperf compare` tests.
    buckets: tuple[tuple[float, float], ...] = ()
    # Items over the seconds the figures cover (Totals.seconds); None: no items or no seconds.
    items_per_second: float | None = None


@dataclass(frozen=True)
class EndpointRow:
    """A root operation (a request, a job): what its callers see.

    Figures come from the duration histogram series of the root's own operation name; without
    one (spans no histogram records) ``calls`` and ``mean_seconds`` come from
    ``otelperf_roots_total`` / ``otelperf_root_duration_seconds_total`` and the rest is None.
    """

    operation: str
    calls: float
    errors: float | None
    error_ratio: float | None
    rate_per_second: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    p99_seconds: float | None
    mean_seconds: float | None
    top_bottleneck: str | None
    top_bottleneck_share: float | None
    total_seconds: float  # not in the JSON contract: the text table sorts by it


@dataclass(frozen=True)
class BottleneckRow:
    root_operation: str
    operation: str
    share: float
    self_share: float


@dataclass(frozen=True)
class CacheRow:
    cache: str
    hits: float
    misses: float
    hit_ratio: float | None


@dataclass(frozen=True)
class ApiRow:
    api: str
    model: str
    calls: float
    errors: float
    input_tokens: float
    output_tokens: float
    cost_usd: float


@dataclass(frozen=True)
class Finding:
    """A warning (``value`` crossed ``threshold``) or a recommendation (no value)."""

    kind: str
    subject: str
    message: str
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Source:
    """Where the figures came from: ``kind`` is "process", "url" or "prometheus"."""

    kind: str
    target: str = ""
    window: str | None = None
    job: str | None = None
    at: float | None = None
    # The window in seconds, and the seconds the figures cover (Totals.seconds): for
    # Prometheus less than the window when the window starts before the data does; for a
    # scrape or the process its uptime.
    window_seconds: float | None = None
    data_seconds: float | None = None

    def window_is_short(self) -> bool:
        """Whether a Prometheus window holds less data than asked."""
        if self.window_seconds is None or self.data_seconds is None:
            return False
        return self.data_seconds < self.window_seconds

    def describe(self) -> str:
        if self.kind == "prometheus":
            job = f", job {self.job}" if self.job else ", all jobs"
            covers = ""
            if self.window_is_short() and self.data_seconds is not None:
                covers = f" (data covers {format_duration(self.data_seconds)})"
            return f"{self.target}: the last {self.window}{covers}{job}"
        if self.kind == "url":
            return f"{self.target}: totals since the process started"
        return "this process: totals since it started"


def format_duration(seconds: float) -> str:
    """Whole seconds as a Prometheus-style duration: ``1m15s``, ``2h``, ``3d4h``; under a
    second as ``0s``.

    >>> format_duration(75.4), format_duration(7200), format_duration(0.4)
    ('1m15s', '2h', '0s')
    """
    rest = int(seconds + 0.5)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"


def whole(count: float) -> float:
    """A count as shown: the nearest whole number, halves up (``increase()`` over a window
    extrapolates, so its counts can be fractional; a call is not).

    >>> whole(211.5), whole(2.49), whole(8.0)
    (212.0, 2.0, 8.0)
    """
    return float(math.floor(count + 0.5))


_CONTRACT_ENDPOINT_KEYS = (
    "operation", "calls", "errors", "error_ratio", "rate_per_second", "p50_seconds",
    "p95_seconds", "p99_seconds", "mean_seconds", "top_bottleneck", "top_bottleneck_share",
)  # fmt: skip
_CONTRACT_OPERATION_KEYS = (
    "operation", "calls", "errors", "error_ratio", "p50_seconds", "p95_seconds", "p99_seconds",
    "items", "bytes", "cpu_ratio", "items_per_second",
)  # fmt: skip


@dataclass(frozen=True)
class TimelinePoint:
    """Cumulative totals per operation at Unix time ``at``: one point of the throughput chart
    (:mod:`otelperf.report.timeline` records them; rates are differences between points)."""

    at: float
    calls: dict[str, float]
    items: dict[str, float]


@dataclass(frozen=True)
class ReportData:
    """The performance summary as data: :meth:`to_dict` is the JSON contract of docs/report.md,
    :meth:`to_csv` its tables.  :class:`otelperf.report.Report` adds the terminal rendering.

    >>> report = telemetry.report()  # doctest: +SKIP
    >>> report.to_json()             # doctest: +SKIP
    """

    source: Source
    endpoints: tuple[EndpointRow, ...]
    operations: tuple[OperationRow, ...]
    bottlenecks: tuple[BottleneckRow, ...]
    caches: tuple[CacheRow, ...]
    apis: tuple[ApiRow, ...]
    resources: dict[str, list[dict[str, Any]]]
    warnings: tuple[Finding, ...]
    recommendations: tuple[Finding, ...]
    # Throughput over the run (the HTML page's chart); not in the JSON or CSV contract.
    timeline: tuple[TimelinePoint, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (docs/report.md): plain types, NaN and unknown as None."""
        return {
            "source": json_safe(_asdict(self.source)),
            "endpoints": [
                {k: json_safe(getattr(r, k)) for k in _CONTRACT_ENDPOINT_KEYS}
                for r in self.endpoints
            ],
            "operations": [
                {k: json_safe(getattr(r, k)) for k in _CONTRACT_OPERATION_KEYS} | _histogram(r)
                for r in self.operations
            ],
            "bottlenecks": [json_safe(_asdict(r)) for r in self.bottlenecks],
            "caches": [json_safe(_asdict(r)) for r in self.caches],
            "apis": [json_safe(_asdict(r)) for r in self.apis],
            "resources": json_safe(self.resources),
            "warnings": [json_safe(_asdict(w)) for w in self.warnings],
            "recommendations": [
                {"kind": r.kind, "subject": r.subject, "message": r.message}
                for r in self.recommendations
            ],
        }

    def to_json(self) -> str:
        """The contract as text: sorted keys, two-space indent, trailing newline."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    def tables(self) -> dict[str, tuple[list[str], list[list[Any]]]]:
        """Each table as (header, rows) of contract values: what the CSV files hold."""
        d = self.to_dict()
        out: dict[str, tuple[list[str], list[list[Any]]]] = {}
        for name, keys in _CSV_TABLES.items():
            rows = d[name]
            out[name] = (list(keys), [[r[k] for k in keys] for r in rows])
        res_rows = []
        for metric in sorted(d["resources"]):
            for entry in d["resources"][metric]:
                labels = ",".join(f"{k}={v}" for k, v in sorted(entry["labels"].items()))
                res_rows.append([metric, labels, entry["value"], entry["threshold"]])
        out["resources"] = (["metric", "labels", "value", "threshold"], res_rows)
        return out

    def to_csv(self, table: str = "operations") -> str:
        """One table of :meth:`tables` as CSV (header first, ``\\n`` line ends, empty cells for
        null, floats as ``repr`` so they read back exactly)."""
        header, rows = self.tables()[table]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(["" if v is None else _csv_value(v) for v in row])
        return buf.getvalue()


_CSV_TABLES: dict[str, tuple[str, ...]] = {
    "endpoints": _CONTRACT_ENDPOINT_KEYS,
    "operations": _CONTRACT_OPERATION_KEYS,
    "bottlenecks": ("root_operation", "operation", "share", "self_share"),
    "caches": ("cache", "hits", "misses", "hit_ratio"),
    "apis": ("api", "model", "calls", "errors", "input_tokens", "output_tokens", "cost_usd"),
    "warnings": ("kind", "subject", "value", "threshold", "message"),
    "recommendations": ("kind", "subject", "message"),
}
# Every table :meth:`ReportData.tables` returns (the CSV files of ``--out``), in file order.
CSV_TABLES = (*_CSV_TABLES, "resources")


def _histogram(r: OperationRow) -> dict[str, Any]:
    """The JSON's histogram keys (not CSV columns): ``sum_seconds`` and cumulative ``buckets``
    as ``[[le, count], ...]`` with ``"+Inf"`` for the last bound (JSON has no infinity)."""
    pairs = [["+Inf" if math.isinf(le) else json_safe(le), json_safe(c)] for le, c in r.buckets]
    return {"sum_seconds": json_safe(r.duration_sum), "buckets": pairs}


def _csv_value(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def _asdict(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


def json_safe(v: Any) -> Any:
    """JSON-safe: NaN/inf -> None, integral floats -> int (counts read as counts)."""
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v
