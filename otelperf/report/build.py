"""Totals to a :class:`Report`: the rows of each table, sorted, and the findings (pure, no I/O).

Every source (a registry, a scraped /metrics page, a Prometheus window) ends here, so the
report reads the same whichever way its figures came.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from otelperf import _names as N
from otelperf.report.findings import findings
from otelperf.report.model import (
    DEFAULT_RESOURCE_LIMITS,
    RESOURCE_METRICS,
    ApiRow,
    BottleneckRow,
    CacheRow,
    EndpointRow,
    OperationRow,
    Source,
    TimelinePoint,
    Totals,
    whole,
)
from otelperf.report.rendering import Report
from otelperf.thresholds import Thresholds


def _none_if_nan(x: float) -> float | None:
    """A quantile as a figure: NaN (no observations) and +-Inf (q outside 0..1 from
    Prometheus) are "no figure"."""
    return x if math.isfinite(x) else None


def endpoint_rows(
    totals: Totals, per_root: Mapping[str, Sequence[BottleneckRow]]
) -> list[EndpointRow]:
    """One row per root operation, the longest total time first (pure).

    A root's figures are its own operation's duration histogram series (calls, errors,
    quantiles); a root no histogram records (a span from an instrumentation before otelperf
    counted every span) falls back to ``otelperf_roots_total`` and the root duration for calls
    and the mean.  Counts are shown whole, ratios and rates from the unrounded figures.

    >>> t = Totals(roots={"job": 4.0}, root_duration={"job": 2.0}, seconds=8.0)
    >>> r = endpoint_rows(t, {})[0]
    >>> (r.calls, r.mean_seconds, r.rate_per_second, r.errors, r.p95_seconds)
    (4.0, 0.5, 0.5, None, None)
    """
    names = {r for r, v in totals.roots.items() if v > 0}
    names |= {r for r, d in totals.root_duration.items() if d > 0}
    rows = []
    for name in names:
        # Rows are sorted by share within each root; the root's own time is not a stage.
        top = next((b for b in per_root.get(name, ()) if b.operation != name), None)
        f = totals.operations.get(name)
        if f is not None and f.calls > 0:
            calls, total = f.calls, f.duration_sum
            errors: float | None = whole(f.errors)
            ratio: float | None = f.error_ratio
            quantiles = [_none_if_nan(f.quantile(q)) for q in (0.5, 0.95, 0.99)]
        else:
            calls = totals.roots.get(name, 0.0)
            total = totals.root_duration.get(name, 0.0)
            errors = ratio = None
            quantiles = [None, None, None]
        rows.append(
            EndpointRow(
                operation=name,
                calls=whole(calls),
                errors=errors,
                error_ratio=ratio,
                rate_per_second=calls / totals.seconds if totals.seconds else None,
                p50_seconds=quantiles[0],
                p95_seconds=quantiles[1],
                p99_seconds=quantiles[2],
                mean_seconds=total / calls if calls else None,
                top_bottleneck=top.operation if top is not None else None,
                top_bottleneck_share=top.share if top is not None else None,
                total_seconds=total,
            )
        )
    rows.sort(key=lambda r: (-r.total_seconds, r.operation))
    return rows


def build_report(
    totals: Totals,
    source: Source | None = None,
    *,
    top: int | None = None,
    resource_limits: Mapping[str, float] | None = None,
    thresholds: Thresholds | None = None,
    timeline: Sequence[TimelinePoint] = (),
) -> Report:
    """Rows, warnings and recommendations from totals (pure; ``top`` limits each table).

    ``resource_limits`` are the health thresholds per gauge (default: the defaults);
    ``thresholds`` judge the rest (default ``Thresholds()``, or a rules config's);
    ``timeline`` is carried into the report for its throughput chart.

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
                calls=whole(f.calls),
                errors=whole(f.errors),
                error_ratio=f.error_ratio,
                p50_seconds=_none_if_nan(f.quantile(0.5)),
                p95_seconds=_none_if_nan(f.quantile(0.95)),
                p99_seconds=_none_if_nan(f.quantile(0.99)),
                items=whole(f.items),
                bytes=whole(f.bytes),
                cpu_ratio=cpu_ratio,
                duration_sum=f.duration_sum,
                buckets=tuple(sorted(f.buckets.items())),
                # Items over the seconds the figures cover (uptime, or the data in a window).
                items_per_second=f.items / totals.seconds if f.items and totals.seconds else None,
            )
        )
    # Where the time went first: total time spent, then name for a stable order.
    ops.sort(key=lambda r: (-r.duration_sum, r.operation))

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
        ratio = hits / (hits + misses) if hits + misses else None
        caches.append(CacheRow(c, whole(hits), whole(misses), ratio))

    def tokens(api: str, model: str, *types: str) -> float:
        return sum(totals.api_tokens.get((api, model, t), 0.0) for t in types)

    api_keys = {(a, m) for a, m, _ in totals.api_calls} | {(a, m) for a, m, _ in totals.api_tokens}
    api_keys |= set(totals.api_cost)
    apis = []
    for a, m in api_keys:
        calls = sum(v for (a2, m2, _), v in totals.api_calls.items() if (a2, m2) == (a, m))
        apis.append(
            ApiRow(
                api=a,
                model=m,
                calls=whole(calls),
                errors=whole(totals.api_calls.get((a, m, N.OUTCOME_ERROR), 0.0)),
                # token_type parts are disjoint (docs/processor.md): the report's input and
                # output are the wholes, cached input and reasoning included.
                input_tokens=whole(tokens(a, m, N.TOKEN_INPUT, N.TOKEN_CACHED_INPUT)),
                output_tokens=whole(tokens(a, m, N.TOKEN_OUTPUT, N.TOKEN_REASONING)),
                cost_usd=totals.api_cost.get((a, m), 0.0),
            )
        )
    apis.sort(key=lambda r: (-r.cost_usd, -r.calls, r.api, r.model))
    endpoints = endpoint_rows(totals, per_root)

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

    warnings, recs = findings(
        ops, per_root, caches, apis, resources, totals, thresholds or Thresholds(), endpoints
    )
    cut = top if top else None
    return Report(
        source=source,
        endpoints=tuple(endpoints[:cut]),
        operations=tuple(ops[:cut]),
        bottlenecks=tuple(bottlenecks),
        caches=tuple(caches[:cut]),
        apis=tuple(apis[:cut]),
        resources=resources,
        warnings=tuple(warnings),
        recommendations=tuple(recs),
        timeline=tuple(timeline),
    )
