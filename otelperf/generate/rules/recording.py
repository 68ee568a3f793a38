"""The recording rules (recording.yml): the pre-computed series the alerts and panels read.

Their names come from the name table (``otelperf._names.RECORDINGS``).

>>> [r["record"] for r in recording_rules(RuleContext())][:2]
['otelperf:operation_requests:rate', 'otelperf:operation_errors:rate']
"""

from __future__ import annotations

from otelperf import _names as n
from otelperf.generate.promql import (
    eq,
    group_left,
    histogram_quantile,
    increase,
    on,
    over_time,
    sum_by,
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
        (n.REC_OPERATION_P95_MEAN_1D, over_time("avg", p95, "1d")),
        (n.REC_OPERATION_P95_STDDEV_1D, over_time("stddev", p95, "1d")),
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
    ]
    return [{"expr": expr, "record": rec.name} for rec, expr in rules]
