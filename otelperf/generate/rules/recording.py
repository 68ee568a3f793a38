"""The recording rules (recording.yml): the pre-computed series the alerts and panels read.

Their names come from the name table (``otelperf._names.RECORDINGS``).

>>> [r["record"] for r in recording_rules(RuleContext())][:2]
['otelperf:operation_requests:rate', 'otelperf:operation_errors:rate']
"""

from __future__ import annotations

from otelperf import _names as n
from otelperf.generate.promql import (
    call,
    eq,
    group_left,
    histogram_quantile,
    increase,
    le_regex,
    number,
    on,
    range_vector,
    re_match,
    sum_by,
    wilson_lower_bound,
)
from otelperf.generate.rules.spec import RuleContext

GROUP = "otelperf.recording"


def recording_rules(ctx: RuleContext) -> list[dict[str, str]]:
    """``[{"expr": ..., "record": ...}]`` in the order recording.yml lists them."""
    w = ctx.rate_window
    op = (n.JOB, n.OPERATION)
    dur = n.OPERATION_DURATION.prom
    req, err = n.REC_OPERATION_REQUESTS.name, n.REC_OPERATION_ERRORS.name
    p95 = n.REC_OPERATION_P95.name
    req1h = n.REC_OPERATION_REQUESTS_1H.name

    def p95_of(window: str, present: str) -> str:
        # Keep the quantile only where the operation ran: no NaN samples in the 1d stats.
        buckets = sum_by((*op, "le"), ctx.rate(dur + "_bucket", window))
        return f"{histogram_quantile(0.95, buckets)} and {on(*op, tight=True)} ({present} > 0)"

    def share(window: str) -> str:
        roots = (n.JOB, n.ROOT_OPERATION)
        cp = sum_by((*roots, n.OPERATION), ctx.rate(n.CRITICAL_PATH.prom, window))
        root = sum_by(roots, ctx.rate(n.ROOT_DURATION.prom, window))
        return f"{cp} / {on(*roots, tight=True)} {group_left(tight=True)} ({root} > 0)"

    cache, api = (n.JOB, n.CACHE), (n.JOB, n.API)
    hits = ctx.rate(n.CACHE_REQUESTS.prom, w, eq(n.RESULT, n.RESULT_HIT))
    cache_req = n.REC_CACHE_REQUESTS.name
    api_err = ctx.rate(n.API_CALLS.prom, w, eq(n.OUTCOME, n.OUTCOME_ERROR))
    busy = sum_by(op, ctx.rate(dur + "_sum", w))
    rules: list[tuple[n.Recording, str]] = [
        (n.REC_OPERATION_REQUESTS, sum_by(op, ctx.rate(dur + "_count", w))),
        (
            n.REC_OPERATION_ERRORS,
            sum_by(op, ctx.rate(dur + "_count", w, eq(n.OUTCOME, n.OUTCOME_ERROR))),
        ),
        (n.REC_OPERATION_ERROR_RATIO, f"{err} / ({req} > 0)"),
        (n.REC_OPERATION_P95, p95_of(w, req)),
        (n.REC_OPERATION_REQUESTS_1H, sum_by(op, increase(ctx.raw(dur + "_count"), "1h"))),
        (n.REC_OPERATION_P95_1H, p95_of("1h", req1h)),
        # The baseline ends an hour ago, so an anomaly does not raise its own bar for an hour.
        (n.REC_OPERATION_P95_MEAN_1D, call("avg_over_time", range_vector(p95, "1d", "1h"))),
        (n.REC_OPERATION_P95_STDDEV_1D, call("stddev_over_time", range_vector(p95, "1d", "1h"))),
        (n.REC_OPERATION_ITEMS, sum_by(op, ctx.rate(n.OPERATION_ITEMS.prom, w))),
        (
            n.REC_OPERATION_ITEMS_PER_BUSY_SECOND,
            f"{n.REC_OPERATION_ITEMS.name} / {on(*op, tight=True)} ({busy} > 0)",
        ),
        (n.REC_CRITICAL_PATH_SHARE, share(w)),
        (n.REC_CRITICAL_PATH_SHARE_1H, share("1h")),
        (n.REC_CACHE_REQUESTS, sum_by(cache, ctx.rate(n.CACHE_REQUESTS.prom, w))),
        (
            # A cache with lookups but no hit yet has no hit series: count it as 0 hits,
            # or the worst cache of all would never alert.
            n.REC_CACHE_HIT_RATIO,
            f"({sum_by(cache, hits)} or {cache_req} * 0) / ({cache_req} > 0)",
        ),
        (n.REC_API_CALLS, sum_by(api, ctx.rate(n.API_CALLS.prom, w))),
        (n.REC_API_ERROR_RATIO, f"{sum_by(api, api_err)} / ({n.REC_API_CALLS.name} > 0)"),
        (n.REC_API_COST_1H, sum_by(api, ctx.rate(n.API_COST.prom, "1h"))),
        *detection_rules(ctx),
    ]
    return [{"expr": expr, "record": rec.name} for rec, expr in rules]


