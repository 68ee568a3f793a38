"""Alert group ``otelperf.operations``: errors, latency and throughput of instrumented operations.

>>> sorted({a.name for a in alerts(RuleContext())})  # doctest: +NORMALIZE_WHITESPACE
['OtelperfOperationErrorRateHigh', 'OtelperfOperationLatencyAnomaly',
 'OtelperfOperationLatencyRegression', 'OtelperfOperationSlow', 'OtelperfThroughputLow']
"""

from __future__ import annotations

from collections.abc import Callable

from otelperf import _names as n
from otelperf.generate.promql import aggregate, number, on, selector
from otelperf.generate.rules.spec import AlertSpec, RuleContext, percent

GROUP = "otelperf.operations"
WHO = "{{ $labels.operation }} in job {{ $labels.job }}"
_OP = (n.JOB, n.OPERATION)


def alerts(ctx: RuleContext) -> list[AlertSpec]:
    """The group's rules, in the order alerts.yml lists them."""
    guard = ctx.traffic(n.REC_OPERATION_REQUESTS.name, ctx.min_requests_per_minute, *_OP)
    return [
        *ctx.per_operation("operation_error_ratio_warning", error_rate(ctx, guard, "warning")),
        *ctx.per_operation("operation_error_ratio_critical", error_rate(ctx, guard, "critical")),
        *ctx.per_operation("operation_slow_p95_seconds", slow(ctx, guard)),
        latency_regression(ctx),
        latency_anomaly(ctx, guard),
        *ctx.per_operation("throughput_min_items_per_second", throughput(ctx)),
    ]


def error_rate(ctx: RuleContext, guard: str, severity: str) -> Callable[[float, str], AlertSpec]:
    """OtelperfOperationErrorRateHigh at one severity, for ``ctx.per_operation``.

    The ratio must be above the threshold, and so must its Wilson lower bound (the ratio is
    significantly above it, not two errors in fifteen calls), with enough errors in the window.
    """
    by_op = on(*_OP, tight=True)
    errors = f"{n.REC_OPERATION_ERRORS.name} * {number(ctx.window_seconds)}"
    min_errors = number(ctx.thresholds.operation_error_min_errors)

    def make(t: float, matcher: str) -> AlertSpec:
        lower = selector(n.REC_OPERATION_ERROR_LOWER.name, matcher)
        return ctx.alert(
            GROUP, "OtelperfOperationErrorRateHigh", severity, "5m",
            f"{selector(n.REC_OPERATION_ERROR_RATIO.name, matcher)} > {number(t)} "
            f"and {by_op} ({lower} > {number(t)}) and {by_op} ({errors} >= {min_errors}) "
            f"and {guard}",
            "An operation is failing more often than its error budget allows.",
            f"{{{{ $value | humanizePercentage }}}} of {WHO} failed over the last "
            f"{ctx.rate_window} (threshold {percent(t)}).",
        )  # fmt: skip

    return make


def slow(ctx: RuleContext, guard: str) -> Callable[[float, str], AlertSpec]:
    """OtelperfOperationSlow, for ``ctx.per_operation``."""

    def make(t: float, matcher: str) -> AlertSpec:
        return ctx.alert(
            GROUP, "OtelperfOperationSlow", "warning", "10m",
            f"{selector(n.REC_OPERATION_P95.name, matcher)} > {number(t)} and {guard}",
            "An operation's 95th percentile duration is above its threshold.",
            f"p95 duration of {WHO} is {{{{ $value | humanizeDuration }}}} over the last "
            f"{ctx.rate_window} (threshold {number(t)}s).",
        )  # fmt: skip

    return make


def against_history(current: str, k: str, cmp: str = ">") -> str:
    """``current`` beyond ``k`` times its value 1 d earlier, and 7 d earlier where that exists:
    a daily pattern and a weekly one (Mondays) both explain a change away."""
    by_op = on(*_OP, tight=True)
    week = f"{current} offset 7d"
    return (
        f"{current} {cmp} {k} * ({current} offset 1d) and {by_op} "
        f"({current} {cmp} {k} * ({week}) or ({current} unless {by_op} ({week})))"
    )


