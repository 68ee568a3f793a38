"""A Flask (WSGI) app as a pre-fork service runs it: configure() at import, measure() per request.

Started by tests/test_workers.py under gunicorn's sync and gthread workers, with and without
--preload; the port comes from OTEL_EXPORTER_PROMETHEUS_PORT.
"""

from __future__ import annotations

import os

from flask import Flask

import otelperf

if os.environ.get("WORKERS_APP_CONFIGURE", "1") == "1":
    otelperf.configure(service_name="workers-flask")

app = Flask(__name__)

# Work done at import: under --preload that is the master, before it forks.  Its children
# inherit these counts and must not report them again.
for _ in range(int(os.environ.get("WORKERS_APP_WARMUP", "0"))):
    with otelperf.measure("handle") as op:
        op.add_items(3)


@app.get("/work")
def work() -> dict[str, int]:
    with otelperf.measure("handle") as op:
        op.add_items(3)
    return {"pid": os.getpid()}
