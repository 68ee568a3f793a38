"""The Prometheus reader and the HTTP server that serves /metrics and /health.

/metrics is prometheus_client's own WSGI app (content negotiation for OpenMetrics, gzip,
``name[]`` filters); this module only adds routing, /health, 404 and 405, basic auth from the
web configuration file, and binding errors that name host:port.  The connections (timeouts,
the handler pool, keep-alive, TLS) are otelperf.expose.endpoint's.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from prometheus_client import CollectorRegistry, make_wsgi_app

from otelperf.errors import ConfigError
from otelperf.expose.endpoint import HTTPEndpoint
from otelperf.expose.http1 import Limits
from otelperf.expose.webconfig import BasicAuth, WebConfig

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


def make_app(
    registry: CollectorRegistry, health: HealthCheck | None, auth: BasicAuth | None = None
) -> Callable[..., Any]:
    """WSGI app: GET/HEAD /metrics and /health; other paths 404; other methods 405; with
    ``auth``, every path answers 401 (``WWW-Authenticate: Basic``) without valid credentials."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if auth is not None:
            allowed = auth.check(environ.get("HTTP_AUTHORIZATION"))
            if allowed is None:
                return _plain(start_response, "503 Service Unavailable",
                              b"too many credential checks at once, retry\n",
                              [("Retry-After", "1")])  # fmt: skip
            if not allowed:
                return _plain(start_response, "401 Unauthorized", b"unauthorized\n",
                              [("WWW-Authenticate", 'Basic realm="otelperf"')])  # fmt: skip
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
    """A running HTTP(S) server; ``url`` is its /metrics address (with the real port for port 0).

    ``web``: the loaded web configuration file (TLS, basic auth, headers), or None for plain
    HTTP without authentication.
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: HealthCheck | None = None,
        web: WebConfig | None = None,
        limits: Limits | None = None,
    ) -> None:
        auth = BasicAuth(web.users) if web is not None and web.users else None
        tls = web.tls if web is not None else None
        check = web.check_peer if web is not None and web.allowed_sans else None
        try:
            self._endpoint = HTTPEndpoint(
                host, port, make_app(registry, health, auth), limits=limits, tls=tls,
                check_peer=check, extra_headers=web.headers if web is not None else (),
            )  # fmt: skip
        except OSError as exc:
            error = PortInUse if exc.errno == errno.EADDRINUSE else ConfigError
            raise error(
                f"cannot serve metrics on {hostport(host, port)}: {exc.strerror or exc} "
                "(set prometheus_port / OTEL_EXPORTER_PROMETHEUS_PORT to a free port, or 0 "
                "for any free port)"
            ) from None
        self.host = host
        self.port = int(self._endpoint.server_address[1])
        self.scheme = "https" if tls is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{hostport(self.host, self.port)}/metrics"

    def abandon(self) -> None:
        """In a forked child: close the inherited listening socket and connections (the
        serving threads stayed in the parent), so the port is free when the parent goes."""
        self._endpoint.abandon()

    def close(self) -> None:
        self._endpoint.close()


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
