"""Process and host resource readings (psutil), fork-safe: what the resource metrics and
/health read.

Every reading takes its source from :class:`Probes` (psutil by default), so tests can make one
fail; process-level readings go through otelperf._core.process, which remakes the psutil Process
after fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from otelperf._core.process import current_rss, process

# Mount points reported per scrape; past this the rest are skipped and counted as overflow, so a
# host with thousands of mounts cannot flood the series count.
MAX_MOUNTPOINTS = 32


@dataclass(frozen=True)
class Probes:
    """Where readings come from; psutil by default.  Passed in so tests can make one fail."""

    cpu_times: Callable[[], Any] = psutil.cpu_times
    virtual_memory: Callable[[], Any] = psutil.virtual_memory
    disk_partitions: Callable[[], list[Any]] = field(
        default=lambda: psutil.disk_partitions(all=False)
    )
    disk_usage: Callable[[str], Any] = psutil.disk_usage
    num_threads: Callable[[], int] = field(default=lambda: process().num_threads())
    rss: Callable[[], int] = current_rss


def _busy_total(t: Any) -> tuple[float, float]:
    """(busy, total) CPU seconds summed over all CPUs, as psutil.cpu_percent counts them."""
    total = float(sum(t))
    # guest time is already inside user time on Linux; idle and iowait are not busy.
    total -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    idle = float(t.idle) + float(getattr(t, "iowait", 0.0))
    return total - idle, total


class CpuSampler:
    """Host CPU utilization between two readings.

    Each consumer (the scrape gauge, /health) has its own sampler so that one does not shorten
    the other's interval.  A reading less than ``min_window`` seconds after the previous one
    repeats the previous figure (tick-granular counters make tiny windows read 0 or 1); until
    the first full window, the figure is the average since boot.

    >>> s = CpuSampler()
    >>> 0.0 <= s.read() <= 1.0
    True
    """

    def __init__(
        self, cpu_times: Callable[[], Any] = psutil.cpu_times, min_window: float = 0.1
    ) -> None:
        self._cpu_times = cpu_times
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._last = _busy_total(cpu_times())
        self._value = ratio(*self._last)
        # cpu_times() sums over all CPUs, so total time advances ncpu seconds per second.
        self._min_total = min_window * (psutil.cpu_count() or 1)

    def read(self) -> float:
        now = _busy_total(self._cpu_times())
        if self._pid != os.getpid():
            # A fork copies the lock in whatever state another thread held it: a fresh one.
            self._lock = threading.Lock()
            self._pid = os.getpid()
        with self._lock:
            d_busy = now[0] - self._last[0]
            d_total = now[1] - self._last[1]
            if d_total > 0 and d_total >= self._min_total:
                self._value = ratio(d_busy, d_total)
                self._last = now
            return self._value


def ratio(part: float, whole: float) -> float:
    """``part / whole`` clamped to 0..1 (0 when ``whole`` is 0)."""
    return min(1.0, max(0.0, part / whole)) if whole > 0 else 0.0


def memory_utilization(virtual_memory: Callable[[], Any] = psutil.virtual_memory) -> float:
    """Host memory in use, 0..1: (total - available) / total, as ``free`` shows it.

    >>> 0.0 < memory_utilization() < 1.0
    True
    """
    vm = virtual_memory()
    return ratio(float(vm.total - vm.available), float(vm.total))


def filesystems(probes: Probes, on_error: Callable[[str, BaseException], None]) -> dict[str, float]:
    """Space in use, 0..1, per mount point of real (device-backed) filesystems.

    A device mounted several times (bind mounts) is reported once, at its shortest mount point;
    at most MAX_MOUNTPOINTS are returned.  A mount that cannot be read is skipped via
    ``on_error``.

    >>> "/" in filesystems(Probes(), lambda key, exc: None)  # doctest: +SKIP
    True
    """
    by_device: dict[str, str] = {}
    for part in probes.disk_partitions():
        seen = by_device.get(part.device)
        if seen is None or (len(part.mountpoint), part.mountpoint) < (len(seen), seen):
            by_device[part.device] = part.mountpoint
    out: dict[str, float] = {}
    for mountpoint in sorted(by_device.values()):
        if len(out) >= MAX_MOUNTPOINTS:
            on_error("overflow", OverflowError(mountpoint))  # counted once per skipped mount
            continue
        try:
            u = probes.disk_usage(mountpoint)
        except Exception as exc:  # unmounted in between, permission denied: skip this one
            on_error("probe", exc)
            continue
        # used / (used + free) like df: the root-reserved blocks count as neither.
        out[mountpoint] = ratio(float(u.used), float(u.used + u.free))
    return out