def latency_regression(ctx: RuleContext) -> AlertSpec:
    """OtelperfOperationLatencyRegression: the hour's typical mean duration against the same
    hours yesterday and a week ago.

    The mean (``_sum / _count``) is exact whatever the buckets; its median over the hour
    ignores a one-minute blip, while a sustained creep moves it.
    """
    th = ctx.thresholds
    median, req1h = n.REC_OPERATION_MEAN_MEDIAN_1H.name, n.REC_OPERATION_REQUESTS_1H.name
    k = number(th.latency_regression_factor)
    min_req = number(th.latency_regression_min_requests_per_hour)
    by_op = on(*_OP, tight=True)
    return ctx.alert(
        GROUP, "OtelperfOperationLatencyRegression", "warning", "15m",
        f"{against_history(median, k)} "
        f"and {by_op} ({req1h} >= {min_req}) "
        f"and {by_op} ({req1h} offset 1d >= {min_req})",
        "An operation's typical duration over the last hour is well above the same hour on "
        "earlier days.",
        f"The mean duration of {WHO} over the last hour is typically "
        f"{{{{ $value | humanizeDuration }}}}, more than {k}x the same hour one day earlier "
        f"(and one week earlier, where known).",
    )  # fmt: skip


def latency_anomaly(ctx: RuleContext, guard: str) -> AlertSpec:
    """OtelperfOperationLatencyAnomaly: p95 far outside its 1-day mean and spread."""
    th = ctx.thresholds
    p95, mean = n.REC_OPERATION_P95.name, n.REC_OPERATION_P95_MEAN_1D.name
    sd = n.REC_OPERATION_P95_STDDEV_1D.name
    z, floor = number(th.latency_anomaly_stddevs), number(th.latency_anomaly_min_factor)
    return ctx.alert(
        GROUP, "OtelperfOperationLatencyAnomaly", "warning", "15m",
        f"{p95} > {mean} + {z} * {sd} and {p95} > {floor} * {mean} and {guard}",
        "An operation's p95 duration is far outside its usual range over the previous day.",
        f"p95 duration of {WHO} is {{{{ $value | humanizeDuration }}}}, more than {z} "
        f"standard deviations above its mean over the day that ended an hour ago.",
    )  # fmt: skip


def throughput(ctx: RuleContext) -> Callable[[float, str], AlertSpec]:
    """OtelperfThroughputLow (only while the operation runs), for ``ctx.per_operation``.

    Against its own history: below ``throughput_drop_ratio`` of the same time yesterday (and
    last week, where known), so nights and ramps of a daily pattern do not fire and a big
    stage losing most of its rate does.  The absolute threshold applies only while there is
    no history a day back (a new operation).
    """
    in_flight = ctx.raw(n.OPERATION_IN_FLIGHT.prom)
    running = f"{n.REC_OPERATION_REQUESTS.name} > 0 or {aggregate('max', _OP, in_flight)} > 0"
    drop = number(ctx.thresholds.throughput_drop_ratio)
    share = percent(ctx.thresholds.throughput_drop_ratio)
    by_op = on(*_OP, tight=True)

    def make(t: float, matcher: str) -> AlertSpec:
        items = selector(n.REC_OPERATION_ITEMS.name, matcher)
        return ctx.alert(
            GROUP, "OtelperfThroughputLow", "warning", "15m",
            f"({against_history(items, drop, '<')} "
            f"or ({items} < {number(t)} unless {by_op} ({items} offset 1d))) "
            f"and {by_op} ({running})",
            "An operation that reports items is processing far fewer items per second than "
            "at the same time on earlier days.",
            f"{WHO} processed {{{{ $value | humanize }}}} items/s over the last "
            f"{ctx.rate_window} while running: under {share} "
            f"of the same time one day (and one week) earlier, or, without a day of history, "
            f"under {number(t)}/s.",
        )  # fmt: skip

    return make
