"""The FastAPI app of ``fastapi_app`` plus a cached route, for the dashboards' query proof:
``python -m tests.apps.serve_panels``.

Everything otelperf shows comes from spans OpenTelemetry's instrumentations make (FastAPI,
httpx, requests), a GenAI-shaped client span and a cache lookup span made with the plain OTel
API: no ``measure()`` anywhere.  Two stub upstreams: ``stub`` behind the ``fastapi_app``
routes, ``prices`` behind ``/cached/{key}`` (called on a cache miss), so the API panels see
two host:port APIs besides the GenAI provider.

Prints one JSON line (ports, /metrics URL) once everything listens, then serves until its
stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor

import otelperf
from otelperf import _names as N
from tests.apps import fastapi_app
from tests.apps.serve import serve_uvicorn
from tests.apps.stub import start_stub

SERVICE = "panels-fastapi"
CACHE = "prices"
# The GenAI span of fastapi_app's /chat is openai gpt-4o; the price makes the cost panels show
# data (prices are the user's to set: otelperf ships none).
PRICE = {
    "input_per_million_usd": 2.5,
    "output_per_million_usd": 10.0,
    "cached_input_per_million_usd": 1.25,
    "reasoning_per_million_usd": 10.0,
}


def add_cached_route(app: FastAPI, prices_url: str) -> None:
    """``/cached/{key}``: a lookup span carrying otelperf's cache attributes (what a cache
    client instrumented by hand would make), and on a miss an httpx call to ``prices_url``."""
    tracer = trace.get_tracer("tests.apps.serve_panels")
    client = httpx.Client()
    cache: dict[str, int] = {}
    lock = threading.Lock()

    @app.get("/cached/{key}")
    def cached(key: str) -> dict[str, object]:
        with tracer.start_as_current_span(f"{CACHE} lookup") as span:
            with lock:
                hit = key in cache
            span.set_attributes({N.ATTR_CACHE_NAME: CACHE, N.ATTR_CACHE_HIT: hit})
        if not hit:
            code = client.get(f"{prices_url}/ok").status_code
            with lock:
                cache[key] = code
        return {"key": key, "hit": hit}


def main() -> None:
    telemetry = otelperf.configure(service_name=SERVICE, prometheus_port=0)
    otelperf.set_api_price("openai", "gpt-4o", **PRICE)
    HTTPXClientInstrumentor().instrument()
    RequestsInstrumentor().instrument()
    stub, prices = start_stub(), start_stub()

    app = fastapi_app.make_app(f"http://127.0.0.1:{stub.server_port}")
    add_cached_route(app, f"http://127.0.0.1:{prices.server_port}")
    FastAPIInstrumentor.instrument_app(app)
    uv, port = serve_uvicorn(app)
    info = {
        "port": port,
        "stub_port": stub.server_port,
        "prices_port": prices.server_port,
        "metrics_url": telemetry.metrics_url,
    }
    print(json.dumps(info), flush=True)
    sys.stdin.read()  # until the test closes our stdin
    uv.should_exit = True
    telemetry.shutdown()


if __name__ == "__main__":
    main()
