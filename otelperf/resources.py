"""Process and host resource readings (psutil), fork-safe, collected at scrape time.

psutil.Process() caches the pid it was made with, so a Process made before fork() would keep
reporting the parent: every reading goes through :func:`process`, which remakes it when the pid
changed.

:class:`ResourceMonitor` is what configure() installs: OTel observable gauges for host CPU,
memory and filesystem utilization and the process thread count (meter ``otelperf.resources``),
prometheus_client's process / GC / platform collectors on a private registry, and the
``/health`` check.  Every probe runs inside a guard: a failing probe is skipped for that scrape
and counted in ``otelperf_internal_errors_total{component="resources"}``, never raised into the
scrape.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import prometheus_client
import psutil
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import Metric as PromMetric
from prometheus_client.registry import Collector

from otelperf import _names as N
from otelperf._errors import Tally
from otelperf._per_provider import PerProvider

COMPONENT = "resources"
# Mount points reported per scrape; past this the rest are skipped and counted as overflow, so a
# host with thousands of mounts cannot flood the series count.
MAX_MOUNTPOINTS = 32

T = TypeVar("T")

_proc: psutil.Process | None = None
_proc_pid = -1


def process() -> psutil.Process:
    """The psutil Process of the current pid (remade after fork).

    >>> process().pid == os.getpid()
    True
    """
    global _proc, _proc_pid
    pid = os.getpid()
    if _proc is None or _proc_pid != pid:
        _proc = psutil.Process(pid)
        _proc_pid = pid
    return _proc


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_statm_ok = os.path.exists("/proc/self/statm")


def current_rss() -> int:
    """Resident set size of this process in bytes.

    >>> current_rss() > 0
    True
    """
    global _statm_ok
    if _statm_ok:
        # Linux: one open/read/close of /proc/self/statm is about half psutil's cost, and
        # "self" resolves at each open, so it is the current pid after fork (never keep the fd).
        try:
            fd = os.open("/proc/self/statm", os.O_RDONLY)
            try:
                data = os.read(fd, 256)
            finally:
                os.close(fd)
            return int(data.split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            _statm_ok = False
    return int(process().memory_info().rss)


# -- probes ---------------------------------------------------------------------------------------


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
        self._value = _ratio(*self._last)
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
                self._value = _ratio(d_busy, d_total)
                self._last = now
            return self._value


def _ratio(part: float, whole: float) -> float:
    return min(1.0, max(0.0, part / whole)) if whole > 0 else 0.0


def memory_utilization(virtual_memory: Callable[[], Any] = psutil.virtual_memory) -> float:
    """Host memory in use, 0..1: (total - available) / total, as ``free`` shows it.

    >>> 0.0 < memory_utilization() < 1.0
    True
    """
    vm = virtual_memory()
    return _ratio(float(vm.total - vm.available), float(vm.total))


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
        out[mountpoint] = _ratio(float(u.used), float(u.used + u.free))
    return out


# -- prometheus_client collectors, guarded ---------------------------------------------------------


class _Guarded(Collector):
    """A collector whose failures become a count instead of a failed scrape."""

    def __init__(self, inner: Collector, errors: Tally) -> None:
        self._inner = inner
        self._errors = errors

    def collect(self) -> Iterable[PromMetric]:
        try:
            return list(self._inner.collect())
        except Exception as exc:
            self._errors.error(COMPONENT, exc)
            return []

    def describe(self) -> Iterable[PromMetric]:
        # Lets CollectorRegistry.register() see the names, so a registry that already has a
        # process collector refuses a second one instead of exposing every series twice.
        return self.collect()


def _process_collectors() -> list[Collector]:
    return [
        ProcessCollector(registry=None),
        # GCCollector insists on registering somewhere: a throwaway registry.
        GCCollector(registry=CollectorRegistry()),
        PlatformCollector(registry=None),
    ]


# -- health ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthThresholds:
    """When /health reports degraded (host ratios, 0..1) or unhealthy (process bytes)."""

    cpu: float = 0.8
    memory: float = 0.8
    disk: float = 0.9
    process_memory_limit: int | None = None


@dataclass
class Readings:
    """One set of figures /health judges; None where the probe failed (see ``errors``)."""

    cpu: float | None
    memory: float | None
    disks: dict[str, float]
    rss: int | None
    errors: dict[str, str] = field(default_factory=dict)


HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"


def evaluate(r: Readings, t: HealthThresholds) -> tuple[int, dict[str, Any]]:
    """Judge readings against thresholds: (HTTP status, JSON document).  Pure.

    Host CPU, memory or any disk above its threshold, or a probe that failed, is degraded (200);
    process memory above the limit is unhealthy (503).

    >>> code, doc = evaluate(Readings(0.95, 0.1, {"/": 0.2}, 1000), HealthThresholds())
    >>> code, doc["status"], doc["reasons"]
    (200, 'degraded', ['host CPU utilization 0.950 > 0.800'])
    """
    reasons: list[str] = []
    unhealthy = False

    def ratio_check(name: str, label: str, value: float | None, limit: float) -> dict[str, Any]:
        check: dict[str, Any] = {"threshold": limit}
        if value is None:
            check["status"] = "error"
            check["error"] = r.errors.get(name, "probe failed")
            reasons.append(f"{label} unavailable: {check['error']}")
            return check
        check["utilization"] = round(value, 4)
        if value > limit:
            check["status"] = DEGRADED
            reasons.append(f"{label} {value:.3f} > {limit:.3f}")
        else:
            check["status"] = "ok"
        return check

    checks: dict[str, Any] = {
        "cpu": ratio_check("cpu", "host CPU utilization", r.cpu, t.cpu),
        "memory": ratio_check("memory", "host memory utilization", r.memory, t.memory),
    }
    disk: dict[str, Any] = {
        "threshold": t.disk,
        "mountpoints": {m: round(v, 4) for m, v in sorted(r.disks.items())},
        "status": "ok",
    }
    full = [m for m, v in sorted(r.disks.items()) if v > t.disk]
    for m in full:
        reasons.append(f"filesystem {m} utilization {r.disks[m]:.3f} > {t.disk:.3f}")
    if full:
        disk["status"] = DEGRADED
    if "disk" in r.errors:
        disk["status"] = "error" if not full else DEGRADED
        disk["error"] = r.errors["disk"]
        reasons.append(f"filesystem utilization unavailable: {r.errors['disk']}")
    checks["disk"] = disk

    proc: dict[str, Any] = {"limit_bytes": t.process_memory_limit, "status": "ok"}
    if r.rss is None:
        proc["status"] = "error"
        proc["error"] = r.errors.get("process_memory", "probe failed")
        reasons.append(f"process memory unavailable: {proc['error']}")
    else:
        proc["rss_bytes"] = r.rss
        if t.process_memory_limit is not None and r.rss > t.process_memory_limit:
            proc["status"] = UNHEALTHY
            unhealthy = True
            reasons.append(
                f"process resident memory {r.rss} bytes > limit {t.process_memory_limit} bytes"
            )
    checks["process_memory"] = proc

    status = UNHEALTHY if unhealthy else DEGRADED if reasons else HEALTHY
    return (503 if unhealthy else 200), {"status": status, "checks": checks, "reasons": reasons}


# -- OTel instruments, one set per meter provider -------------------------------------------------


class _Instruments:
    """The resource instruments on one meter provider; callbacks ask its current monitor.

    The SDK keeps the first instrument of a name on a meter and drops a later duplicate's
    callbacks, so a monitor replacing another on the same provider (configure, shutdown,
    configure again on the application's provider) must reuse these rather than create its own.
    """

    def __init__(self, meter_provider: MeterProvider) -> None:
        self.current: ResourceMonitor | None = None
        self.errors = Tally(N.COMPONENT)
        self.overflows = Tally(N.COMPONENT)
        meter = meter_provider.get_meter(N.RESOURCES_METER_NAME)
        for metric, method in (
            (N.HOST_CPU_UTILIZATION, "_observe_cpu"),
            (N.HOST_MEMORY_UTILIZATION, "_observe_memory"),
            (N.HOST_FILESYSTEM_UTILIZATION, "_observe_filesystems"),
            (N.PROC_THREADS, "_observe_threads"),
        ):
            meter.create_observable_gauge(
                metric.otel, callbacks=[self._callback(method)], unit=metric.unit,
                description=metric.help,
            )  # fmt: skip
        # Same names as instrument.py's counters, on another meter (the names on meter
        # "otelperf" are taken); the exporter merges both into one family by label value.
        for metric, tally in ((N.INTERNAL_ERRORS, self.errors),
                              (N.CARDINALITY_OVERFLOW, self.overflows)):  # fmt: skip
            meter.create_observable_counter(
                metric.otel, callbacks=[tally.observe], unit=metric.unit, description=metric.help
            )

    def _callback(self, method: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            monitor = self.current
            if monitor is None:
                return ()
            return list(getattr(monitor, method)(options))

        return observe


_instruments = PerProvider(_Instruments)


# -- the monitor configure() installs --------------------------------------------------------------


class ResourceMonitor:
    """Host and process metrics on a meter provider and a registry, plus the /health check.

    >>> from opentelemetry.sdk.metrics import MeterProvider
    >>> monitor = ResourceMonitor(MeterProvider(), CollectorRegistry())
    >>> monitor.health()[0]
    200
    >>> monitor.close()
    """

    def __init__(
        self,
        meter_provider: MeterProvider,
        registry: CollectorRegistry,
        thresholds: HealthThresholds | None = None,
        probes: Probes | None = None,
    ) -> None:
        self.thresholds = thresholds or HealthThresholds()
        self.probes = probes or Probes()
        self._registry = registry
        self._registered: list[Collector] = []
        # OTel cannot remove instruments from a provider the application owns: after close()
        # the callbacks report nothing instead.
        self._closed = False
        self._scrape_cpu = self._guard(lambda: CpuSampler(self.probes.cpu_times))
        self._health_cpu = self._guard(lambda: CpuSampler(self.probes.cpu_times))

        holder = _instruments.get(meter_provider)
        self._holder = holder
        # Counts carry over when configure() runs again on the same provider: counters stay
        # monotonic instead of resetting.
        self.errors = holder.errors
        self.overflows = holder.overflows
        holder.current = self

        # prometheus_client.REGISTRY has these from import time; a private registry gets them
        # here, so /metrics shows the same process metrics either way.
        if registry is not prometheus_client.REGISTRY:
            # A registry without auto_describe does not know the names of collectors that have
            # no describe(), so look for an existing one by type before adding ours.
            present = {type(c) for c in getattr(registry, "_collector_to_names", {})}
            for inner in _process_collectors():
                if type(inner) in present:
                    continue
                guarded = _Guarded(inner, self.errors)
                try:
                    registry.register(guarded)
                except ValueError:  # the registry already has this collector: keep its own
                    continue
                self._registered.append(guarded)

    # -- guarded readings -------------------------------------------------------------------
    def _guard(self, read: Callable[[], T]) -> T | None:
        if self._closed:
            return None
        try:
            return read()
        except Exception as exc:
            self.errors.error(COMPONENT, exc)
            return None

    def _on_fs_error(self, key: str, exc: BaseException) -> None:
        if key == "overflow":
            self.overflows.add(COMPONENT)
        else:
            self.errors.error(COMPONENT, exc)

    def _observe_cpu(self, options: CallbackOptions) -> Iterator[Observation]:
        sampler = self._scrape_cpu
        value = self._guard(sampler.read) if sampler is not None else None
        if value is not None:
            yield Observation(value)

    def _observe_memory(self, options: CallbackOptions) -> Iterator[Observation]:
        value = self._guard(lambda: memory_utilization(self.probes.virtual_memory))
        if value is not None:
            yield Observation(value)

    def _observe_filesystems(self, options: CallbackOptions) -> Iterator[Observation]:
        fs = self._guard(lambda: filesystems(self.probes, self._on_fs_error)) or {}
        for mountpoint, value in fs.items():
            yield Observation(value, {N.MOUNTPOINT: mountpoint})

    def _observe_threads(self, options: CallbackOptions) -> Iterator[Observation]:
        value = self._guard(self.probes.num_threads)
        if value is not None:
            yield Observation(value)

    # -- health -----------------------------------------------------------------------------
    def readings(self) -> Readings:
        """Current figures for /health (failures recorded in ``errors``, and counted)."""
        errors: dict[str, str] = {}

        def attempt(key: str, read: Callable[[], T]) -> T | None:
            try:
                return read()
            except Exception as exc:
                self.errors.error(COMPONENT, exc)
                errors[key] = f"{type(exc).__name__}: {exc}"
                return None

        sampler = self._health_cpu
        cpu = attempt("cpu", sampler.read) if sampler is not None else None
        if sampler is None:
            errors["cpu"] = "CPU times could not be read at start-up"
        memory = attempt("memory", lambda: memory_utilization(self.probes.virtual_memory))

        def on_fs_error(key: str, exc: BaseException) -> None:
            self._on_fs_error(key, exc)
            if key != "overflow":
                errors["disk"] = f"{type(exc).__name__}: {exc}"

        disks = attempt("disk", lambda: filesystems(self.probes, on_fs_error)) or {}
        rss = attempt("process_memory", self.probes.rss)
        return Readings(cpu, memory, disks, rss, errors)

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON document) for GET /health; never raises.

        >>> from opentelemetry.sdk.metrics import MeterProvider
        >>> code, doc = ResourceMonitor(MeterProvider(), CollectorRegistry()).health()
        >>> sorted(doc["checks"])
        ['cpu', 'disk', 'memory', 'process_memory']
        """
        try:
            return evaluate(self.readings(), self.thresholds)
        except Exception as exc:  # a bug here must still answer the probe
            self.errors.error(COMPONENT, exc)
            reason = f"health check failed: {type(exc).__name__}: {exc}"
            return 200, {"status": DEGRADED, "checks": {}, "reasons": [reason]}

    def close(self) -> None:
        """Take the collectors this monitor added off the registry (safe to call twice)."""
        for c in self._registered:
            with contextlib.suppress(KeyError):
                self._registry.unregister(c)
        self._registered.clear()
        self._closed = True
        if self._holder.current is self:
            self._holder.current = None
