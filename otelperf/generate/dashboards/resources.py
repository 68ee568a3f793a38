"""Dashboard *otelperf / Resources*: process and host resources, and otelperf's own health."""

from __future__ import annotations

from grafanalib import core as g

from otelperf import _names as N
from otelperf.generate.dashboards.panels import Q, dashboard, target_vars, timeseries
from otelperf.generate.dashboards.queries import RATE, TARGET, sel, sum_rate
from otelperf.generate.dashboards.settings import DashboardSettings
from otelperf.generate.promql import rate


def resources(settings: DashboardSettings) -> g.Dashboard:
    """Process and host resources, and otelperf's own health (dropped spans, overflow).

    >>> resources(DashboardSettings()).title
    'otelperf / Resources'
    """
    t = TARGET
    process = [
        timeseries(
            "Process CPU",
            "CPU time (user + system) the process uses per second: 100 % is one core busy.",
            "percentunit",
            [Q(rate(sel(N.PROC_CPU.prom, *t), RATE), "{{instance}}")],
            w=8,
        ),
        timeseries(
            "Process resident memory",
            "Resident set size of the process.",
            "bytes",
            [Q(sel(N.PROC_RESIDENT_MEMORY.prom, *t), "{{instance}}")],
            w=8,
        ),
        timeseries(
            "Threads",
            "Threads of the process (psutil), sampled at scrape time.",
            "short",
            [Q(sel(N.PROC_THREADS.prom, *t), "{{instance}}")],
            w=8,
        ),
        timeseries(
            "Open file descriptors",
            "Open file descriptors of the process, and its limit (ulimit -n) as a dashed "
            "reference.",
            "short",
            [
                Q(sel(N.PROC_OPEN_FDS.prom, *t), "{{instance}} open"),
                Q(sel(N.PROC_MAX_FDS.prom, *t), "{{instance}} limit"),
            ],
            w=12,
        ),
        timeseries(
            "GC collections / s",
            "Python garbage collector runs per second, per generation (0 runs most often; "
            "frequent generation-2 runs mean many long-lived objects).",
            "ops",
            [
                Q(
                    sum_rate((N.INSTANCE, N.GENERATION), N.GC_COLLECTIONS.prom, t),
                    "{{instance}} gen {{" + N.GENERATION + "}}",
                )
            ],
            w=12,
        ),
    ]
    host = [
        timeseries(
            "Host CPU",
            "Host CPU utilization over all cores since the previous scrape.",
            "percentunit",
            [Q(sel(N.HOST_CPU_UTILIZATION.prom, *t), "{{instance}}")],
            w=8,
            max_value=1,
        ),
        timeseries(
            "Host memory",
            "Host memory in use (0..100 %), sampled by the service at scrape time.",
            "percentunit",
            [Q(sel(N.HOST_MEMORY_UTILIZATION.prom, *t), "{{instance}}")],
            w=8,
            max_value=1,
        ),
        timeseries(
            "Filesystems",
            "Space in use per filesystem mount point; the red line is 90 %.",
            "percentunit",
            [
                Q(
                    sel(N.HOST_FILESYSTEM_UTILIZATION.prom, *t),
                    "{{instance}} {{" + N.MOUNTPOINT + "}}",
                )
            ],
            w=8,
            max_value=1,
            thresholds=[{"color": "red", "value": 0.9}],
        ),
    ]
    health = [
        timeseries(
            "Dropped spans / s",
            "Spans the bottleneck processor left out of attribution, by reason (capacity, "
            "truncated, expired, late). Empty while nothing is dropped.",
            "ops",
            [Q(sum_rate((N.REASON,), N.DROPPED_SPANS.prom, t), "{{reason}}")],
            w=8,
        ),
        timeseries(
            "Cardinality overflow / s",
            f"Measurements recorded under {N.OVERFLOW} because a label cap was reached, by "
            "component. Empty while every cap holds.",
            "ops",
            [Q(sum_rate((N.COMPONENT,), N.CARDINALITY_OVERFLOW.prom, t), "{{component}}")],
            w=8,
        ),
        timeseries(
            "Internal errors / s",
            "Failures inside otelperf, caught so they never reach the application, by "
            "component. Empty while all is well.",
            "ops",
            [Q(sum_rate((N.COMPONENT,), N.INTERNAL_ERRORS.prom, t), "{{component}}")],
            w=8,
        ),
        timeseries(
            "Traces in flight",
            "Traces whose local root has not finished yet, held by the bottleneck processor.",
            "short",
            [Q(sel(N.TRACES_IN_FLIGHT.prom, *t), "{{instance}}")],
            w=24,
            h=6,
        ),
    ]
    return dashboard(
        settings,
        "resources",
        "Process and host resources of services instrumented with otelperf, and otelperf's own "
        "health.",
        target_vars(settings),
        [("Process", process), ("Host", host), ("otelperf health", health)],
    )
