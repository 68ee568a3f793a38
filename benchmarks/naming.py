"""What SpanNamer.classify() costs per span, for the span shapes auto-instrumented services make.

    .venv/bin/python benchmarks/naming.py [--repeats R] [--number N]

Each case calls classify() N times with the name, kind and attribute dict a real SDK span
carries (the processor passes the span's own attribute dict), best of R runs; the figure
includes the Python call itself.  The cases run round-robin so machine noise hits all alike.
A benchmark, not a test: figures go to docs/processor.md ("Operation names", Cost).
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

from opentelemetry.trace import SpanKind

from otelperf.derive.naming import SpanNamer

URL = "http://127.0.0.1:8123/items/7"
CASES: dict[str, tuple[str, SpanKind, dict[str, Any] | None, bool]] = {
    "INTERNAL, no attributes": ("load_user", SpanKind.INTERNAL, None, False),
    "ASGI http send (noise)": (
        "GET /items/{item_id} http send", SpanKind.INTERNAL,
        {"asgi.event.type": "http.response.start", "http.status_code": 200}, False,
    ),
    "SERVER (FastAPI, stable)": (
        "GET /items/{item_id}", SpanKind.SERVER,
        {"http.request.method": "GET", "http.route": "/items/{item_id}", "url.path": "/items/7",
         "url.scheme": "http", "http.response.status_code": 200}, False,
    ),
    "HTTP CLIENT, stable": (
        "GET", SpanKind.CLIENT,
        {"http.request.method": "GET", "url.full": URL, "server.address": "127.0.0.1",
         "server.port": 8123, "http.response.status_code": 200}, False,
    ),
    "HTTP CLIENT, old (URL)": (
        "GET", SpanKind.CLIENT,
        {"http.method": "GET", "http.url": URL, "http.status_code": 200}, False,
    ),
    "HTTP CLIENT 404, stable": (
        "GET", SpanKind.CLIENT,
        {"http.request.method": "GET", "url.full": URL, "server.address": "127.0.0.1",
         "server.port": 8123, "http.response.status_code": 404, "error.type": "404"}, True,
    ),
    "database CLIENT": (
        "SELECT", SpanKind.CLIENT,
        {"db.system": "postgresql", "db.operation": "SELECT", "db.sql.table": "orders"}, False,
    ),
    "GenAI CLIENT": (
        "chat gpt-4o", SpanKind.CLIENT,
        {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}, False,
    ),
}  # fmt: skip


def run(namer: SpanNamer, case: tuple[str, SpanKind, dict[str, Any] | None, bool], n: int) -> float:
    classify = namer.classify
    name, kind, attrs, error = case
    t0 = time.perf_counter_ns()
    for _ in range(n):
        classify(name, kind, attrs, error)
    return (time.perf_counter_ns() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--number", type=int, default=200_000)
    args = ap.parse_args()
    namer = SpanNamer()
    best = dict.fromkeys(CASES, float("inf"))
    for _ in range(args.repeats):
        for label, case in CASES.items():
            best[label] = min(best[label], run(namer, case, args.number))
    print(f"SpanNamer.classify, Python {platform.python_version()}, best of {args.repeats}")
    for label, ns in best.items():
        print(f"  {label:28s} {ns:6.0f} ns")


if __name__ == "__main__":
    main()
