"""Alert group ``otelperf.cache_and_apis``: cache hit ratio, API errors and API spend.

>>> [a.name for a in alerts(RuleContext())]  # doctest: +NORMALIZE_WHITESPACE
['OtelperfCacheHitRateLow', 'OtelperfApiErrorRateHigh', 'OtelperfApiCostBudgetExceeded']
"""

from __future__ import annotations

from otelperf import _names as n
from otelperf.generate.promql import number, sum_by
from otelperf.generate.rules.spec import AlertSpec, RuleContext, percent

GROUP = "otelperf.cache_and_apis"


def alerts(ctx: RuleContext) -> list[AlertSpec]:
    """The group's rules, in the order alerts.yml lists them."""
    return [cache_hit_rate_low(ctx), api_error_rate_high(ctx), api_cost_budget_exceeded(ctx)]


def cache_hit_rate_low(ctx: RuleContext) -> AlertSpec:
    """OtelperfCacheHitRateLow, only for caches with enough lookups."""
    th = ctx.thresholds
    lookups = (n.REC_CACHE_REQUESTS.name, th.cache_min_lookups_per_minute, n.JOB, n.CACHE)
    return ctx.alert(
        GROUP, "OtelperfCacheHitRateLow", "warning", "15m",
        f"{n.REC_CACHE_HIT_RATIO.name} < {number(th.cache_hit_ratio_min)} and "
        + ctx.traffic(*lookups),
        "A cache is missing more often than expected.",
        f"Cache {{{{ $labels.cache }}}} in job {{{{ $labels.job }}}} hit "
        f"{{{{ $value | humanizePercentage }}}} of lookups over the last {ctx.rate_window} "
        f"(threshold {percent(th.cache_hit_ratio_min)}).",
    )  # fmt: skip


def api_error_rate_high(ctx: RuleContext) -> AlertSpec:
    """OtelperfApiErrorRateHigh, only for APIs with enough calls."""
    th = ctx.thresholds
    calls = (n.REC_API_CALLS.name, th.api_min_calls_per_minute, n.JOB, n.API)
    return ctx.alert(
        GROUP, "OtelperfApiErrorRateHigh", "warning", "5m",
        f"{n.REC_API_ERROR_RATIO.name} > {number(th.api_error_ratio)} and "
        + ctx.traffic(*calls),
        "Calls to an external API are failing.",
        f"{{{{ $value | humanizePercentage }}}} of calls to {{{{ $labels.api }}}} from job "
        f"{{{{ $labels.job }}}} failed over the last {ctx.rate_window} "
        f"(threshold {percent(th.api_error_ratio)}).",
    )  # fmt: skip


def api_cost_budget_exceeded(ctx: RuleContext) -> AlertSpec:
    """OtelperfApiCostBudgetExceeded: the last hour's spend rate, extrapolated to a day."""
    budget = number(ctx.thresholds.api_daily_budget_usd)
    return ctx.alert(
        GROUP, "OtelperfApiCostBudgetExceeded", "warning", "15m",
        f"{sum_by((n.JOB,), n.REC_API_COST_1H.name)} * 86400 > {budget}",
        "External API spend is on course to exceed the daily budget.",
        f"At the last hour's rate, job {{{{ $labels.job }}}} will spend "
        f"{{{{ $value | printf \"%.2f\" }}}} USD a day on external APIs "
        f"(budget {budget} USD).",
    )  # fmt: skip
