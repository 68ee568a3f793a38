"""Zero-code start: ``opentelemetry-instrument <command>`` sets otelperf up, no code changes.

opentelemetry-instrument's sitecustomize loads, in this order, a distro (entry point group
``opentelemetry_distro``), one configurator (``opentelemetry_configurator``), then the
instrumentors and ``opentelemetry_post_instrument`` hooks.  otelperf declares all three
(pyproject.toml):

- :class:`OtelperfDistro` asks for otelperf's configurator (``OTEL_PYTHON_CONFIGURATOR``
  defaults to ``otelperf``), so with opentelemetry-distro installed too the SDK is set up once;
- :class:`OtelperfConfigurator` is the SDK's own configurator (every ``OTEL_*`` variable:
  exporters, sampler, resource, propagators) with otelperf's Prometheus reader added to the
  MeterProvider it builds; ``prometheus`` in ``OTEL_METRICS_EXPORTER`` means that reader,
  served by otelperf's one server (the SDK's would fight it for the same port).  Then
  :func:`otelperf.configure` attaches the span processor and sampler to the TracerProvider and
  serves /metrics and /health;
- :func:`after_instrument` covers a run where another configurator won: it attaches otelperf
  to the providers that one built (without a server of its own when that one's Prometheus
  exporter already serves the registry).

A ``configure()`` call in the application then returns this Telemetry (no second server, no
warning).  Only opentelemetry-instrument imports this module: opentelemetry-instrumentation
stays an optional dependency.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import prometheus_client
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

from otelperf import telemetry
from otelperf._core import sdk_compat

_log = logging.getLogger("otelperf")

NAME = "otelperf"  # the entry points' name, for OTEL_PYTHON_CONFIGURATOR / OTEL_PYTHON_DISTRO
METRICS_EXPORTER = "OTEL_METRICS_EXPORTER"


class OtelperfDistro(BaseDistro):  # type: ignore[misc]  # untyped base class
    """The ``opentelemetry_distro`` entry point: choose otelperf's configurator."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", NAME)
        _LOADER_LOG.addFilter(_OtherConfiguratorSkipped())


class _OtherConfiguratorSkipped(logging.Filter):
    """With opentelemetry-distro installed too (the README's zero-code install), the loader
    warns at every start that its configurator was skipped for otelperf's: by design (it is
    the SDK's own configurator, which otelperf's extends), so that warning is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        # (skipped, chosen[, variable]): only a skip in otelperf's favour is dropped
        ours = len(args) >= 2 and args[1] == NAME and args[0] != NAME
        return not (ours and record.msg in (_SKIPPED_ALREADY, _SKIPPED_BY_VARIABLE))


_LOADER_LOG = logging.getLogger("opentelemetry.instrumentation.auto_instrumentation._load")
_SKIPPED_ALREADY = "Configuration of %s not loaded, %s already loaded"
_SKIPPED_BY_VARIABLE = "Configuration of %s not loaded because %s is set by %s"


class OtelperfMetricReader(PrometheusMetricReader):
    """otelperf's reader as an ``opentelemetry_metrics_exporter`` (``OTEL_METRICS_EXPORTER=
    otelperf``): prometheus_client's default registry, scope labels off, no server of its own
    (otelperf serves the registry)."""

    def __init__(self) -> None:
        super().__init__(registry=prometheus_client.REGISTRY, scope_info_enabled=False)


def metrics_exporters(value: str | None) -> str:
    """``OTEL_METRICS_EXPORTER`` without ``prometheus`` and ``otelperf`` (otelperf's reader
    replaces them), ``none`` when nothing is left.

    >>> metrics_exporters("prometheus,otlp"), metrics_exporters("prometheus")
    ('otlp', 'none')
    """
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    rest = [n for n in names if n.lower() not in ("prometheus", NAME, "none")]
    return ",".join(rest) or "none"


class OtelperfConfigurator(_OTelSDKConfigurator):
    """The ``opentelemetry_configurator`` entry point: the SDK from OTEL_* variables, then
    otelperf on it."""

    def _configure(self, **kwargs: Any) -> None:
        before = os.environ.get(METRICS_EXPORTER)
        os.environ[METRICS_EXPORTER] = metrics_exporters(before)
        try:
            names = list(kwargs.pop("metric_exporter_names", None) or [])
            super()._configure(  # type: ignore[no-untyped-call]
                metric_exporter_names=[*names, NAME], **kwargs
            )
        finally:
            # the application (and its child processes) see the variable as it was
            if before is None:
                os.environ.pop(METRICS_EXPORTER, None)
            else:
                os.environ[METRICS_EXPORTER] = before
            # even when the SDK's set-up failed (an exporter not installed: OTel logs it),
            # otelperf's metrics are served
            _attach()


def after_instrument() -> None:
    """The ``opentelemetry_post_instrument`` hook: if another configurator set the SDK up,
    attach otelperf to it now."""
    if telemetry.current() is None:
        # That configurator's Prometheus exporter (OTEL_METRICS_EXPORTER=prometheus) already
        # serves prometheus_client's registry on the port: otelperf's metrics go there too, and
        # a second server would fail on the port.
        served = sdk_compat.has_prometheus_reader(metrics.get_meter_provider())
        _attach(start_server=not served)


def _attach(start_server: bool = True) -> None:
    try:
        t = telemetry.configure(start_server=start_server)
    except Exception as exc:  # never stop the application from starting
        _log.error("otelperf: zero-code set-up failed: %s", exc)
        return
    t.mark_auto()
