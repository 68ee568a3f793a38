"""Alert group ``otelperf.bottlenecks``: one operation dominating or taking over a critical path.

>>> [a.severity for a in alerts(RuleContext())]
['info', 'warning']
"""

from __future__ import annotations

from otelperf import _names as n
from otelperf.generate.promql import number, on, rate, sum_by
from otelperf.generate.rules.spec import AlertSpec, RuleContext, percent

GROUP = "otelperf.bottlenecks"
PATH = "{{ $labels.operation }} under {{ $labels.root_operation }} in job {{ $labels.job }}"
_ROOT = (n.JOB, n.ROOT_OPERATION)


def alerts(ctx: RuleContext) -> list[AlertSpec]:
    """The group's rules, in the order alerts.yml lists them."""
    return [dominant(ctx), shift(ctx)]


def dominant(ctx: RuleContext) -> AlertSpec:
    """OtelperfBottleneckDominant: one operation is most of its root's critical path."""
    th = ctx.thresholds
    roots = sum_by(_ROOT, ctx.rate(n.ROOTS.prom, ctx.rate_window))
    return ctx.alert(
        GROUP, "OtelperfBottleneckDominant", "info", "30m",
        f"{n.REC_CRITICAL_PATH_SHARE.name} > {number(th.bottleneck_dominant_share)} "
        f"and {on(*_ROOT, tight=True)} ({roots} * 60 >= {number(ctx.min_requests_per_minute)})",
        "One operation takes most of its root operation's critical path.",
        f"{PATH} is {{{{ $value | humanizePercentage }}}} of the critical path over the last "
        f"{ctx.rate_window} (threshold {percent(th.bottleneck_dominant_share)}).",
    )  # fmt: skip


def shift(ctx: RuleContext) -> AlertSpec:
    """OtelperfBottleneckShift: an operation's hourly share rose against one day earlier."""
    th = ctx.thresholds
    share1h = n.REC_CRITICAL_PATH_SHARE_1H.name
    guard = number(ctx.min_requests_per_minute)

    # Both hours need traffic, or one root a day earlier could make any share a "shift".
    def roots_1h(offset: str | None = None) -> str:
        return sum_by(_ROOT, rate(ctx.raw(n.ROOTS.prom), "1h", offset))

    by_root = on(*_ROOT, tight=True)
    return ctx.alert(
        GROUP, "OtelperfBottleneckShift", "warning", "30m",
        f"{share1h} - ({share1h} offset 1d) > {number(th.bottleneck_shift_share)} "
        f"and {by_root} ({roots_1h()} * 60 >= {guard}) "
        f"and {by_root} ({roots_1h('1d')} * 60 >= {guard})",
        "An operation's share of the critical path rose sharply against one day earlier.",
        f"The critical-path share of {PATH} over the last hour rose by "
        f"{{{{ $value | humanizePercentage }}}} against the same hour one day earlier "
        f"(threshold {percent(th.bottleneck_shift_share)}).",
    )  # fmt: skip
