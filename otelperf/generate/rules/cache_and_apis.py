"""Alert group ``otelperf.cache_and_apis``: cache hit ratio, API errors and API spend.

>>> [a.name for a in alerts(RuleContext())]  # doctest: +NORMALIZE_WHITESPACE
['OtelperfCacheHitRateLow', 'OtelperfApiErrorRateHigh', 'OtelperfApiCostBudgetExceeded',
 'OtelperfApiSpendIncrease', 'OtelperfApiSlow']
"""

from __future__ import annotations

from otelperf import _names as n
from otelperf.generate.promql import eq, number, on, sum_by
from otelperf.generate.rules.spec import AlertSpec, RuleContext, percent

GROUP = "otelperf.cache_and_apis"


def alerts(ctx: RuleContext) -> list[AlertSpec]:
    """The group's rules, in the order alerts.yml lists them."""
    return [
        cache_hit_rate_low(ctx),
        api_error_rate_high(ctx),
        api_cost_budget_exceeded(ctx),
        api_spend_increase(ctx),
        api_slow(ctx),
    ]


def _bad_events(ctx: RuleContext, metric: str, by: tuple[str, ...], matcher: str) -> str:
    """``sum by (...) (rate(metric{matcher}[w])) * seconds``: bad events in the rate window."""
    rate = ctx.rate(metric, ctx.rate_window, matcher)
    return f"{sum_by(by, rate)} * {number(ctx.window_seconds)}"


def cache_hit_rate_low(ctx: RuleContext) -> AlertSpec:
    """OtelperfCacheHitRateLow: the miss ratio significantly above 1 - cache_hit_ratio_min
    (its Wilson lower bound), with enough misses and lookups."""
    th = ctx.thresholds
    lookups = (n.REC_CACHE_REQUESTS.name, th.cache_min_lookups_per_minute, n.JOB, n.CACHE)
    by = on(n.JOB, n.CACHE, tight=True)
    misses = _bad_events(ctx, n.CACHE_REQUESTS.prom, (n.JOB, n.CACHE),
                         eq(n.RESULT, n.RESULT_MISS))  # fmt: skip
    return ctx.alert(
        GROUP, "OtelperfCacheHitRateLow", "warning", "15m",
        f"{n.REC_CACHE_HIT_RATIO.name} < {number(th.cache_hit_ratio_min)} "
        f"and {by} ({n.REC_CACHE_MISS_LOWER.name} > {number(1 - th.cache_hit_ratio_min)}) "
        f"and {by} ({misses} >= {number(th.cache_min_misses)}) and "
        + ctx.traffic(*lookups),
        "A cache is missing more often than expected.",
        f"Cache {{{{ $labels.cache }}}} in job {{{{ $labels.job }}}} hit "
        f"{{{{ $value | humanizePercentage }}}} of lookups over the last {ctx.rate_window} "
        f"(threshold {percent(th.cache_hit_ratio_min)}).",
    )  # fmt: skip


def api_error_rate_high(ctx: RuleContext) -> AlertSpec:
    """OtelperfApiErrorRateHigh: the ratio and its Wilson lower bound above the threshold, with
    enough errors and calls."""
    th = ctx.thresholds
    calls = (n.REC_API_CALLS.name, th.api_min_calls_per_minute, n.JOB, n.API)
    t = number(th.api_error_ratio)
    by = on(n.JOB, n.API, tight=True)
    errors = _bad_events(ctx, n.API_CALLS.prom, (n.JOB, n.API),
                         eq(n.OUTCOME, n.OUTCOME_ERROR))  # fmt: skip
    return ctx.alert(
        GROUP, "OtelperfApiErrorRateHigh", "warning", "5m",
        f"{n.REC_API_ERROR_RATIO.name} > {t} and {by} ({n.REC_API_ERROR_LOWER.name} > {t}) "
        f"and {by} ({errors} >= {number(th.api_error_min_errors)}) and "
        + ctx.traffic(*calls),
        "Calls to an external API are failing.",
        f"{{{{ $value | humanizePercentage }}}} of calls to {{{{ $labels.api }}}} from job "
        f"{{{{ $labels.job }}}} failed over the last {ctx.rate_window} "
        f"(threshold {percent(th.api_error_ratio)}).",
    )  # fmt: skip


def api_cost_budget_exceeded(ctx: RuleContext) -> AlertSpec:
    """OtelperfApiCostBudgetExceeded: today's spend so far, plus the rest of the day shaped like
    yesterday (``projected_today``), above the budget; or today's actual spend already is."""
    budget = number(ctx.thresholds.api_daily_budget_usd)
    return ctx.alert(
        GROUP, "OtelperfApiCostBudgetExceeded", "warning", "15m",
        f"{n.REC_API_COST_PROJECTED.name} > {budget} or {n.REC_API_COST_TODAY.name} > {budget}",
        "External API spend is on course to exceed the daily budget.",
        f"Job {{{{ $labels.job }}}} is on course to spend {{{{ $value | printf \"%.2f\" }}}} "
        f"USD on external APIs today (UTC; spend so far, the rest of the day shaped like "
        f"yesterday; budget {budget} USD).",
    )  # fmt: skip


def api_spend_increase(ctx: RuleContext) -> AlertSpec:
    """OtelperfApiSpendIncrease: the last hour's spend a multiple of the same hour 1 d (and
    7 d) earlier, under budget or not."""
    th = ctx.thresholds
    k = number(th.api_cost_increase_factor)

    def hour(offset: str = "") -> str:
        rec = n.REC_API_COST_1H.name + (f" offset {offset}" if offset else "")
        return f"{sum_by((n.JOB,), rec)} * 3600"

    by = on(n.JOB, tight=True)
    return ctx.alert(
        GROUP, "OtelperfApiSpendIncrease", "warning", "30m",
        f"{hour()} > {k} * {hour('1d')} "
        f"and {by} ({hour()} > {k} * {hour('7d')} or ({hour()} unless {by} ({hour('7d')}))) "
        f"and {by} ({hour()} >= {number(th.api_cost_increase_min_usd_per_hour)}) "
        f"and {by} ({hour('1d')} > 0)",
        "External API spend is well above the same hour on earlier days.",
        f"Job {{{{ $labels.job }}}} spent {{{{ $value | printf \"%.2f\" }}}} USD on external "
        f"APIs in the last hour, more than {k}x the same hour one day (and one week) earlier.",
    )  # fmt: skip


def api_slow(ctx: RuleContext) -> AlertSpec:
    """OtelperfApiSlow: an external API's p95 call duration above its threshold."""
    th = ctx.thresholds
    t = number(th.api_slow_p95_seconds)
    calls = (n.REC_API_CALLS.name, th.api_min_calls_per_minute, n.JOB, n.API)
    return ctx.alert(
        GROUP, "OtelperfApiSlow", "warning", "10m",
        f"{n.REC_API_P95.name} > {t} and " + ctx.traffic(*calls),
        "Calls to an external API are slow.",
        f"p95 duration of calls to {{{{ $labels.api }}}} from job {{{{ $labels.job }}}} is "
        f"{{{{ $value | humanizeDuration }}}} over the last {ctx.rate_window} "
        f"(threshold {t}s).",
    )  # fmt: skip
