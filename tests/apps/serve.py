"""Serve both apps, instrumented, with otelperf configured: ``python -m tests.apps.serve``.

Prints one JSON line (the ports and the /metrics URL) once everything listens, then serves
until its stdin closes.  Run with OTEL_SEMCONV_STABILITY_OPT_IN=http for the stable HTTP
conventions: the instrumentations read it once per process, hence a process per variant.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from typing import Any

import uvicorn
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from werkzeug.serving import make_server

import otelperf
from tests.apps import fastapi_app, flask_app
from tests.apps.stub import start_stub


def serve_uvicorn(app: Any) -> tuple[uvicorn.Server, int]:
    """Serve ``app`` with uvicorn in a thread on a free 127.0.0.1 port; return once it accepts
    (uvicorn sets ``started`` then)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        time.sleep(0.01)
    return uv, int(sock.getsockname()[1])


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log
    telemetry = otelperf.configure(service_name="apps", prometheus_port=0)
    HTTPXClientInstrumentor().instrument()
    RequestsInstrumentor().instrument()
    stub_fastapi, stub_flask = start_stub(), start_stub()

    fapp = fastapi_app.make_app(f"http://127.0.0.1:{stub_fastapi.server_port}")
    FastAPIInstrumentor.instrument_app(fapp)
    uv, fastapi_port = serve_uvicorn(fapp)

    lapp = flask_app.make_app(f"http://127.0.0.1:{stub_flask.server_port}")
    FlaskInstrumentor().instrument_app(lapp)
    wz = make_server("127.0.0.1", 0, lapp, threaded=True)
    threading.Thread(target=wz.serve_forever, daemon=True).start()

    info = {
        "fastapi_port": fastapi_port,
        "flask_port": wz.server_port,
        "stub_fastapi_port": stub_fastapi.server_port,
        "stub_flask_port": stub_flask.server_port,
        "metrics_url": telemetry.metrics_url,
    }
    print(json.dumps(info), flush=True)
    sys.stdin.read()  # until the test closes our stdin
    uv.should_exit = True
    wz.shutdown()
    telemetry.shutdown()


if __name__ == "__main__":
    main()
