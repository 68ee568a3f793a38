"""otelperf: performance monitoring for Python services on OpenTelemetry and Prometheus.

>>> import otelperf
>>> telemetry = otelperf.configure(service_name="checkout")  # doctest: +SKIP
>>> @otelperf.measure
... def handle(request): ...
"""

from otelperf._names import VERSION
from otelperf.derive.processor import BottleneckSpanProcessor
from otelperf.emit.apis import api_call, record_api_call, record_cache
from otelperf.emit.measure import measure
from otelperf.emit.operation import Operation
from otelperf.emit.prices import set_api_price
from otelperf.errors import ConfigError
from otelperf.expose.server import prometheus_reader
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

__version__ = VERSION
