"""The Prometheus reader and the HTTP server that serves /metrics and /health.

/metrics is prometheus_client's own WSGI app (content negotiation for OpenMetrics, gzip,
``name[]`` filters); this module only adds routing, /health, 404 and 405, and binding errors
that name host:port.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from prometheus_client import CollectorRegistry, make_wsgi_app

from otelperf.errors import ConfigError

HealthCheck = Callable[[], tuple[int, dict[str, Any]]]
StartResponse = Callable[..., Any]


def prometheus_reader(registry: CollectorRegistry) -> PrometheusMetricReader:
    """The OTel metric reader otelperf exposes through (scope labels off: plain label sets).

    Give it to your own MeterProvider to have otelperf's /metrics show its metrics::

        reader = otelperf.prometheus_reader(prometheus_client.REGISTRY)
        MeterProvider(metric_readers=[reader])
    """
    return PrometheusMetricReader(registry=registry, scope_info_enabled=False)


class PortInUse(ConfigError):
    """The port is taken (EADDRINUSE); workers.py tells its own service from a stranger."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_app(registry: CollectorRegistry, health: HealthCheck | None) -> Callable[..., Any]:
    """WSGI app: GET/HEAD /metrics and /health; other paths 404; other methods 405."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        known = path == "/metrics" or (path == "/health" and health is not None)
        if not known:
            return _plain(start_response, "404 Not Found", b"not found: try /metrics or /health\n")
        if method not in ("GET", "HEAD"):
            return _plain(
                start_response, "405 Method Not Allowed", b"method not allowed\n",
                [("Allow", "GET, HEAD")],
            )  # fmt: skip
        if path == "/metrics":
            # prometheus_client answers HEAD with 405; serve it as GET and drop the body below.
            body = metrics_app(dict(environ, REQUEST_METHOD="GET"), start_response)
        else:
            assert health is not None
            code, doc = health()
            status = "200 OK" if code == 200 else f"{code} Service Unavailable"
            payload = (json.dumps(doc, sort_keys=True) + "\n").encode()
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(payload)))])  # fmt: skip
            body = [payload]
        return [] if method == "HEAD" else body

    return app


def _plain(
    start_response: StartResponse, status: str, body: bytes,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:  # fmt: skip
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                             ("Content-Length", str(len(body)))] + (extra or []))  # fmt: skip
    return [body]


class MetricsServer:
    """A running HTTP server; ``url`` is its /metrics address (with the real port for port 0)."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, health: HealthCheck | None = None
    ) -> None:
        server_class: type[_Server] = _Server6 if ":" in host else _Server
        try:
            self._httpd = make_server(
                host, port, make_app(registry, health),
                server_class=server_class, handler_class=_QuietHandler,
            )  # fmt: skip
        except OSError as exc:
            error = PortInUse if exc.errno == errno.EADDRINUSE else ConfigError
            raise error(
                f"cannot serve metrics on {hostport(host, port)}: {exc.strerror or exc} "
                "(set prometheus_port / OTEL_EXPORTER_PROMETHEUS_PORT to a free port, or 0 "
                "for any free port)"
            ) from None
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="otelperf-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{hostport(self.host, self.port)}/metrics"

    def abandon(self) -> None:
        """In a forked child: close the inherited listening socket (the serving thread stayed
        in the parent), so the port is free when the parent goes."""
        self._httpd.server_close()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
