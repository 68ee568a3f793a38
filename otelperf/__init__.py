"""otelperf: performance monitoring for Python services on OpenTelemetry and Prometheus.

>>> import otelperf
>>> telemetry = otelperf.configure(service_name="checkout")  # doctest: +SKIP
>>> @otelperf.measure
... def handle(request): ...
"""

from otelperf.apis import api_call, record_api_call, record_cache, set_api_price
from otelperf.errors import ConfigError
from otelperf.exporter import prometheus_reader
from otelperf.instrument import Operation, measure
from otelperf.processor import BottleneckSpanProcessor
from otelperf.telemetry import Telemetry, configure

__all__ = [
    "BottleneckSpanProcessor",
    "ConfigError",
    "Operation",
    "Telemetry",
    "api_call",
    "configure",
    "measure",
    "prometheus_reader",
    "record_api_call",
    "record_cache",
    "set_api_price",
]

__version__ = "0.1.0"
