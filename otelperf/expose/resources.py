"""Host and process metrics, and the /health check, as configure() installs them.

:class:`ResourceMonitor`: OTel observable gauges for host CPU, memory and filesystem
utilization and the process thread count (meter ``otelperf.resources``), prometheus_client's
process / GC / platform collectors on a private registry, and the ``/health`` check.  Every
probe runs inside a guard: a failing probe is skipped for that scrape and counted in
``otelperf_internal_errors_total{component="resources"}``, never raised into the scrape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import prometheus_client
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import Metric as PromMetric
from prometheus_client.registry import Collector

from otelperf import _names as N
from otelperf._core import sdk_compat, selfmetrics
from otelperf._core.labels import safe_label
from otelperf._core.per_provider import PerProvider
from otelperf._core.selfmetrics import Tally
from otelperf.expose.health import DEGRADED, HealthThresholds, Readings, evaluate
from otelperf.expose.probes import CpuSampler, Probes, filesystems, memory_utilization

COMPONENT = "resources"

T = TypeVar("T")


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
        for metric, read in (
            (N.HOST_CPU_UTILIZATION, ResourceMonitor._observe_cpu),
            (N.HOST_MEMORY_UTILIZATION, ResourceMonitor._observe_memory),
            (N.HOST_FILESYSTEM_UTILIZATION, ResourceMonitor._observe_filesystems),
            (N.PROC_THREADS, ResourceMonitor._observe_threads),
        ):
            meter.create_observable_gauge(
                metric.otel, callbacks=[self._callback(read)], unit=metric.unit,
                description=metric.help,
            )  # fmt: skip
        # Same names as the pipeline's and the processor's counters, on another meter (the
        # exporter merges them into one family by label value); they read these tallies.
        selfmetrics.Counters(meter).current = self

    def _callback(
        self, read: Callable[[ResourceMonitor, CallbackOptions], Iterable[Observation]]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            monitor = self.current
            if monitor is None:
                return ()
            return list(read(monitor, options))

        return observe


_instruments = PerProvider(_Instruments)


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

        holder = _instruments.get(meter_provider)
        self._holder = holder
        # Counts carry over when configure() runs again on the same provider: counters stay
        # monotonic instead of resetting.  Set before the first guarded reading below: a probe
        # failing at start-up is counted there, and the monitor (/health, the gauges) stays.
        self.errors = holder.errors
        self.overflows = holder.overflows
        self._scrape_cpu = self._guard(lambda: CpuSampler(self.probes.cpu_times))
        self._health_cpu = self._guard(lambda: CpuSampler(self.probes.cpu_times))
        holder.current = self

        # prometheus_client.REGISTRY has these from import time; a private registry gets them
        # here, so /metrics shows the same process metrics either way.
        if registry is not prometheus_client.REGISTRY:
            # A registry without auto_describe does not know the names of collectors that have
            # no describe(), so look for an existing one by type before adding ours.
            present = sdk_compat.collector_types(registry)
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
            yield Observation(value, {N.MOUNTPOINT: safe_label(mountpoint)})

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
