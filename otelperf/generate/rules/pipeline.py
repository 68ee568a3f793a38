"""Alert group ``otelperf.pipeline``: the monitoring itself (scrapes, dropped spans, label caps).

>>> [a.for_ for a in alerts(RuleContext())]
['2m', '10m', '5m', '5m', '5m']
"""

from __future__ import annotations

from otelperf import _names as n
from otelperf.generate.promql import aggregate, call, increase, on, range_vector, sum_by
from otelperf.generate.rules.spec import AlertSpec, RuleContext

GROUP = "otelperf.pipeline"
TARGET_DOWN = "OtelperfTargetDown"
TARGET_DOWN_FOR = "2m"


def alerts(ctx: RuleContext) -> list[AlertSpec]:
    """The group's rules, in the order alerts.yml lists them."""
    return [
        target_down(ctx),
        target_absent(ctx),
        spans_dropped(ctx),
        cardinality_overflow(ctx),
        internal_errors(ctx),
    ]


def target_absent(ctx: RuleContext) -> AlertSpec:
    """OtelperfTargetAbsent: a job that had targets in the last day has none now.

    ``up == 0`` needs a target to scrape; one that left service discovery has no ``up`` at
    all.  Per job, not per instance: every rollout replaces instances.  With a job selector,
    ``absent()`` also covers a job Prometheus never saw since its start.
    """
    up = ctx.raw(n.UP)
    seen = aggregate("group", (n.JOB,), call("max_over_time", range_vector(up, "1d")))
    expr = f"{seen} unless {on(n.JOB, tight=True)} {aggregate('group', (n.JOB,), up)}"
    if ctx.job_selector:
        expr += f" or {call('absent', up)}"
    return ctx.alert(
        GROUP, "OtelperfTargetAbsent", "critical", "10m",
        expr,
        "A job's targets have all left service discovery.",
        "Job {{ $labels.job }} had scrape targets in the last day and has none now "
        "(value {{ $value }}).",
    )  # fmt: skip


def internal_errors(ctx: RuleContext) -> AlertSpec:
    """OtelperfInternalErrors: otelperf caught failures of its own in the last hour."""
    raw = ctx.raw(n.INTERNAL_ERRORS.prom)
    errors = sum_by((n.JOB, n.COMPONENT), increase(raw, "1h"))
    # The series appears with the first failure (at 1, not 0), which increase() cannot see:
    # a series that did not exist an hour ago counts with its value.
    new = sum_by((n.JOB, n.COMPONENT), f"{raw} unless {raw} offset 1h")
    return ctx.alert(
        GROUP, "OtelperfInternalErrors", "warning", "5m",
        f"{errors} > 0 or {new} > 0",
        "otelperf caught failures inside itself; some measurements may be missing.",
        "Job {{ $labels.job }} counted {{ $value | humanize }} internal errors in "
        "component {{ $labels.component }} over the last hour.",
    )  # fmt: skip


def target_down(ctx: RuleContext) -> AlertSpec:
    """OtelperfTargetDown; its description states its own ``for``."""
    return ctx.alert(
        GROUP, TARGET_DOWN, "critical", TARGET_DOWN_FOR,
        f"{ctx.raw(n.UP)} == 0",
        "Prometheus cannot scrape a target.",
        f"Target {{{{ $labels.instance }}}} of job {{{{ $labels.job }}}} has been down "
        f"for more than {ctx.for_of(TARGET_DOWN, TARGET_DOWN_FOR)} (up = {{{{ $value }}}}).",
    )  # fmt: skip


def spans_dropped(ctx: RuleContext) -> AlertSpec:
    """OtelperfSpansDropped: spans left out of the bottleneck attribution, by reason."""
    w = ctx.rate_window
    return ctx.alert(
        GROUP, "OtelperfSpansDropped", "warning", "5m",
        f"{sum_by((n.JOB, n.REASON), ctx.rate(n.DROPPED_SPANS.prom, w))} > 0",
        "otelperf is leaving spans out of its bottleneck attribution.",
        f"Job {{{{ $labels.job }}}} dropped {{{{ $value | humanize }}}} spans/s from "
        f"attribution over the last {w} (reason {{{{ $labels.reason }}}}).",
    )  # fmt: skip


def cardinality_overflow(ctx: RuleContext) -> AlertSpec:
    """OtelperfMetricsCardinalityOverflow: measurements recorded under the overflow label."""
    w = ctx.rate_window
    return ctx.alert(
        GROUP, "OtelperfMetricsCardinalityOverflow", "warning", "5m",
        f"{sum_by((n.JOB, n.COMPONENT), ctx.rate(n.CARDINALITY_OVERFLOW.prom, w))} > 0",
        f'Measurements are being recorded under "{n.OVERFLOW}" because a label cap was '
        "reached.",
        f"Job {{{{ $labels.job }}}} recorded {{{{ $value | humanize }}}} measurements/s "
        f'under "{n.OVERFLOW}" in component {{{{ $labels.component }}}} over the last {w}.',
    )  # fmt: skip
