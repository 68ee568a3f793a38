"""Dashboard *otelperf / Cache & external APIs*: hit ratios; API calls, errors, tokens, cost."""

from __future__ import annotations

from grafanalib import core as g

from otelperf import _names as N
from otelperf.generate.dashboards.panels import (
    Q,
    dashboard,
    query_var,
    table,
    target_vars,
    timeseries,
)
from otelperf.generate.dashboards.queries import (
    TARGET,
    error_percent,
    quantile,
    sel,
    sum_rate,
    var,
)
from otelperf.generate.dashboards.settings import DashboardSettings
from otelperf.generate.promql import eq, sum_by


def cache_apis(settings: DashboardSettings) -> g.Dashboard:
    """Cache hit ratios and lookups; external API calls, errors, latency, tokens and cost.

    >>> [v.name for v in cache_apis(DashboardSettings()).templating.list][3:]
    ['cache', 'api', 'model']
    """
    caches = (*TARGET, var(N.CACHE, "cache"))
    apis = (*TARGET, var(N.API, "api"), var(N.MODEL, "model"))
    req = N.CACHE_REQUESTS.prom
    by_cache = (N.CACHE,)
    by_api_model = (N.API, N.MODEL)
    hits = sum_rate(by_cache, req, (*caches, eq(N.RESULT, N.RESULT_HIT)))
    lookups = sum_rate(by_cache, req, caches)
    calls = N.API_CALLS.prom
    bucket = N.API_CALL_DURATION.prom + "_bucket"
    cache_panels = [
        timeseries(
            "Hit ratio per cache",
            "Cache hits / lookups per cache (1 = every lookup hit). Caches without hits show 0.",
            "percentunit",
            [Q(f"({hits} or 0 * {lookups}) / {lookups}", "{{cache}}")],
            max_value=1,
        ),
        timeseries(
            "Lookups / s",
            "Cache lookups per second by cache and result (hit or miss).",
            "ops",
            [Q(sum_rate((N.CACHE, N.RESULT), req, caches), "{{cache}} {{result}}")],
        ),
    ]
    api_panels = [
        timeseries(
            "API calls / s",
            "External API calls per second, per API and model (an HTTP client's API is its "
            f"server's host:port, its model {N.UNKNOWN_MODEL!r}).",
            "reqps",
            [Q(sum_rate(by_api_model, calls, apis), "{{api}} {{model}}")],
            w=8,
        ),
        timeseries(
            "API error %",
            "Share of API calls that failed (error.type set, or an HTTP 5xx or 429 answer), "
            "per API and model. APIs without errors show 0 %.",
            "percent",
            [Q(error_percent(by_api_model, calls, apis, N.OUTCOME), "{{api}} {{model}}")],
            w=8,
            thresholds=[{"color": "red", "value": 5}],
        ),
        timeseries(
            "API latency",
            "50th, 95th and 99th percentile API call duration per API.",
            "s",
            [
                Q(quantile(q, (N.API,), bucket, apis), f"{{{{api}}}} p{int(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ],
            w=8,
        ),
    ]
    cost_panels = [
        timeseries(
            "Tokens / s by type",
            "Tokens per second per API and model, by type: input not served from a cache, "
            "cached_input, output other than reasoning, and reasoning (the four add up).",
            "suffix: tokens/s",
            [
                Q(
                    sum_rate((*by_api_model, N.TOKEN_TYPE), N.API_TOKENS.prom, apis),
                    "{{api}} {{model}} {{token_type}}",
                )
            ],
            w=8,
        ),
        timeseries(
            "Cost per hour",
            "API spend in US dollars per hour at the current rate, per API and model.",
            "currencyUSD",
            [Q(f"3600 * {sum_rate(by_api_model, N.API_COST.prom, apis)}", "{{api}} {{model}}")],
            w=8,
        ),
        table(
            "Projected cost per day",
            "The last hour's spend rate extrapolated to 24 hours, per API and model; the "
            f"total per API comes from the recording rule {N.REC_API_COST_1H.name} (all "
            "instances of the job).",
            "currencyUSD",
            [
                Q(f"86400 * {sum_rate(by_api_model, N.API_COST.prom, apis, '1h')}"),
            ],
            sort_by="Per day",
            columns={"Value": ("Per day", "currencyUSD")},
            w=8,
        ),
        table(
            "Projected cost per day per API (all models)",
            "The last hour's spend rate per API extrapolated to 24 hours, all instances of the "
            f"job (recording rule {N.REC_API_COST_1H.name}).",
            "currencyUSD",
            [
                Q(
                    "86400 * "
                    + sum_by(
                        (N.API,), sel(N.REC_API_COST_1H.name, var(N.JOB, "job"), var(N.API, "api"))
                    )
                )
            ],
            sort_by="Per day",
            columns={"Value": ("Per day", "currencyUSD")},
            w=24,
            h=6,
        ),
    ]
    variables = [
        *target_vars(settings),
        query_var("cache", "Cache", req, TARGET, N.CACHE),
        query_var("api", "API", calls, TARGET, N.API),
        query_var("model", "Model", calls, (*TARGET, var(N.API, "api")), N.MODEL),
    ]
    return dashboard(
        settings,
        "cache-apis",
        "Cache hit ratios and external API calls, errors, latency, tokens and cost, from "
        "otelperf's record_cache() and api_call(), the client spans of any instrumentation "
        "(HTTP clients as host:port, GenAI calls by provider and model) and spans carrying "
        "otelperf.cache.name.",
        variables,
        [("Caches", cache_panels), ("External APIs", api_panels), ("Tokens and cost", cost_panels)],
    )
