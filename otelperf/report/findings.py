"""Warnings and recommendations: the report's judgement of its rows.

Every threshold comes from :class:`otelperf.thresholds.Thresholds`, the settings object the alert
rules read too, so a rules config (``otelperf report --config FILE``) moves the report's
warnings with the alerts.  A value exactly on a threshold does not warn.  Each check returns
``(warnings, recommendations)``; :func:`findings` runs them in the report's order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otelperf.report.model import (
    ApiRow,
    BottleneckRow,
    CacheRow,
    EndpointRow,
    Finding,
    OperationRow,
    Totals,
)
from otelperf.thresholds import Thresholds

Found = tuple[list[Finding], list[Finding]]


def findings(
    ops: Sequence[OperationRow],
    per_root: Mapping[str, Sequence[BottleneckRow]],
    caches: Sequence[CacheRow],
    apis: Sequence[ApiRow],
    resources: Mapping[str, Sequence[Mapping[str, Any]]],
    totals: Totals,
    thresholds: Thresholds,
    endpoints: Sequence[EndpointRow] = (),
) -> Found:
    """Warnings over thresholds, and a specific recommendation each (all rows, before ``top``).

    >>> from otelperf.report.model import CacheRow, Totals
    >>> w, r = findings([], {}, [CacheRow("s", 1, 3, 0.25)], [], {}, Totals(), Thresholds())
    >>> [f.kind for f in w], [f.kind for f in r]
    (['cache_hit_ratio'], ['cache'])
    """
    warnings: list[Finding] = []
    recs: list[Finding] = []
    for w, r in (
        bottleneck_findings(per_root, {o.operation: o for o in ops}, thresholds, totals),
        operation_findings(ops, totals, thresholds),
        latency_findings(endpoints, ops, thresholds),
        cache_findings(caches, thresholds),
        api_findings(apis, thresholds),
        resource_findings(resources),
    ):
        warnings += w
        recs += r
    return warnings, recs


def bottleneck_findings(
    per_root: Mapping[str, Sequence[BottleneckRow]],
    by_op: Mapping[str, OperationRow],
    t: Thresholds,
    totals: Totals | None = None,
) -> Found:
    """A stage over ``bottleneck_stage_share`` of its root; CPU-bound or waiting advice, and
    when its CPU time is unknown, what is unknown and how to find out (never "waits")."""
    warnings: list[Finding] = []
    recs: list[Finding] = []
    # No operation with a CPU figure at all: CPU tracking is off (OTELPERF_TRACK_CPU).
    cpu_tracked = totals is not None and any(
        f.cpu_seconds is not None for f in totals.operations.values()
    )
    for root, rows in per_root.items():
        for b in rows:
            # A root's own time is not one of its stages; a lone root would always be "100 %".
            if b.operation == root or b.share <= t.bottleneck_stage_share:
                continue
            subject = f"{root} > {b.operation}"
            warnings.append(Finding(
                "bottleneck", subject,
                f"{b.operation} takes {pct(b.share)} of {root}'s critical path "
                f"({pct(b.self_share)} on its own, without its children)",
                b.share, t.bottleneck_stage_share,
            ))  # fmt: skip
            row = by_op.get(b.operation)
            cpu = row.cpu_ratio if row is not None else None
            if cpu is not None and cpu >= t.cpu_bound_ratio:
                recs.append(Finding(
                    "cpu_bound", subject,
                    f"{b.operation} is CPU-bound ({pct(cpu)} of its wall time on CPU) and "
                    f"takes {pct(b.share)} of {root}: profile it (py-spy, cProfile) and "
                    "optimise the hot loop, or move it off the request path (a worker or "
                    "queue; a process pool if it holds the GIL).",
                ))  # fmt: skip
            elif cpu is not None:
                recs.append(Finding(
                    "waiting", subject,
                    f"{b.operation} takes {pct(b.share)} of {root} and mostly waits (only "
                    f"{pct(cpu)} of its wall time on CPU): run independent calls in parallel "
                    "(asyncio.gather, a thread pool), cache their results, or batch many small "
                    "requests into one.",
                ))  # fmt: skip
            else:
                recs.append(Finding(
                    "cpu_unknown", subject,
                    f"{b.operation} takes {pct(b.share)} of {root}; "
                    + cpu_unknown(cpu_tracked),
                ))  # fmt: skip
    return warnings, recs


def cpu_unknown(cpu_tracked: bool) -> str:
    """What is unknown about an operation without a CPU figure, and how to find out."""
    advice = (
        "a CPU-bound stage needs profiling (py-spy, cProfile), a waiting one parallel calls, "
        "caching or batching."
    )
    if not cpu_tracked:
        return (
            "whether it computes or waits is unknown: CPU tracking is off (no operation has a "
            "CPU figure). Set OTELPERF_TRACK_CPU=true (or configure(track_cpu=True)) to record "
            f"the thread CPU time of measure()d operations and run the report again: {advice}"
        )
    return (
        "it has no CPU figure (async code, whose CPU cannot be attributed across awaits, or a "
        "span not recorded by measure()), so whether it computes or waits is unknown: measure "
        "its synchronous part with measure() to record its CPU time, or profile it (py-spy "
        f"dump while it runs): {advice}"
    )


def latency_findings(
    endpoints: Sequence[EndpointRow], ops: Sequence[OperationRow], t: Thresholds
) -> Found:
    """Endpoints and operations over ``operation_slow_p95_seconds`` at p95 (once per name:
    an endpoint's figures are its operation's), and an endpoint's error ratio over
    ``operation_error_ratio_warning`` when no operation row judged it already."""
    warnings: list[Finding] = []
    recs: list[Finding] = []
    op_names = {o.operation for o in ops}
    for e in endpoints:
        if e.operation in op_names or e.error_ratio is None or e.errors is None:
            continue
        if e.calls > 0 and e.error_ratio > t.operation_error_ratio_warning:
            warnings.append(Finding(
                "error_ratio", e.operation,
                f"{e.operation} fails {pct(e.error_ratio)} of calls "
                f"({num(e.errors)} of {num(e.calls)})",
                e.error_ratio, t.operation_error_ratio_warning,
            ))  # fmt: skip
            recs.append(Finding(
                "errors", e.operation,
                f"{e.operation} fails {pct(e.error_ratio)} of calls: look at its error spans, "
                "retry transient failures with backoff, and alert on the error ratio "
                "(otelperf rules).",
            ))  # fmt: skip
    tops = {e.operation: e for e in endpoints}
    seen: set[str] = set()
    rows: list[tuple[str, float | None]] = [(e.operation, e.p95_seconds) for e in endpoints]
    rows += [(o.operation, o.p95_seconds) for o in ops]
    for name, p95 in rows:
        if name in seen or p95 is None or p95 <= t.operation_slow_p95_seconds:
            continue
        seen.add(name)
        what = "endpoint" if name in tops else "operation"
        warnings.append(Finding(
            "slow_p95", name,
            f"{what} {name} takes {fmt_seconds(p95)} at p95, over the "
            f"{fmt_seconds(t.operation_slow_p95_seconds)} threshold",
            p95, t.operation_slow_p95_seconds,
        ))  # fmt: skip
        top = tops.get(name)
        if top is not None and top.top_bottleneck and top.top_bottleneck_share is not None:
            start = (
                f"start with {top.top_bottleneck}, {pct(top.top_bottleneck_share)} of its critical "
                "path (Where the time goes)"
            )
        else:
            start = "find where its time goes (its spans in a trace, or a profile)"
        recs.append(Finding(
            "slow", name,
            f"{name} takes {fmt_seconds(p95)} at p95: {start}; the slowest calls' traces "
            "(Grafana's exemplars) show what they waited on.",
        ))  # fmt: skip
    return warnings, recs


def operation_findings(ops: Sequence[OperationRow], totals: Totals, t: Thresholds) -> Found:
    """Error ratio over ``operation_error_ratio_warning``; item throughput under
    ``throughput_min_items_per_second`` of busy time."""
    warnings: list[Finding] = []
    recs: list[Finding] = []
    for r in ops:
        if r.calls > 0 and r.error_ratio > t.operation_error_ratio_warning:
            kinds = totals.operations[r.operation].error_types
            common = max(sorted(kinds), key=lambda k: kinds[k]) if kinds else ""
            mostly = f"; mostly {common}" if common else ""
            warnings.append(Finding(
                "error_ratio", r.operation,
                f"{r.operation} fails {pct(r.error_ratio)} of calls "
                f"({num(r.errors)} of {num(r.calls)}{mostly})",
                r.error_ratio, t.operation_error_ratio_warning,
            ))  # fmt: skip
            recs.append(Finding(
                "errors", r.operation,
                f"{r.operation} fails {pct(r.error_ratio)} of calls{mostly}: look at the "
                "error spans of that type, retry transient failures with backoff, and alert "
                "on the error ratio (otelperf rules).",
            ))  # fmt: skip
        if r.items > 0 and r.duration_sum > 0:
            # From the unrounded total: a rate keeps its precision (counts are shown whole).
            rate = totals.operations[r.operation].items / r.duration_sum
            if rate < t.throughput_min_items_per_second:
                recs.append(Finding(
                    "throughput", r.operation,
                    f"{r.operation} handles {rate:.0f} items per second while it runs "
                    f"({fmt_seconds(1 / rate)} per item): process items in batches, vectorise "
                    "the per-item work, and keep per-item I/O out of the loop.",
                ))  # fmt: skip
    return warnings, recs


def cache_findings(caches: Sequence[CacheRow], t: Thresholds) -> Found:
    """A hit ratio under ``cache_hit_ratio_min``."""
    warnings: list[Finding] = []
    recs: list[Finding] = []
    for c in caches:
        if c.hit_ratio is not None and c.hit_ratio < t.cache_hit_ratio_min:
            warnings.append(Finding(
                "cache_hit_ratio", c.cache,
                f"cache {c.cache} hits {pct(c.hit_ratio)} of lookups "
                f"({num(c.hits)} hits, {num(c.misses)} misses)",
                c.hit_ratio, t.cache_hit_ratio_min,
            ))  # fmt: skip
            recs.append(Finding(
                "cache", c.cache,
                f"cache {c.cache} misses {pct(1 - c.hit_ratio)} of lookups: check the key "
                "design (keys that include timestamps, request ids or unsorted parameters never "
                "repeat), lengthen the TTL if entries expire before reuse, and size the cache "
                "so entries are not evicted.",
            ))  # fmt: skip
    return warnings, recs


def api_findings(apis: Sequence[ApiRow], t: Thresholds) -> Found:
    """The costliest model (``apis`` sorted by cost) at ``api_expensive_model_share`` or more."""
    recs: list[Finding] = []
    total_cost = sum(a.cost_usd for a in apis)
    if apis and total_cost > 0:
        a = apis[0]
        share = a.cost_usd / total_cost
        if share >= t.api_expensive_model_share:
            tokens = a.input_tokens + a.output_tokens
            per_call = f", ${a.cost_usd / a.calls:.6g} per call" if a.calls else ""
            inputs = f", {pct(a.input_tokens / tokens)} of tokens are input" if tokens else ""
            recs.append(Finding(
                "api_cost", f"{a.api} {a.model}",
                f"{a.api} model {a.model} costs ${a.cost_usd:.6g}, {pct(share)} of the API "
                f"bill{per_call}{inputs}: send simple requests to a cheaper model, cache "
                "responses to repeated prompts, and trim long prompts.",
            ))  # fmt: skip
    return [], recs


def resource_findings(resources: Mapping[str, Sequence[Mapping[str, Any]]]) -> Found:
    """A resource gauge over its health threshold (the threshold travels with the entry)."""
    warnings: list[Finding] = []
    recs: list[Finding] = []
    for metric, entries in resources.items():
        for e in entries:
            limit = e["threshold"]
            if limit is None or e["value"] <= limit:
                continue
            where = ",".join(f"{k}={v}" for k, v in sorted(e["labels"].items()) if v)
            subject = f"{metric}{{{where}}}" if where else metric
            fmt = pct if metric.endswith("utilization") else fmt_mib
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


def pct(x: float) -> str:
    """A ratio as a percentage in a sentence: ``12.5 %``."""
    return f"{100 * x:.1f} %"


def fmt_seconds(s: float) -> str:
    """A duration in a sentence: ``12.0 ms`` under a second, ``1.50 s`` above."""
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt_mib(x: float) -> str:
    """Bytes in a sentence: ``512.0 MiB``."""
    return f"{x / 2**20:.1f} MiB"


def num(x: float) -> str:
    """A count in a sentence: whole numbers without ``.0``, fractions (windows) with one digit."""
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"
