"""A FastAPI app as a pre-fork service runs it: configure() at import, measure() per request.

Started by tests/test_workers.py under gunicorn (uvicorn worker class) and ``uvicorn --workers``;
the port comes from OTEL_EXPORTER_PROMETHEUS_PORT like any deployment's.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

import otelperf

if os.environ.get("WORKERS_APP_CONFIGURE", "1") == "1":
    otelperf.configure(service_name="workers-fastapi")

app = FastAPI()


@app.get("/work")
def work() -> dict[str, int]:
    with otelperf.measure("handle") as op:
        op.add_items(3)
    return {"pid": os.getpid()}
