"""Dashboard *otelperf / Bottlenecks*: where a root operation's time goes.

Critical-path share, self time and CPU vs waiting per operation under the selected ``$root``,
from the BottleneckSpanProcessor's series.
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
from otelperf.generate.dashboards.queries import RANGE, TARGET, sum_increase, sum_rate
from otelperf.generate.dashboards.settings import DashboardSettings
from otelperf.generate.promql import call, eq, group_left, on


def bottlenecks(settings: DashboardSettings) -> g.Dashboard:
    """Critical-path attribution per root operation, self time, and the CPU / waiting split.

    >>> bottlenecks(DashboardSettings(uid_prefix="shop")).uid
    'shop-bottlenecks'
    """
    root = (*TARGET, eq(N.ROOT_OPERATION, "$root"))
    by_op = (N.OPERATION,)
    cp, self_t = N.CRITICAL_PATH.prom, N.SELF_TIME.prom
    cp_total = sum_rate((), cp, root)
    root_time = sum_rate((), N.ROOT_DURATION.prom, root)
    cp_range = sum_increase(by_op, cp, root, RANGE)
    self_range = sum_increase(by_op, self_t, root, RANGE)
    cp_range_total = sum_increase((), cp, root, RANGE)
    top = f"topk(10, {cp_range})"
    # One root total divided into every operation's series.
    per_root = f"{on()} {group_left()}"
    cpu = sum_rate(by_op, N.OPERATION_CPU.prom, TARGET)
    wall = sum_rate(by_op, N.OPERATION_DURATION.prom + "_sum", TARGET)
    # Only operations on the selected root's critical path, and only those whose CPU time is
    # measured (synchronous ones): for the others a 0 % CPU share would be a guess.
    on_root = f"{on(N.OPERATION)} {sum_rate(by_op, cp, root)}"
    # Capped at 100 %: CPU and wall time come from two counters whose rates Prometheus
    # extrapolates separately, so a fully CPU-bound step can read 100.1 % and "waiting" -0.1 %.
    cpu_share = f"{call('clamp_max', f'100 * {cpu} / {wall}', '100')} and {on_root}"
    summary = [
        timeseries(
            "Root operations / s",
            "Local root spans of the selected root operation finished per second.",
            "reqps",
            [Q(sum_rate((), N.ROOTS.prom, root), "$root")],
            w=12,
            h=6,
        ),
        timeseries(
            "Mean root duration",
            "Mean duration of the selected root operation (summed root time / roots).",
            "s",
            [Q(f"{root_time} / {sum_rate((), N.ROOTS.prom, root)}", "$root")],
            w=12,
            h=6,
        ),
    ]
    share = [
        timeseries(
            "Critical-path share per operation",
            "Share of the root's critical path each operation accounts for; stacked, the "
            "series sum to 100 %. A growing band is where the requests' time goes.",
            "percent",
            [
                Q(
                    f"100 * {sum_rate(by_op, cp, root)} / {per_root} {cp_total}",
                    "{{operation}}",
                )
            ],
            w=24,
            h=9,
            stacked=True,
            max_value=100,
        ),
        timeseries(
            "Self time vs critical path",
            "Per operation, as a share of the root's time: self time (the operation ran with "
            "no child blocking it) and time on the critical path. Self time above critical "
            "path means work that overlapped a longer sibling.",
            "percent",
            [
                Q(
                    f"100 * {sum_rate(by_op, self_t, root)} / {per_root} {root_time}",
                    "{{operation}} self",
                ),
                Q(
                    f"100 * {sum_rate(by_op, cp, root)} / {per_root} {root_time}",
                    "{{operation}} critical path",
                ),
            ],
        ),
        timeseries(
            "CPU-bound vs waiting",
            "For operations on the root's critical path whose CPU time is measured "
            "(synchronous measure() calls with OTELPERF_TRACK_CPU=true; spans carry no CPU "
            "time): thread CPU time as a share of wall time, and the rest (waiting on I/O, "
            "locks or the GIL).",
            "percent",
            [
                Q(cpu_share, "{{operation}} CPU"),
                Q(f"100 - ({cpu_share})", "{{operation}} waiting"),
            ],
            max_value=100,
        ),
    ]
    contributors = [
        table(
            "Top contributors",
            "The ten operations with the most critical-path time under the selected root in "
            "the dashboard's time range, with their self time and share of the critical path.",
            "s",
            [
                Q(top),
                Q(f"{self_range} and {on(N.OPERATION)} {top}"),
                Q(f"100 * {cp_range} / {per_root} {cp_range_total} and {on(N.OPERATION)} {top}"),
            ],
            sort_by="Critical path",
            columns={
                "Value #A": ("Critical path", "s"),
                "Value #B": ("Self time", "s"),
                "Value #C": ("Share of critical path", "percent"),
            },
            w=24,
            h=9,
        )
    ]
    variables = [
        *target_vars(settings),
        query_var("root", "Root operation", N.ROOTS.prom, TARGET, N.ROOT_OPERATION, multi=False),
    ]
    return dashboard(
        settings,
        "bottlenecks",
        "Where a root operation's time goes: critical-path share, self time and CPU vs waiting, "
        "from otelperf's BottleneckSpanProcessor.",
        variables,
        [("Root operation", summary), ("Attribution", share), ("Top contributors", contributors)],
    )
