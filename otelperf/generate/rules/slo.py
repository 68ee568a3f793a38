"""Alert group ``otelperf.slo``: multi-window, multi-burn-rate alerts on per-operation objectives.

The SRE workbook's scheme (chapter "Alerting on SLOs"): a burn rate is the bad ratio divided by
the error budget (1 - objective); burning 14.4x for an hour spends 2 % of a 30-day budget, 6x
for 6 hours 5 %, 3x for a day and 1x for 3 days 10 %.  Each long window has a short one (1/12
of it) that must burn too, so the alert resets soon after the burning stops.  Pages are
``critical``, tickets ``warning``.  Both need ``slo_min_bad_events`` bad events in the long
window, so one failure at low traffic never pages.

>>> [(a.name, a.severity, a.for_) for a in alerts(RuleContext())]  # doctest: +NORMALIZE_WHITESPACE
[('OtelperfOperationErrorBudgetBurn', 'critical', '2m'),
 ('OtelperfOperationErrorBudgetBurn', 'warning', '15m'),
 ('OtelperfOperationLatencyBudgetBurn', 'critical', '2m'),
 ('OtelperfOperationLatencyBudgetBurn', 'warning', '15m')]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from otelperf import _names as n
from otelperf.generate.promql import (
    eq,
    increase,
    le_regex,
    not_re_match,
    number,
    on,
    re_match,
    regex_alternation,
    selector,
    sum_by,
)
from otelperf.generate.rules.spec import AlertSpec, RuleContext, percent, template_literal

GROUP = "otelperf.slo"
AVAILABILITY = "OtelperfOperationErrorBudgetBurn"
LATENCY = "OtelperfOperationLatencyBudgetBurn"
WHO = "{{ $labels.operation }} in job {{ $labels.job }}"
_OP = (n.JOB, n.OPERATION)
# (severity, for, ((long window, short window, burn rate), ...)): the workbook's table.
BURNS: tuple[tuple[str, str, tuple[tuple[str, str, float], ...]], ...] = (
    ("critical", "2m", (("1h", "5m", 14.4), ("6h", "30m", 6.0))),
    ("warning", "15m", (("1d", "2h", 3.0), ("3d", "6h", 1.0))),
)


def alerts(ctx: RuleContext) -> list[AlertSpec]:
    """The group's rules: per kind, the page then the ticket, default scope then overrides."""
    special = sorted(op for op in ctx.slos if op != "default")
    scopes: list[tuple[str, Mapping[str, float], str]] = [
        ("", ctx.slos["default"],
         not_re_match(n.OPERATION, regex_alternation(special)) if special else ""),
        *((op, ctx.slos[op], eq(n.OPERATION, op)) for op in special),
    ]  # fmt: skip
    specs: list[AlertSpec] = []
    for kind in (AVAILABILITY, LATENCY):
        for severity, for_, windows in BURNS:
            for op, objectives, matcher in scopes:
                spec = burn(ctx, kind, severity, for_, windows, objectives, matcher)
                if op:
                    spec = replace(spec, labels=((n.OPERATION, template_literal(op)),))
                specs.append(spec)
    return specs


def burn(
    ctx: RuleContext,
    kind: str,
    severity: str,
    for_: str,
    windows: tuple[tuple[str, str, float], ...],
    objectives: Mapping[str, float],
    matcher: str,
) -> AlertSpec:
    """One burn-rate rule: ``(long and short burning and enough bad events) or ...``."""
    by_op = on(*_OP, tight=True)
    count = n.OPERATION_DURATION.prom + "_count"
    guard_n = number(ctx.thresholds.slo_min_bad_events)
    if kind == AVAILABILITY:
        objective = objectives["availability"]
        recs, extra = n.REC_OPERATION_ERROR_RATIO_SLO, [matcher]
        what = f"availability objective {percent(objective)}"
    else:
        objective = objectives["latency_target"]
        le = objectives["latency_seconds"]
        recs, extra = n.REC_OPERATION_SLOW_RATIO_SLO, [matcher, re_match(n.LE, le_regex(le))]
        what = f"latency objective {percent(objective)} within {number(le)}s"
    scale = number(1 / (1 - objective))  # ratio * scale = burn rate
    branches = []
    for long, short, rate in windows:
        ratio_long = selector(recs[long].name, *extra)
        ratio_short = selector(recs[short].name, *extra)
        if kind == AVAILABILITY:
            errors = ctx.raw(count, eq(n.OUTCOME, n.OUTCOME_ERROR), matcher)
            bad = sum_by(_OP, increase(errors, long))
        else:
            total = sum_by(_OP, increase(ctx.raw(count, matcher), long))
            bad = f"{ratio_long} * {by_op} group_left() {total}"
        branches.append(
            f"({ratio_long} * {scale} > {number(rate)} and {ratio_short} * {scale} > "
            f"{number(rate)} and {by_op} ({bad} >= {guard_n}))"
        )
    pairs = " or ".join(f"{long}/{short} at {number(rate)}x" for long, short, rate in windows)
    noun = "failed" if kind == AVAILABILITY else "slow"
    return ctx.alert(
        GROUP, kind, severity, for_,
        " or ".join(branches),
        f"An operation is spending its error budget ({noun} requests) too fast "
        f"({'page' if severity == 'critical' else 'ticket'}).",
        f"{WHO} is burning the error budget of its {what} {{{{ $value | humanize }}}}x as "
        f"fast as allowed (windows {pairs}).",
    )  # fmt: skip
