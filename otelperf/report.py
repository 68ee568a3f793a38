"""Reading otelperf's metrics back: the performance report, in the terminal and as data.

The same code serves ``otelperf report``, ``Telemetry.report()`` and the demo's live summary.
Figures come from one of three sources, all reduced to the same :class:`Totals`:

* a registry of the running process (``registry.collect()``), totals since it started;
* a scraped ``/metrics`` page parsed with prometheus_client's parser, the same totals;
* a Prometheus server queried over a window (:mod:`otelperf.report_prometheus`).

:func:`build_report` turns totals into a :class:`Report` (pure: no I/O), which renders as text
(:meth:`Report.to_text`), as the JSON contract in docs/report.md (:meth:`Report.to_dict`) or
as CSV tables.  Quantiles are interpolated from the buckets the way Prometheus's
histogram_quantile() does, so the report and a Grafana panel agree.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import math
import os
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from otelperf import _names as N
from otelperf.config import (
    DEFAULT_HEALTH_CPU_THRESHOLD,
    DEFAULT_HEALTH_DISK_THRESHOLD,
    DEFAULT_HEALTH_MEMORY_THRESHOLD,
    Settings,
)

# --- thresholds ------------------------------------------------------------------------------
# The rules: a stage over 20 % of its root's critical path, an error ratio over 5 %, a
# cache hit ratio under 60 %.  The rest decide which recommendation a finding gets.
BOTTLENECK_SHARE = 0.20
ERROR_RATIO = 0.05
CACHE_HIT_RATIO = 0.60
CPU_BOUND_RATIO = 0.5  # CPU seconds per wall second at or above which a stage is CPU-bound
EXPENSIVE_MODEL_SHARE = 0.5  # a model with at least this share of the API bill
MIN_ITEMS_PER_SECOND = 1000.0  # items per busy second below which an item stage is "slow"
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
TEXT_WIDTH = 80


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
    cache_requests: dict[tuple[str, str], float] = field(default_factory=dict)  # (cache, result)
    # (api, model, outcome) and (api, model, token_type)
    api_calls: dict[tuple[str, str, str], float] = field(default_factory=dict)
    api_tokens: dict[tuple[str, str, str], float] = field(default_factory=dict)
    api_cost: dict[tuple[str, str], float] = field(default_factory=dict)  # (api, model)
    # prom name -> [(labels, value)] for the gauges in RESOURCE_METRICS
    resources: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    def op(self, name: str) -> OperationFigures:
        f = self.operations.get(name)
        if f is None:
            f = self.operations[name] = OperationFigures(name)
        return f

    def empty(self) -> bool:
        """True when there is nothing otelperf recorded (resource gauges alone do not count)."""
        return not (
            self.operations or self.root_duration or self.cache_requests or self.api_calls
            or self.api_cost or self.api_tokens
        )  # fmt: skip


def _add(d: dict[Any, float], key: Any, v: float) -> None:
    d[key] = d.get(key, 0.0) + v


def totals_from_families(families: Iterable[Metric]) -> Totals:
    """Totals from metric families (``registry.collect()`` or a parsed scrape).

    All outcomes, error types and instances are summed; empty label values count as absent.
    """
    t = Totals()
    hist = N.OPERATION_DURATION.prom
    resource_names = {m.prom for m in RESOURCE_METRICS}
    for fam in families:
        for s in fam.samples:
            name, lab, v = s.name, s.labels, float(s.value)
            if math.isnan(v):
                continue
            if name in resource_names:
                t.resources.setdefault(name, []).append((dict(lab), v))
                continue
            op = lab.get(N.OPERATION)
            root = lab.get(N.ROOT_OPERATION)
            if name == hist + "_bucket" and op is not None:
                f = t.op(op)
                le = float(lab["le"])
                f.buckets[le] = f.buckets.get(le, 0.0) + v
            elif name == hist + "_count" and op is not None:
                f = t.op(op)
                f.calls += v
                if lab.get(N.OUTCOME) == N.OUTCOME_ERROR:
                    f.errors += v
                    _add(f.error_types, lab.get(N.ERROR_TYPE) or "", v)
            elif name == hist + "_sum" and op is not None:
                t.op(op).duration_sum += v
            elif name == N.OPERATION_ITEMS.prom and op is not None:
                t.op(op).items += v
            elif name == N.OPERATION_BYTES.prom and op is not None:
                t.op(op).bytes += v
            elif name == N.OPERATION_CPU.prom and op is not None:
                f = t.op(op)
                f.cpu_seconds = (f.cpu_seconds or 0.0) + v
            elif name == N.OPERATION_IN_FLIGHT.prom and op is not None:
                t.op(op).in_flight += v
            elif name == N.CRITICAL_PATH.prom and op is not None and root is not None:
                _add(t.critical_path, (root, op), v)
            elif name == N.SELF_TIME.prom and op is not None and root is not None:
                _add(t.self_time, (root, op), v)
            elif name == N.ROOT_DURATION.prom and root is not None:
                _add(t.root_duration, root, v)
            elif name == N.CACHE_REQUESTS.prom:
                _add(t.cache_requests, (lab.get(N.CACHE, ""), lab.get(N.RESULT, "")), v)
            elif name == N.API_CALLS.prom:
                key3 = (lab.get(N.API, ""), lab.get(N.MODEL, ""), lab.get(N.OUTCOME, ""))
                _add(t.api_calls, key3, v)
            elif name == N.API_TOKENS.prom:
                key3 = (lab.get(N.API, ""), lab.get(N.MODEL, ""), lab.get(N.TOKEN_TYPE, ""))
                _add(t.api_tokens, key3, v)
            elif name == N.API_COST.prom:
                _add(t.api_cost, (lab.get(N.API, ""), lab.get(N.MODEL, "")), v)
    return t


def families_from_text(text: str) -> list[Metric]:
    """Parse a Prometheus text exposition (raises ValueError on content that is not one)."""
    return list(text_string_to_metric_families(text))


def operations(families: Iterable[Metric]) -> dict[str, OperationFigures]:
    """Per-operation figures from metric families (all outcomes and error types summed)."""
    return totals_from_families(families).operations


# --- the report ------------------------------------------------------------------------------


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
    duration_sum: float  # not in the JSON contract: the text table sorts by it


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

    def describe(self) -> str:
        if self.kind == "prometheus":
            job = f", job {self.job}" if self.job else ", all jobs"
            return f"{self.target}: the last {self.window}{job}"
        if self.kind == "url":
            return f"{self.target}: totals since the process started"
        return "this process: totals since it started"


_CONTRACT_OPERATION_KEYS = (
    "operation", "calls", "errors", "error_ratio", "p50_seconds", "p95_seconds", "p99_seconds",
    "items", "bytes", "cpu_ratio",
)  # fmt: skip


@dataclass(frozen=True)
class Report:
    """The performance summary; :meth:`to_dict` is the JSON contract of docs/report.md.

    >>> report = telemetry.report()  # doctest: +SKIP
    >>> print(report.to_text())      # doctest: +SKIP
    """

    source: Source
    operations: tuple[OperationRow, ...]
    bottlenecks: tuple[BottleneckRow, ...]
    caches: tuple[CacheRow, ...]
    apis: tuple[ApiRow, ...]
    resources: dict[str, list[dict[str, Any]]]
    warnings: tuple[Finding, ...]
    recommendations: tuple[Finding, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (docs/report.md): plain types, NaN and unknown as None."""
        return {
            "source": _clean(_asdict(self.source)),
            "operations": [
                {k: _clean(getattr(r, k)) for k in _CONTRACT_OPERATION_KEYS}
                for r in self.operations
            ],
            "bottlenecks": [_clean(_asdict(r)) for r in self.bottlenecks],
            "caches": [_clean(_asdict(r)) for r in self.caches],
            "apis": [_clean(_asdict(r)) for r in self.apis],
            "resources": _clean(self.resources),
            "warnings": [_clean(_asdict(w)) for w in self.warnings],
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
        """One table as CSV (header first, ``\\n`` line ends, empty cells for null)."""
        header, rows = self.tables()[table]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(["" if v is None else _csv_value(v) for v in row])
        return buf.getvalue()

    def to_text(self, color: bool = False, width: int = TEXT_WIDTH) -> str:
        """Tables for a terminal, at most ``width`` columns; ANSI colours when ``color``."""
        from otelperf.report_text import render

        return render(self, color=color, width=width)


_CSV_TABLES: dict[str, tuple[str, ...]] = {
    "operations": _CONTRACT_OPERATION_KEYS,
    "bottlenecks": ("root_operation", "operation", "share", "self_share"),
    "caches": ("cache", "hits", "misses", "hit_ratio"),
    "apis": ("api", "model", "calls", "errors", "input_tokens", "output_tokens", "cost_usd"),
    "warnings": ("kind", "subject", "value", "threshold", "message"),
    "recommendations": ("kind", "subject", "message"),
}
CSV_TABLES = (*_CSV_TABLES, "resources")


def _asdict(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


def _clean(v: Any) -> Any:
    """JSON-safe: NaN/inf -> None, integral floats -> int (counts read as counts)."""
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _csv_value(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def _none_if_nan(x: float) -> float | None:
    # NaN (no observations) and +-Inf (q outside 0..1 from Prometheus) are "no figure".
    return x if math.isfinite(x) else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _fmt_seconds(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def build_report(
    totals: Totals,
    source: Source | None = None,
    *,
    top: int | None = None,
    resource_limits: Mapping[str, float] | None = None,
) -> Report:
    """Rows, warnings and recommendations from totals (pure; ``top`` limits each table).

    >>> t = Totals(cache_requests={("sessions", "hit"): 3.0, ("sessions", "miss"): 1.0})
    >>> build_report(t).caches[0].hit_ratio
    0.75
    """
    source = source or Source("process")
    limits = dict(DEFAULT_RESOURCE_LIMITS if resource_limits is None else resource_limits)

    ops: list[OperationRow] = []
    for name, f in totals.operations.items():
        if f.calls <= 0 and not f.items and not f.bytes:
            continue
        cpu_ratio = (
            f.cpu_seconds / f.duration_sum
            if f.cpu_seconds is not None and f.duration_sum > 0
            else None
        )
        ops.append(
            OperationRow(
                operation=name,
                calls=f.calls,
                errors=f.errors,
                error_ratio=f.error_ratio,
                p50_seconds=_none_if_nan(f.quantile(0.5)),
                p95_seconds=_none_if_nan(f.quantile(0.95)),
                p99_seconds=_none_if_nan(f.quantile(0.99)),
                items=f.items,
                bytes=f.bytes,
                cpu_ratio=cpu_ratio,
                duration_sum=f.duration_sum,
            )
        )
    # Where the time went first: total time spent, then name for a stable order.
    ops.sort(key=lambda r: (-r.duration_sum, r.operation))
    by_op = {r.operation: r for r in ops}

    bottlenecks: list[BottleneckRow] = []
    roots = sorted(
        (r for r, d in totals.root_duration.items() if d > 0),
        key=lambda r: (-totals.root_duration[r], r),
    )
    per_root: dict[str, list[BottleneckRow]] = {}
    for root in roots:
        rd = totals.root_duration[root]
        names = {op for (r, op) in totals.critical_path if r == root}
        names |= {op for (r, op) in totals.self_time if r == root}
        rows = [
            BottleneckRow(
                root,
                op,
                totals.critical_path.get((root, op), 0.0) / rd,
                totals.self_time.get((root, op), 0.0) / rd,
            )
            for op in names
        ]
        rows.sort(key=lambda b: (-b.share, -b.self_share, b.operation))
        per_root[root] = rows
        bottlenecks.extend(rows[:top] if top else rows)

    cache_names = sorted({c for c, _ in totals.cache_requests})
    caches = []
    for c in cache_names:
        hits = totals.cache_requests.get((c, N.RESULT_HIT), 0.0)
        misses = totals.cache_requests.get((c, N.RESULT_MISS), 0.0)
        caches.append(CacheRow(c, hits, misses, hits / (hits + misses) if hits + misses else None))

    api_keys = {(a, m) for a, m, _ in totals.api_calls} | {(a, m) for a, m, _ in totals.api_tokens}
    api_keys |= set(totals.api_cost)
    apis = []
    for a, m in api_keys:
        calls = sum(v for (a2, m2, _), v in totals.api_calls.items() if (a2, m2) == (a, m))
        apis.append(
            ApiRow(
                api=a,
                model=m,
                calls=calls,
                errors=totals.api_calls.get((a, m, N.OUTCOME_ERROR), 0.0),
                input_tokens=totals.api_tokens.get((a, m, N.TOKEN_INPUT), 0.0),
                output_tokens=totals.api_tokens.get((a, m, N.TOKEN_OUTPUT), 0.0),
                cost_usd=totals.api_cost.get((a, m), 0.0),
            )
        )
    apis.sort(key=lambda r: (-r.cost_usd, -r.calls, r.api, r.model))

    resources: dict[str, list[dict[str, Any]]] = {}
    for metric in RESOURCE_METRICS:
        entries = totals.resources.get(metric.prom)
        if not entries:
            continue
        limit = limits.get(metric.prom)
        resources[metric.prom] = [
            {"labels": lab, "value": v, "threshold": limit}
            for lab, v in sorted(entries, key=lambda e: sorted(e[0].items()))
        ]

    warnings, recs = _findings(ops, by_op, per_root, caches, apis, resources, totals)
    cut = top if top else None
    return Report(
        source=source,
        operations=tuple(ops[:cut]),
        bottlenecks=tuple(bottlenecks),
        caches=tuple(caches[:cut]),
        apis=tuple(apis[:cut]),
        resources=resources,
        warnings=tuple(warnings),
        recommendations=tuple(recs),
    )


def _findings(
    ops: list[OperationRow],
    by_op: dict[str, OperationRow],
    per_root: dict[str, list[BottleneckRow]],
    caches: list[CacheRow],
    apis: list[ApiRow],
    resources: dict[str, list[dict[str, Any]]],
    totals: Totals,
) -> tuple[list[Finding], list[Finding]]:
    """The rules of the issue: warnings over thresholds, and a specific recommendation each."""
    warnings: list[Finding] = []
    recs: list[Finding] = []

    for root, rows in per_root.items():
        for b in rows:
            # A root's own time is not one of its stages; a lone root would always be "100 %".
            if b.operation == root or b.share <= BOTTLENECK_SHARE:
                continue
            subject = f"{root} > {b.operation}"
            warnings.append(Finding(
                "bottleneck", subject,
                f"{b.operation} takes {_pct(b.share)} of {root}'s critical path "
                f"({_pct(b.self_share)} on its own, without its children)",
                b.share, BOTTLENECK_SHARE,
            ))  # fmt: skip
            row = by_op.get(b.operation)
            cpu = row.cpu_ratio if row is not None else None
            if cpu is not None and cpu >= CPU_BOUND_RATIO:
                recs.append(Finding(
                    "cpu_bound", subject,
                    f"{b.operation} is CPU-bound ({_pct(cpu)} of its wall time on CPU) and "
                    f"takes {_pct(b.share)} of {root}: profile it (py-spy, cProfile) and "
                    "optimise the hot loop, or move it off the request path (a worker or "
                    "queue; a process pool if it holds the GIL).",
                ))  # fmt: skip
            else:
                # No CPU figure: async (CPU cannot be attributed across awaits) or a span from
                # another instrumentation; both are far more often waiting than computing.
                how = (
                    "records no CPU time (async, or not measured with measure()), so it most "
                    "likely waits"
                    if cpu is None
                    else f"mostly waits (only {_pct(cpu)} of its wall time on CPU)"
                )
                recs.append(Finding(
                    "waiting", subject,
                    f"{b.operation} takes {_pct(b.share)} of {root} and {how}: run "
                    "independent calls in parallel (asyncio.gather, a thread pool), cache "
                    "their results, or batch many small requests into one.",
                ))  # fmt: skip

    for r in ops:
        if r.calls > 0 and r.error_ratio > ERROR_RATIO:
            kinds = totals.operations[r.operation].error_types
            common = max(sorted(kinds), key=lambda k: kinds[k]) if kinds else ""
            mostly = f"; mostly {common}" if common else ""
            warnings.append(Finding(
                "error_ratio", r.operation,
                f"{r.operation} fails {_pct(r.error_ratio)} of calls "
                f"({_num(r.errors)} of {_num(r.calls)}{mostly})",
                r.error_ratio, ERROR_RATIO,
            ))  # fmt: skip
            recs.append(Finding(
                "errors", r.operation,
                f"{r.operation} fails {_pct(r.error_ratio)} of calls{mostly}: look at the "
                "error spans of that type, retry transient failures with backoff, and alert "
                "on the error ratio (otelperf rules).",
            ))  # fmt: skip
        if r.items > 0 and r.duration_sum > 0:
            rate = r.items / r.duration_sum
            if rate < MIN_ITEMS_PER_SECOND:
                recs.append(Finding(
                    "throughput", r.operation,
                    f"{r.operation} handles {rate:.0f} items per second while it runs "
                    f"({_fmt_seconds(1 / rate)} per item): process items in batches, vectorise "
                    "the per-item work, and keep per-item I/O out of the loop.",
                ))  # fmt: skip

    for c in caches:
        if c.hit_ratio is not None and c.hit_ratio < CACHE_HIT_RATIO:
            warnings.append(Finding(
                "cache_hit_ratio", c.cache,
                f"cache {c.cache} hits {_pct(c.hit_ratio)} of lookups "
                f"({_num(c.hits)} hits, {_num(c.misses)} misses)",
                c.hit_ratio, CACHE_HIT_RATIO,
            ))  # fmt: skip
            recs.append(Finding(
                "cache", c.cache,
                f"cache {c.cache} misses {_pct(1 - c.hit_ratio)} of lookups: check the key "
                "design (keys that include timestamps, request ids or unsorted parameters never "
                "repeat), lengthen the TTL if entries expire before reuse, and size the cache "
                "so entries are not evicted.",
            ))  # fmt: skip

    total_cost = sum(a.cost_usd for a in apis)
    if apis and total_cost > 0:
        a = apis[0]  # sorted by cost
        share = a.cost_usd / total_cost
        if share >= EXPENSIVE_MODEL_SHARE:
            tokens = a.input_tokens + a.output_tokens
            per_call = f", ${a.cost_usd / a.calls:.6g} per call" if a.calls else ""
            inputs = f", {_pct(a.input_tokens / tokens)} of tokens are input" if tokens else ""
            recs.append(Finding(
                "api_cost", f"{a.api} {a.model}",
                f"{a.api} model {a.model} costs ${a.cost_usd:.6g}, {_pct(share)} of the API "
                f"bill{per_call}{inputs}: send simple requests to a cheaper model, cache "
                "responses to repeated prompts, and trim long prompts.",
            ))  # fmt: skip

    for metric, entries in resources.items():
        for e in entries:
            limit = e["threshold"]
            if limit is None or e["value"] <= limit:
                continue
            where = ",".join(f"{k}={v}" for k, v in sorted(e["labels"].items()) if v)
            subject = f"{metric}{{{where}}}" if where else metric
            fmt = _pct if metric.endswith("utilization") else _fmt_bytes
            warnings.append(Finding(
                "resource", subject,
                f"{subject} is {fmt(e['value'])}, over the {fmt(limit)} health threshold",
                e["value"], limit,
            ))  # fmt: skip
            recs.append(Finding(
                "resource", subject,
                f"{subject} is over its health threshold: find the operations that use it "
                "(cpu_ratio, memory deltas), add capacity, or spread the load.",
            ))  # fmt: skip
    return warnings, recs


def _fmt_bytes(x: float) -> str:
    return f"{x / 2**20:.1f} MiB"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


# --- sources ---------------------------------------------------------------------------------


def from_registry(
    registry: Any, *, top: int | None = None, settings: Settings | None = None
) -> Report:
    """The report of the running process, from its prometheus_client registry; ``settings``
    give the health thresholds (default: the defaults).

    >>> from_registry(telemetry.registry).to_text()  # doctest: +SKIP
    """
    limits = resource_limits(settings) if settings is not None else None
    totals = totals_from_families(registry.collect())
    return build_report(totals, Source("process"), top=top, resource_limits=limits)


def _error(message: str) -> Exception:
    from otelperf.errors import UserError

    return UserError(message)


def fetch_text(url: str, what: str, timeout: float = 10.0) -> str:
    """GET ``url`` as text; any failure becomes a one-line UserError naming ``what``."""
    if not url.startswith(("http://", "https://")):
        raise _error(f"{what}={url!r} is not an http:// or https:// URL")
    req = urllib.request.Request(url, headers={"Accept": "text/plain;version=0.0.4"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body: bytes = resp.read()
    except urllib.error.HTTPError as exc:
        raise _error(f"{what} {url} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _error(f"cannot reach {what} {url}: {_reason(exc.reason)}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # timeouts, resets
        raise _error(f"cannot reach {what} {url}: {_reason(exc)}") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _error(f"{what} {url} did not return Prometheus metrics (not UTF-8 text)") from None


def _reason(exc: object) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def totals_from_url(url: str, timeout: float = 10.0) -> Totals:
    """Scrape one otelperf /metrics endpoint: totals since that process started."""
    text = fetch_text(url, "--url", timeout)
    try:
        families = families_from_text(text)
    except ValueError as exc:
        first = str(exc).splitlines()[0][:80] if str(exc) else "unparsable"
        raise _error(f"--url {url} did not return Prometheus metrics ({first})") from None
    totals = totals_from_families(families)
    if totals.empty():
        raise _error(
            f"--url {url} shows no otelperf metrics (no operation, cache or API call recorded "
            "yet; is it an otelperf /metrics endpoint?)"
        )
    return totals


# --- the command -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--url", help="an otelperf /metrics endpoint: totals since it started")
    src.add_argument(
        "--prometheus",
        metavar="URL",
        help="a Prometheus server (http://HOST:9090): figures over --window",
    )
    parser.add_argument(
        "--window",
        default="1h",
        help="with --prometheus: the window, a Prometheus duration (default 1h)",
    )
    parser.add_argument(
        "--job", default=None, help="with --prometheus: only this scrape job (default: all jobs)"
    )
    parser.add_argument(
        "--at",
        default=None,
        metavar="TIME",
        help="with --prometheus: end of the window, Unix seconds or RFC 3339 (default: now)",
    )
    parser.add_argument(
        "--format",
        default="text",
        choices=("text", "json", "csv"),
        help="text tables (default), the JSON contract, or CSV",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="with --format csv: write one file per table into DIR",
    )
    parser.add_argument(
        "--top",
        default="10",
        metavar="N",
        help="rows per table (bottlenecks: per root); 0 = all (default 10)",
    )
    parser.add_argument(
        "--timeout", default="10", metavar="SECONDS", help="HTTP timeout per request (default 10)"
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from otelperf.config import parse_float, parse_int

    out = out or sys.stdout
    top = parse_int(args.top, "--top", low=0)
    timeout = parse_float(args.timeout, "--timeout", low=0.001)
    if args.out is not None and args.format != "csv":
        raise _error("--out is only for --format csv (json and text go to stdout)")
    if args.url is not None:
        for opt in ("job", "at"):
            if getattr(args, opt) is not None:
                raise _error(f"--{opt} only applies to --prometheus, not to --url")
        totals = totals_from_url(args.url, timeout)
        source = Source("url", args.url)
    else:
        from otelperf.report_prometheus import parse_time, parse_window, totals_from_prometheus

        window = parse_window(args.window)
        at = parse_time(args.at) if args.at is not None else time.time()
        totals = totals_from_prometheus(args.prometheus, window, args.job, at, timeout)
        source = Source("prometheus", args.prometheus, window, args.job, at)
    # The health thresholds of this environment (OTELPERF_HEALTH_*), as /health would use them.
    from otelperf.config import resolve

    limits = resource_limits(resolve(start_server=False))
    report = build_report(totals, source, top=top or None, resource_limits=limits)

    if args.format == "json":
        out.write(report.to_json())
    elif args.format == "csv":
        if args.out is None:
            out.write(report.to_csv("operations"))
        else:
            for name, path in write_csv(report, args.out).items():
                print(f"wrote {path} ({name})", file=out)
    else:
        out.write(report.to_text(color=_use_color(out)))
    return 0


def write_csv(report: Report, directory: str) -> dict[str, str]:
    """Write one ``<table>.csv`` per table into ``directory``; returns table -> path."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise _error(f"--out {directory}: cannot create the directory ({_reason(exc)})") from None
    paths: dict[str, str] = {}
    for name in CSV_TABLES:
        path = os.path.join(directory, f"{name}.csv")
        try:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(report.to_csv(name))
        except OSError as exc:
            raise _error(f"--out {directory}: cannot write {path} ({_reason(exc)})") from None
        paths[name] = path
    return paths


def _use_color(stream: TextIO) -> bool:
    # https://no-color.org: colours only on a terminal, and never when NO_COLOR is set.
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# --- the demo's live summary -----------------------------------------------------------------


class LiveSummary:
    """Rates between two calls plus since-start figures, for the demo's periodic summary."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._last_t = time.monotonic()

    def render(self, telemetry: Any, width: int = TEXT_WIDTH) -> str:
        from otelperf.report_text import live_summary

        now = time.monotonic()
        report = telemetry.report()
        dt = max(now - self._last_t, 1e-9)
        rates = {
            r.operation: max(r.calls - self._last.get(r.operation, 0.0), 0.0) / dt
            for r in report.operations
        }
        self._last = {r.operation: r.calls for r in report.operations}
        self._last_t = now
        return live_summary(report, rates, width=width)


def wrap(text: str, width: int, indent: str) -> str:
    # Names and URLs stay whole: no breaks at hyphens or inside long words.
    return textwrap.fill(text, width=width, initial_indent=indent,
                         subsequent_indent=" " * len(indent), break_on_hyphens=False,
                         break_long_words=False)  # fmt: skip
