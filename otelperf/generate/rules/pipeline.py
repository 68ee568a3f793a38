"""Alert group ``otelperf.pipeline``: the monitoring itself (scrapes, dropped spans, label caps).

>>> [a.for_ for a in alerts(RuleContext())]
['2m', '5m', '5m']
"""

from __future__ import annotations

from otelperf import _names as n
from otelperf.generate.promql import sum_by
from otelperf.generate.rules.spec import AlertSpec, RuleContext

GROUP = "otelperf.pipeline"
TARGET_DOWN = "OtelperfTargetDown"
TARGET_DOWN_FOR = "2m"


def alerts(ctx: RuleContext) -> list[AlertSpec]:
    """The group's rules, in the order alerts.yml lists them."""
    return [target_down(ctx), spans_dropped(ctx), cardinality_overflow(ctx)]


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
