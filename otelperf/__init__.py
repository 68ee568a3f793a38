"""otelperf: performance monitoring for Python services on OpenTelemetry and Prometheus.

>>> import otelperf
>>> telemetry = otelperf.configure(service_name="checkout")  # doctest: +SKIP
>>> @otelperf.measure
... def handle(request): ...
"""

from otelperf.config import ConfigError
from otelperf.exporter import prometheus_reader
from otelperf.instrument import Operation, measure
from otelperf.telemetry import Telemetry, configure

__all__ = [
    "ConfigError",
    "Operation",
    "Telemetry",
    "configure",
    "measure",
    "prometheus_reader",
]

__version__ = "0.1.0"
