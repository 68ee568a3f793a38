"""configure(): set up (or attach to) OTel providers, the Prometheus reader and the HTTP server.

Wiring only: the parts are built in otelperf.emit (measure()'s pipeline), otelperf.derive (the
span processor), otelperf.expose (reader, server, resource metrics) and otelperf._core (where
span-less records and api_call() spans go); this module connects them and owns the lifecycle.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import prometheus_client
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from otelperf import _names as N
from otelperf._core import fork, sdk_compat, sinks
from otelperf._core.warn import warn_once
from otelperf.batch.finish import flush_providers
from otelperf.batch.hooks import ExitHooks, arm
from otelperf.config import Settings, resolve
from otelperf.derive.cardinality import cardinality_views, series_bound
from otelperf.derive.naming import SpanNamer
from otelperf.derive.processor import BottleneckSpanProcessor
from otelperf.derive.sampler import RecordEverythingSampler, attach, detach
from otelperf.emit.pipeline import Pipeline, install
from otelperf.errors import ConfigError
from otelperf.expose import webconfig
from otelperf.expose.health import HealthThresholds
from otelperf.expose.resources import ResourceMonitor
from otelperf.expose.server import MetricsServer, prometheus_reader
from otelperf.expose.workers import SharedService, start

__all__ = ["Telemetry", "cardinality_views", "configure", "current", "series_bound"]

if TYPE_CHECKING:  # report imports config only; kept out of import time all the same
    from otelperf.report import Report

_log = logging.getLogger("otelperf")

_lock = threading.Lock()
_current: Telemetry | None = None
_CHILD_SHUTDOWN_SECONDS = 2.0


def _fresh_lock_after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # a parent thread may have held it in configure() or shutdown()


fork.on_fork(_fresh_lock_after_fork)


class Telemetry:
    """What :func:`configure` set up.  ``metrics_url`` is where /metrics is served (or None).

    >>> t = otelperf.configure(service_name="api", prometheus_port=0)  # doctest: +SKIP
    >>> t.metrics_url                                                  # doctest: +SKIP
    'http://127.0.0.1:40123/metrics'
    """

    def __init__(
        self,
        settings: Settings,
        key: tuple[Any, ...],
        tracer_provider: Any,
        meter_provider: Any,
        registry: CollectorRegistry,
        pipeline: Pipeline,
        owns_tracer_provider: bool,
        owns_meter_provider: bool,
    ) -> None:
        self.settings = settings
        self._key = key
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.registry = registry
        self._pipeline = pipeline
        self._owns_tp = owns_tracer_provider
        self._owns_mp = owns_meter_provider
        # A plain server (port 0), or this process's membership of a service whose processes
        # share one endpoint (expose/workers.py: gunicorn / uvicorn workers).
        self._server: MetricsServer | SharedService | None = None
        self._closed = False
        self._auto = False  # set up by opentelemetry-instrument (otelperf.distro)
        self._resources: ResourceMonitor | None = None  # host/process metrics and /health
        # (BottleneckSpanProcessor, sampler wrapper) on tp
        self._bottleneck: tuple[BottleneckSpanProcessor, RecordEverythingSampler] | None = None
        self._pid = os.getpid()  # a forked child shuts down without waiting (see shutdown)
        self._exit: ExitHooks | None = None  # the report and push at exit (docs/batch.md)
        fork.on_fork(self._after_fork)

    def _after_fork(self) -> None:
        # A plain server's thread stayed in the parent: close the child's copy of its socket
        # and serve nothing (metrics_url None).  A SharedService stays: its own fork hook makes
        # the child a writer of the service, whose shared endpoint metrics_url still names.
        server = self._server
        if isinstance(server, MetricsServer):
            self._server = None
            try:
                server.abandon()
            except Exception as exc:  # never fail the application's fork
                _log.warning("otelperf: closing the inherited server socket failed: %s", exc)

    @property
    def metrics_url(self) -> str | None:
        """``http://host:port/metrics`` of the running server, None when not serving.

        In a forked child: the service's shared endpoint when the parent served one on a fixed
        port (the child is one of its writers, docs/workers.md), else None (the parent's plain
        server is not the child's)."""
        return self._server.url if self._server is not None else None

    def mark_auto(self) -> None:
        """Set up by opentelemetry-instrument (otelperf.distro): a later configure() call in
        the application's code returns this Telemetry instead of raising or serving twice."""
        self._auto = True

    @property
    def enabled(self) -> bool:
        return not self.settings.disabled

    def report(self, top: int | None = None, timeline: Sequence[Any] | None = None) -> Report:
        """The performance report of this process (totals since it started), as
        ``otelperf report`` builds it; ``.to_text()``, ``.to_dict()``, ``.to_json()`` and
        ``.to_html()`` render it (otelperf.report.Report, docs/report.md); ``timeline`` (a
        ``TimelineRecorder``'s points) gives the page its throughput over the run.

        >>> print(telemetry.report().to_text())  # doctest: +SKIP
        """
        from otelperf.report import from_registry

        return from_registry(self.registry, top=top, settings=self.settings, timeline=timeline)

    def health(self) -> tuple[int, dict[str, Any]]:
        """What ``GET /health`` answers: (HTTP status, JSON document); see docs/metrics.md#health.

        For applications that serve their own endpoints (``start_server=False``)::

            code, doc = telemetry.health()
            return JSONResponse(doc, status_code=code)
        """
        if self._resources is None:
            doc = {"status": "healthy", "checks": {}, "reasons": [],
                   "note": "resource monitoring is off (otelperf disabled)"}  # fmt: skip
            return 200, doc
        return self._resources.health()

    def finish(self) -> None:
        """Do now, once, what the settings ask for at exit: flush the providers, write the
        final report (``report_at_exit``), push to the Pushgateway (``push_gateway_url``).
        Failures are told on stderr, never raised.  Interpreter exit, SIGTERM and
        :meth:`shutdown` call it; ``otelperf run`` calls it when the program returns."""
        if self._exit is not None:
            self._exit.finish()
        else:
            flush_providers(self.tracer_provider, self.meter_provider)

    @property
    def exit_signal(self) -> int | None:
        """The signal (SIGTERM) that ended the program through otelperf's handler, if one did."""
        return self._exit.signum if self._exit is not None else None

    def _arm_exit(self) -> None:
        tp, mp = self.tracer_provider, self.meter_provider
        self._exit = arm(self.settings, self.registry, tp, mp, self._final_report)

    def _final_report(self, timeline: tuple[Any, ...]) -> Report:
        return self.report(timeline=timeline)

    def _start_server(self) -> None:
        s = self.settings
        health = self._resources.health if self._resources is not None else None
        web = webconfig.load(s.web_config_file) if s.web_config_file is not None else None
        self._server = start(
            s.prometheus_host,
            s.prometheus_port,
            self.registry,
            health,
            s.process_memory_limit,
            web,
        )

    def shutdown(self) -> None:
        """Stop the HTTP server, flush and shut down the providers otelperf created.

        Safe to call twice.  Afterwards configure() may be called again with other settings.
        """
        global _current
        with _lock:
            if self._closed:
                return
            self._closed = True
            if _current is self:
                _current = None
                install(None)
                sinks.set_tracer_provider(None)
        if self._exit is not None:  # the last report and push, while everything still runs
            self._exit.finish()
            self._exit.disarm()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._resources is not None:
            self._resources.close()
        fork.forget(self._after_fork)
        self._detach_processor()
        if os.getpid() == self._pid:
            flush_providers(self.tracer_provider, self.meter_provider)  # the application's too
            self._shutdown_providers_quietly()
            return
        # A forked child: a lock of the SDK's that a parent thread held at fork() (a scrape's
        # collection, a batch export) is never released here, so the providers are shut down
        # in a daemon thread, waited for a bounded time: shutdown returns either way.
        t = threading.Thread(
            target=self._shutdown_providers_quietly, name="otelperf-shutdown", daemon=True
        )
        t.start()
        t.join(timeout=_CHILD_SHUTDOWN_SECONDS)

    def _detach_processor(self) -> None:
        if self._bottleneck is not None:
            proc, wrapper = self._bottleneck
            self._bottleneck = None
            try:
                detach(self.tracer_provider, proc, wrapper)
            except Exception as exc:  # never fail shutdown for it
                _log.warning("otelperf: removing the span processor failed: %s", exc)

    def _shutdown_providers_quietly(self) -> None:
        for owned, provider in ((self._owns_tp, self.tracer_provider),
                                (self._owns_mp, self.meter_provider)):  # fmt: skip
            if owned and provider is not None:
                try:
                    provider.shutdown()
                except Exception as exc:  # a flush failure must not break shutdown
                    _log.warning("otelperf: provider shutdown failed: %s", exc)

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def configure(
    *,
    service_name: str | None = None,
    prometheus_host: str | None = None,
    prometheus_port: int | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    registry: CollectorRegistry | None = None,
    set_global: bool = True,
    start_server: bool = True,
    disabled: bool | None = None,
    max_operations: int | None = None,
    duration_buckets: Iterable[float] | None = None,
    track_cpu: bool | None = None,
    health_cpu_threshold: float | None = None,
    health_memory_threshold: float | None = None,
    health_disk_threshold: float | None = None,
    process_memory_limit: int | str | None = None,
    ignore_spans: Iterable[str] | None = None,
    web_config_file: str | os.PathLike[str] | None = None,
    max_traces_in_flight: int | None = None,
    max_spans_per_trace: int | None = None,
    trace_ttl_seconds: float | None = None,
    report_at_exit: str | None = None,
    report_file: str | os.PathLike[str] | None = None,
    push_gateway_url: str | None = None,
    push_job: str | None = None,
) -> Telemetry:
    """Set up otelperf once per process and serve /metrics; returns the :class:`Telemetry`.

    Arguments beat the OTEL_* / OTELPERF_* variables (see docs/configuration.md).  Providers
    the application already installed are reused; otherwise SDK providers are created (and
    installed as the global ones unless ``set_global=False``).  Calling it again with the same
    arguments returns the same Telemetry; with different ones it raises ConfigError.

    >>> telemetry = otelperf.configure(service_name="checkout")  # doctest: +SKIP
    >>> telemetry.shutdown()                                     # doctest: +SKIP
    """
    global _current
    settings = resolve(
        service_name=service_name,
        prometheus_host=prometheus_host,
        prometheus_port=prometheus_port,
        resource_attributes=resource_attributes,
        start_server=start_server,
        disabled=disabled,
        max_operations=max_operations,
        duration_buckets=duration_buckets,
        track_cpu=track_cpu,
        health_cpu_threshold=health_cpu_threshold,
        health_memory_threshold=health_memory_threshold,
        health_disk_threshold=health_disk_threshold,
        process_memory_limit=process_memory_limit,
        ignore_spans=ignore_spans,
        web_config_file=web_config_file,
        max_traces_in_flight=max_traces_in_flight,
        max_spans_per_trace=max_spans_per_trace,
        trace_ttl_seconds=trace_ttl_seconds,
        report_at_exit=report_at_exit,
        report_file=report_file,
        push_gateway_url=push_gateway_url,
        push_job=push_job,
    )
    key = (settings, id(tracer_provider), id(meter_provider), id(registry), set_global)
    with _lock:
        if _current is not None:
            if _current._key == key or _current._auto:
                # Under opentelemetry-instrument the distro configured otelperf before the
                # application's code ran: a configure() call there attaches to it (one server).
                return _current
            raise ConfigError(
                "otelperf.configure() was already called with different settings "
                f"({_describe_difference(_current.settings, settings)}); call "
                "Telemetry.shutdown() first to reconfigure"
            )
        quiet = _SameNameAcrossMeters()
        _SDK_VIEWS_LOG.addFilter(quiet)
        try:
            telemetry = _build(settings, key, tracer_provider, meter_provider, registry, set_global)
        finally:
            _SDK_VIEWS_LOG.removeFilter(quiet)
        if settings.start_server and not settings.disabled:
            try:
                telemetry._start_server()
            except Exception:
                telemetry._closed = True
                telemetry._detach_processor()
                telemetry._shutdown_providers_quietly()
                raise
        telemetry._arm_exit()
        _current = telemetry
        install(telemetry._pipeline)
        sinks.set_tracer_provider(telemetry.tracer_provider)
        return telemetry


def _describe_difference(old: Settings, new: Settings) -> str:
    diffs = [
        f"{f}: {getattr(old, f)!r} -> {getattr(new, f)!r}"
        for f in old.__dataclass_fields__
        if getattr(old, f) != getattr(new, f)
    ]
    return "; ".join(diffs) or "other providers or registry"


class _SameNameAcrossMeters(logging.Filter):
    """otelperf's error and overflow counters are one instrument name on each of its meters by
    design (the exporter merges them into one family); with views, the SDK warns about that at
    registration.  Dropped while configure() registers otelperf's own instruments only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "conflicting metrics identities" not in record.getMessage()


_SDK_VIEWS_LOG = logging.getLogger("opentelemetry.sdk.metrics._internal.metric_reader_storage")


def _build(
    settings: Settings,
    key: tuple[Any, ...],
    tracer_provider: Any,
    meter_provider: Any,
    registry: CollectorRegistry | None,
    set_global: bool,
) -> Telemetry:
    reg = registry if registry is not None else prometheus_client.REGISTRY
    resource = Resource.create(dict(settings.resource_attributes))

    if settings.disabled:
        pipeline = Pipeline(trace.NoOpTracer(), metrics.NoOpMeterProvider(), enabled=False)
        return Telemetry(settings, key, None, None, reg, pipeline, False, False)

    owns_tp = False
    tp = tracer_provider
    if tp is None:
        tp = trace.get_tracer_provider()
        if sdk_compat.is_unset_tracer_provider(tp) or not set_global:
            tp = TracerProvider(resource=resource)
            owns_tp = True
            if set_global:
                trace.set_tracer_provider(tp)
    if not isinstance(tp, TracerProvider):
        warn_once(
            "tp",
            f"otelperf: the tracer provider is a {type(tp).__name__}, not an OpenTelemetry SDK "
            "TracerProvider, so otelperf cannot add its span processor: bottleneck and API "
            "metrics will be missing. Install opentelemetry-sdk's TracerProvider, or call "
            "otelperf.configure() before setting a provider.",
        )

    owns_mp = False
    mp = meter_provider
    if mp is None:
        mp = metrics.get_meter_provider()
        if sdk_compat.is_unset_meter_provider(mp) or not set_global:
            mp = MeterProvider(
                metric_readers=[prometheus_reader(reg)], resource=resource,
                views=cardinality_views(settings.max_operations),
            )  # fmt: skip
            owns_mp = True
            if set_global:
                metrics.set_meter_provider(mp)
    if not owns_mp and not sdk_compat.has_prometheus_reader(mp):
        warn_once(
            "mp",
            f"otelperf: the application's meter provider ({type(mp).__name__}) has no "
            "PrometheusMetricReader, so otelperf's metrics go to that provider's exporters but "
            "not to /metrics. To expose them, create it with "
            "MeterProvider(metric_readers=[otelperf.prometheus_reader(prometheus_client.REGISTRY), "
            "...]), or call otelperf.configure() before setting a meter provider.",
        )

    pipeline = Pipeline(
        tp.get_tracer(N.TRACER_NAME),
        mp,
        max_operations=settings.max_operations,
        duration_buckets=settings.duration_buckets,
        track_cpu=settings.track_cpu,
    )
    telemetry = Telemetry(settings, key, tp, mp, reg, pipeline, owns_tp, owns_mp)
    if isinstance(tp, TracerProvider):
        proc = BottleneckSpanProcessor(
            meter_provider=mp,
            max_operations=settings.max_operations,
            max_traces_in_flight=settings.max_traces_in_flight,
            max_spans_per_trace=settings.max_spans_per_trace,
            trace_ttl_seconds=settings.trace_ttl_seconds,
            registry=reg,
            duration_buckets=settings.duration_buckets,
            namer=SpanNamer(ignore=settings.ignore_spans),
        )
        telemetry._bottleneck = (proc, attach(tp, proc))
    try:
        telemetry._resources = ResourceMonitor(
            mp, reg, HealthThresholds(
                cpu=settings.health_cpu_threshold, memory=settings.health_memory_threshold,
                disk=settings.health_disk_threshold,
                process_memory_limit=settings.process_memory_limit,
            ),
        )  # fmt: skip
    except Exception as exc:  # resource metrics are extras: never fail configure() for them
        _log.warning("otelperf: host/process metrics and /health unavailable: %s", exc)
    return telemetry


def current() -> Telemetry | None:
    """The Telemetry of the last configure() call that was not shut down, if any."""
    return _current
