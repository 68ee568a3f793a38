"""Alert group ``otelperf.resources``: process memory, host CPU and memory, disks.

>>> [(a.name, a.severity) for a in alerts(RuleContext())][-2:]
[('OtelperfDiskAlmostFull', 'critical'), ('OtelperfDiskAlmostFull', 'warning')]
"""

from __future__ import annotations

from otelperf import _names as n
from otelperf.generate.promql import call, number, range_vector
from otelperf.generate.rules.spec import AlertSpec, RuleContext, percent

GROUP = "otelperf.resources"
HOST = "{{ $labels.instance }} (job {{ $labels.job }})"
MOUNT = "{{ $labels.system_filesystem_mountpoint }}"


def alerts(ctx: RuleContext) -> list[AlertSpec]:
    """The group's rules, in the order alerts.yml lists them."""
    return [
        process_memory_high(ctx),
        memory_leak_suspected(ctx),
        host_cpu_high(ctx),
        host_memory_high(ctx),
        disk_full(ctx),
        disk_filling_up(ctx),
    ]


def process_memory_high(ctx: RuleContext) -> AlertSpec:
    """OtelperfProcessMemoryHigh: resident memory above a fixed number of bytes."""
    limit = number(ctx.thresholds.process_memory_bytes)
    return ctx.alert(
        GROUP, "OtelperfProcessMemoryHigh", "warning", "10m",
        f"{ctx.raw(n.PROCESS_RESIDENT_MEMORY)} > {limit}",
        "A process uses more resident memory than expected.",
        f"Process {HOST} has {{{{ $value | humanize1024 }}}}B resident "
        f"(threshold {limit} bytes).",
    )  # fmt: skip


def memory_leak_suspected(ctx: RuleContext) -> AlertSpec:
    """OtelperfMemoryLeakSuspected: resident memory growing to twice its size within 4 h."""
    rss = ctx.raw(n.PROCESS_RESIDENT_MEMORY)
    hour = range_vector(rss, "1h")
    return ctx.alert(
        GROUP, "OtelperfMemoryLeakSuspected", "warning", "30m",
        f"{call('predict_linear', hour, '4 * 3600')} > 2 * {rss} and {call('deriv', hour)} > 0",
        "A process's resident memory keeps growing and would double within 4 hours.",
        f"Process {HOST} grew over the last hour and is predicted to reach "
        f"{{{{ $value | humanize1024 }}}}B, twice its current resident memory, within 4h.",
    )  # fmt: skip


def host_cpu_high(ctx: RuleContext) -> AlertSpec:
    """OtelperfHostCpuHigh."""
    t = ctx.thresholds.host_cpu_utilization
    return ctx.alert(
        GROUP, "OtelperfHostCpuHigh", "warning", "10m",
        f"{ctx.raw(n.HOST_CPU_UTILIZATION.prom)} > {number(t)}",
        "A host's CPU is busy most of the time.",
        f"CPU utilization on {HOST} is {{{{ $value | humanizePercentage }}}} "
        f"(threshold {percent(t)}).",
    )  # fmt: skip


def host_memory_high(ctx: RuleContext) -> AlertSpec:
    """OtelperfHostMemoryHigh."""
    t = ctx.thresholds.host_memory_utilization
    return ctx.alert(
        GROUP, "OtelperfHostMemoryHigh", "warning", "10m",
        f"{ctx.raw(n.HOST_MEMORY_UTILIZATION.prom)} > {number(t)}",
        "A host's memory is nearly used up.",
        f"Memory utilization on {HOST} is {{{{ $value | humanizePercentage }}}} "
        f"(threshold {percent(t)}).",
    )  # fmt: skip


def disk_full(ctx: RuleContext) -> AlertSpec:
    """OtelperfDiskAlmostFull (critical): a filesystem above the utilization threshold."""
    t = ctx.thresholds.disk_utilization
    return ctx.alert(
        GROUP, "OtelperfDiskAlmostFull", "critical", "10m",
        f"{ctx.raw(n.HOST_FILESYSTEM_UTILIZATION.prom)} > {number(t)}",
        "A filesystem is almost full.",
        f"Filesystem {MOUNT} on {HOST} is {{{{ $value | humanizePercentage }}}} full "
        f"(threshold {percent(t)}).",
    )  # fmt: skip


def disk_filling_up(ctx: RuleContext) -> AlertSpec:
    """OtelperfDiskAlmostFull (warning): predicted full within 24 h from the last 6 h.

    Its ``for`` is 1h, not the critical rule's 10m: a 6 h trend wobbles with every log rotation
    or batch job, and a disk a day from full can wait an hour (node-exporter's mixin waits 1h in
    NodeFilesystemSpaceFillingUp for the same reason).
    """
    fs = ctx.raw(n.HOST_FILESYSTEM_UTILIZATION.prom)
    floor = number(ctx.thresholds.disk_predict_min_utilization)
    return ctx.alert(
        GROUP, "OtelperfDiskAlmostFull", "warning", "1h",
        f"{call('predict_linear', range_vector(fs, '6h'), '24 * 3600')} > 1 and {fs} > {floor}",
        "A filesystem is almost full.",
        f"Filesystem {MOUNT} on {HOST} is predicted to fill up within 24h "
        f"(predicted {{{{ $value | humanizePercentage }}}} in 24h).",
    )  # fmt: skip
