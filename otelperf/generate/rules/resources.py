"""Alert group ``otelperf.resources``: process memory, host CPU and memory, disks.

>>> [(a.name, a.severity) for a in alerts(RuleContext())][-2:]
[('OtelperfDiskAlmostFull', 'warning'), ('OtelperfFileDescriptorsHigh', 'warning')]
"""

from __future__ import annotations

from otelperf import _names as n
from otelperf.generate.promql import call, number, on, range_vector
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
        file_descriptors_high(ctx),
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


LEAK_WINDOW = "3h"
LEAK_WINDOW_SECONDS = 3 * 3600


def memory_leak_suspected(ctx: RuleContext) -> AlertSpec:
    """OtelperfMemoryLeakSuspected: steady growth over 3 h, counted from after the warm-up.

    Three conditions: the 3 h slope is at least ``memory_leak_min_bytes_per_hour``; the lowest
    reading of the last hour is above the highest of the hour that ended 2 h ago (a sawtooth
    or a cache that filled and stopped does not pass); and the whole 3 h window lies after the
    process's warm-up (``process_start_time_seconds``), so a new pod's start or a restart
    cannot fire it.  None depends on the current size, so it keeps firing while the leak goes on.
    """
    th = ctx.thresholds
    rss = ctx.raw(n.PROCESS_RESIDENT_MEMORY)
    uptime = f"time() - {ctx.raw(n.PROC_START_TIME.prom)}"
    after = number(LEAK_WINDOW_SECONDS + th.memory_leak_warmup_seconds)
    per_hour = number(th.memory_leak_min_bytes_per_hour)
    by = on(n.JOB, n.INSTANCE, tight=True)
    return ctx.alert(
        GROUP, "OtelperfMemoryLeakSuspected", "warning", "30m",
        f"{call('deriv', range_vector(rss, LEAK_WINDOW))} * 3600 > {per_hour} "
        f"and {call('min_over_time', range_vector(rss, '1h'))} > "
        f"{call('max_over_time', range_vector(rss, '1h', '2h'))} "
        f"and {by} ({uptime} > {after})",
        "A process's resident memory has been growing steadily for hours.",
        f"Process {HOST} grew by {{{{ $value | humanize1024 }}}}B an hour over the last "
        f"{LEAK_WINDOW}, steadily, after its warm-up (threshold "
        f"{th.memory_leak_min_bytes_per_hour / 1048576:g} MiB an hour).",
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


def file_descriptors_high(ctx: RuleContext) -> AlertSpec:
    """OtelperfFileDescriptorsHigh: open file descriptors near the process's limit."""
    t = ctx.thresholds.open_fds_ratio
    return ctx.alert(
        GROUP, "OtelperfFileDescriptorsHigh", "warning", "10m",
        f"{ctx.raw(n.PROC_OPEN_FDS.prom)} / ({ctx.raw(n.PROC_MAX_FDS.prom)} > 0) > {number(t)}",
        "A process has used most of its file descriptors.",
        f"Process {HOST} has {{{{ $value | humanizePercentage }}}} of its file descriptor "
        f"limit open (threshold {percent(t)}).",
    )  # fmt: skip
