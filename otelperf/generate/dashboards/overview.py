"""Dashboard *otelperf / Overview*: per-operation traffic, errors, latency, throughput, alerts.

The top-10 tables read recording rules (``otelperf rules``) so they cost one series lookup,
not a ``histogram_quantile`` over every bucket on each refresh.
"""

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
    ALERT_PREFIX,
    ALERTNAME,
    ALERTSTATE,
    TARGET,
    error_percent,
    quantile,
    sel,
    sum_rate,
    var,
)
from otelperf.generate.dashboards.settings import DashboardSettings
from otelperf.generate.promql import eq, sum_by


def overview(settings: DashboardSettings) -> g.Dashboard:
    """Per-operation rate, errors, latency, in-flight and throughput, top-10 tables, alerts.

    >>> overview(DashboardSettings()).uid
    'otelperf-overview'
    """
    d = N.OPERATION_DURATION
    count, bucket = d.prom + "_count", d.prom + "_bucket"
    ops = (*TARGET, var(N.OPERATION, "operation"))
    by_op = (N.OPERATION,)
    rec_scope = (var(N.JOB, "job"), var(N.OPERATION, "operation"))
    latency = [
        timeseries(
            f"Latency p{int(q * 100)}",
            f"{int(q * 100)}th percentile duration per operation, from the "
            f"{d.prom} histogram buckets; the points are exemplars, each a link to a trace "
            "that fell in that bucket.",
            "s",
            [Q(quantile(q, by_op, bucket, ops), "{{operation}}")],
            w=8,
            exemplars=True,  # each bucket's trace link (OpenMetrics exemplars)
        )
        for q in (0.5, 0.95, 0.99)
    ]
    traffic = [
        timeseries(
            "Request rate",
            "Finished operations per second (successes and errors), per operation: measure() "
            "calls and the spans of OpenTelemetry instrumentations (a route as "
            "GET /items/{item_id}, an HTTP client call as GET host:port).",
            "reqps",
            [Q(sum_rate(by_op, count, ops), "{{operation}}")],
        ),
        timeseries(
            "Error %",
            "Share of finished operations that failed, per operation: a measure() call that "
            "raised, a span with status ERROR, an HTTP 5xx (and a 4xx on a client span). "
            "Operations without errors show 0 %.",
            "percent",
            [Q(error_percent(by_op, count, ops, N.OUTCOME), "{{operation}}")],
            thresholds=[{"color": "red", "value": 5}],
        ),
    ]
    throughput = [
        timeseries(
            "In flight",
            "measure() calls running right now (sampled at scrape time), per operation. Spans "
            "of other instrumentations are counted when they end, so they do not show here.",
            "short",
            [
                Q(
                    sum_by((N.OPERATION,), sel(N.OPERATION_IN_FLIGHT.prom, *ops)),
                    "{{operation}}",
                )
            ],
            w=8,
        ),
        timeseries(
            "Items / s",
            "Items (rows, records) processed per second, as reported with op.add_items() on "
            "measure() calls; empty for operations only instrumentations trace.",
            "suffix: items/s",
            [Q(sum_rate(by_op, N.OPERATION_ITEMS.prom, ops), "{{operation}}")],
            w=8,
        ),
        timeseries(
            "Bytes / s",
            "Bytes processed per second, as reported with op.add_bytes() on measure() calls; "
            "empty for operations only instrumentations trace.",
            "Bps",
            [Q(sum_rate(by_op, N.OPERATION_BYTES.prom, ops), "{{operation}}")],
            w=8,
        ),
    ]
    tops = [
        table(
            "Top 10 slowest operations (p95, last hour)",
            "The ten operations with the highest 95th percentile duration over the last hour, "
            f"all instances of the job (recording rule {N.REC_OPERATION_P95_1H.name}).",
            "s",
            [Q(f"topk(10, {sel(N.REC_OPERATION_P95_1H.name, *rec_scope)})")],
            sort_by="p95",
            columns={"Value": ("p95", "s")},
        ),
        table(
            "Top 10 most failing operations",
            "The ten operations with the highest error % over the rate window, all instances "
            f"of the job (recording rule {N.REC_OPERATION_ERROR_RATIO.name}); operations "
            "without errors are left out.",
            "percent",
            [Q(f"topk(10, 100 * {sel(N.REC_OPERATION_ERROR_RATIO.name, *rec_scope)} > 0)")],
            sort_by="Error %",
            columns={"Value": ("Error %", "percent")},
        ),
    ]
    alerts = [
        table(
            "Firing otelperf alerts",
            "Alerts of the generated otelperf rules that are firing now (Prometheus's ALERTS "
            "series); empty while all is well.",
            "none",
            [Q(sel(N.ALERTS, eq(ALERTSTATE, "firing"), f'{ALERTNAME}=~"{ALERT_PREFIX}.+"'))],
            sort_by=ALERTNAME,
            w=24,
            h=6,
        )
    ]
    variables = [
        *target_vars(settings),
        query_var("operation", "Operation", count, TARGET, N.OPERATION),
    ]
    return dashboard(
        settings,
        "overview",
        "Per-operation request rate, errors, latency and throughput of services instrumented "
        "with otelperf: measure() calls and every instrumentation's spans.",
        variables,
        [
            ("Traffic and errors", traffic),
            ("Latency", latency),
            ("Throughput", throughput),
            ("Top operations", tops),
            ("Alerts", alerts),
        ],
    )