def detection_rules(ctx: RuleContext) -> list[tuple[n.Recording, str]]:
    """Issue 15's recordings: significance bounds, the mean, API p95, the day's spend, and the
    SLO windows' error and slow ratios (their long windows read raw counters, not recordings)."""
    w, z = ctx.rate_window, ctx.thresholds.ratio_confidence_z
    secs = number(ctx.window_seconds)
    op, api = (n.JOB, n.OPERATION), (n.JOB, n.API)
    dur = n.OPERATION_DURATION.prom
    mean = n.REC_OPERATION_MEAN.name
    hit, lookups = n.REC_CACHE_HIT_RATIO.name, n.REC_CACHE_REQUESTS.name
    cost, start = n.REC_API_COST_SUM.name, n.REC_API_COST_DAY_START.name
    today = n.REC_API_COST_TODAY.name
    started = call("last_over_time", range_vector(start, "1d"))
    started_yday = call("last_over_time", range_vector(start, "1d", "1d"))
    api_buckets = sum_by((*api, "le"), ctx.rate(n.API_CALL_DURATION.prom + "_bucket", w))

    def trials(rate_recording: str) -> str:
        return f"({rate_recording} * {secs} > 0)"

    rules: list[tuple[n.Recording, str]] = [
        (
            n.REC_OPERATION_MEAN,
            f"{sum_by(op, ctx.rate(dur + '_sum', w))} / ({n.REC_OPERATION_REQUESTS.name} > 0)",
        ),
        (n.REC_OPERATION_MEAN_MEDIAN_1H, call("quantile_over_time", "0.5", f"{mean}[1h]")),
        (
            n.REC_OPERATION_ERROR_LOWER,
            wilson_lower_bound(
                n.REC_OPERATION_ERROR_RATIO.name, trials(n.REC_OPERATION_REQUESTS.name), z
            ),
        ),
        (
            n.REC_API_ERROR_LOWER,
            wilson_lower_bound(n.REC_API_ERROR_RATIO.name, trials(n.REC_API_CALLS.name), z),
        ),
        (n.REC_CACHE_MISS_LOWER, wilson_lower_bound(f"(1 - {hit})", trials(lookups), z)),
        (
            n.REC_API_P95,
            f"{histogram_quantile(0.95, api_buckets)} and {on(*api, tight=True)} "
            f"({n.REC_API_CALLS.name} > 0)",
        ),
        (n.REC_API_COST_SUM, sum_by((n.JOB,), ctx.raw(n.API_COST.prom))),
        # Only the first 5 minutes of a UTC day keep a sample: last_over_time of it is the
        # counter at midnight (rule evaluation every 5 minutes or more often).
        (n.REC_API_COST_DAY_START, f"{cost} and on() (vector(time()) % 86400 < 300)"),
        # A counter reset (a restart) makes the difference negative: counted as 0, not refund.
        (n.REC_API_COST_TODAY, call("clamp_min", f"{cost} - {started}", "0")),
        (
            # today * (yesterday's whole day / yesterday's spend by this time of day): the
            # shape of yesterday, the level of today.
            n.REC_API_COST_PROJECTED,
            f"{today} * ({started} - {started_yday}) / ({cost} offset 1d - {started_yday} > 0)",
        ),
    ]
    for window in n.SLO_WINDOWS:
        requests = sum_by(op, ctx.rate(dur + "_count", window))
        errors = sum_by(op, ctx.rate(dur + "_count", window, eq(n.OUTCOME, n.OUTCOME_ERROR)))
        rules.append((n.REC_OPERATION_ERROR_RATIO_SLO[window], f"{errors} / ({requests} > 0)"))
    les = "|".join(le_regex(b) for b in ctx.latency_boundaries())
    for window in n.SLO_WINDOWS:
        requests = sum_by(op, ctx.rate(dur + "_count", window))
        fast = sum_by((*op, n.LE), ctx.rate(dur + "_bucket", window, re_match(n.LE, les)))
        rules.append(
            (
                n.REC_OPERATION_SLOW_RATIO_SLO[window],
                f"1 - {fast} / {on(*op, tight=True)} {group_left(tight=True)} ({requests} > 0)",
            )
        )
    return rules
