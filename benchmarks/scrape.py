"""A scrape of 1,000 operations: otelperf's duration histogram against prometheus_client's own.

    .venv/bin/python benchmarks/scrape.py [--operations N] [--repeats R]

Both sides hold the same series: N operations, each with a ``success`` series and, for every
tenth operation, an ``error`` series with one error type (1,100 series for N = 1,000), every
bucket non-empty and carrying an exemplar (the processor keeps one per bucket from sampled
spans; prometheus_client's observe() is given one).  otelperf's come from spans ended through a
real SDK TracerProvider with the BottleneckSpanProcessor (served by its Collector);
prometheus_client's from a ``Histogram`` with the same labels and buckets, observed the same
values, in a separate registry.  Each
registry is exposed with ``generate_latest`` (text format) and with the OpenMetrics
``generate_latest``, best of R, the cases alternating round by round.  For the text format, the
same values recorded into an OTel SDK histogram and exposed by the OTel Prometheus exporter
(how measure()'s histogram was served before issue 12) give the before figure.  A benchmark,
not a test.
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections.abc import Callable

import prometheus_client
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

import otelperf
from otelperf import _names as N

# One duration per bucket (seconds), so every bucket line carries a count.
DURATIONS = [b * 0.9 for b in N.DEFAULT_DURATION_BUCKETS] + [90.0]


def otelperf_registry(operations: int) -> tuple[CollectorRegistry, TracerProvider]:
    reg = CollectorRegistry()
    tp = TracerProvider()
    tp.add_span_processor(
        otelperf.BottleneckSpanProcessor(
            meter_provider=MeterProvider(), registry=reg, max_operations=operations + 10
        )
    )
    tracer = tp.get_tracer("bench")
    for i in range(operations):
        for d in DURATIONS:
            span = tracer.start_span(f"op{i}", start_time=0)
            span.end(end_time=int(d * 1e9))
        if i % 10 == 0:
            span = tracer.start_span(f"op{i}", start_time=0)
            span.set_attribute("error.type", "TimeoutError")
            span.set_status(Status(StatusCode.ERROR))
            span.end(end_time=int(0.01 * 1e9))
    return reg, tp


def otel_exporter_registry(operations: int) -> tuple[CollectorRegistry, MeterProvider]:
    """Before issue 12: measure()'s OTel histogram through the OTel Prometheus exporter."""
    reg = CollectorRegistry()
    mp = MeterProvider(metric_readers=[otelperf.prometheus_reader(reg)])
    d = N.OPERATION_DURATION
    h = mp.get_meter("bench").create_histogram(
        d.otel, unit=d.unit, description=d.help,
        explicit_bucket_boundaries_advisory=list(N.DEFAULT_DURATION_BUCKETS),
    )  # fmt: skip
    for i in range(operations):
        ok = {N.OPERATION: f"op{i}", N.OUTCOME: N.OUTCOME_SUCCESS}
        for dur in DURATIONS:
            h.record(dur, ok)
        if i % 10 == 0:
            h.record(0.01, {**ok, N.OUTCOME: N.OUTCOME_ERROR, N.ERROR_TYPE: "TimeoutError"})
    return reg, mp


def prometheus_registry(operations: int) -> CollectorRegistry:
    reg = CollectorRegistry()
    h = Histogram(
        N.OPERATION_DURATION.prom.removesuffix("_seconds"), N.OPERATION_DURATION.help,
        [N.ERROR_TYPE, N.OPERATION, N.OUTCOME], registry=reg, unit="seconds",
        buckets=N.DEFAULT_DURATION_BUCKETS,
    )  # fmt: skip
    # An exemplar per bucket, as the processor keeps from sampled spans.
    ex = {"trace_id": f"{2**127 + 12345:032x}", "span_id": f"{2**63 + 678:016x}"}
    for i in range(operations):
        child = h.labels("", f"op{i}", "success")
        for d in DURATIONS:
            child.observe(d, ex)
        if i % 10 == 0:
            h.labels("TimeoutError", f"op{i}", "error").observe(0.01, ex)
    return reg


def best(runs: dict[str, Callable[[], bytes]], repeats: int) -> dict[str, tuple[float, int]]:
    """Best-of-``repeats`` seconds per run (round-robin) and the size of what it produced."""
    out = {k: (float("inf"), 0) for k in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            gc.collect()
            t0 = time.perf_counter()
            body = run()
            dt = time.perf_counter() - t0
            out[key] = (min(out[key][0], dt), len(body))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--operations", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument(
        "--no-created", action="store_true",
        help="prometheus_client without its _created series (otelperf's family has none, as "
        "the OTel exporter's had none): the same bytes but for the exemplars' timestamps",
    )  # fmt: skip
    args = ap.parse_args()
    if args.no_created:
        prometheus_client.disable_created_metrics()
    ours, tp = otelperf_registry(args.operations)
    theirs = prometheus_registry(args.operations)
    before, mp = otel_exporter_registry(args.operations)
    runs: dict[str, Callable[[], bytes]] = {
        "text: otelperf": lambda: generate_latest(ours),
        "text: prometheus_client": lambda: generate_latest(theirs),
        "text: OTel exporter (before)": lambda: generate_latest(before),
        "openmetrics: otelperf": lambda: openmetrics.generate_latest(ours),
        "openmetrics: prometheus_client": lambda: openmetrics.generate_latest(theirs),
    }
    res = best(runs, args.repeats)
    tp.shutdown()
    mp.shutdown()
    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {args.operations} operations, "
          f"best of {args.repeats}")  # fmt: skip
    print(f"{'case':<34} {'ms':>8} {'bytes':>10} {'ratio':>7}")
    for fmt in ("text", "openmetrics"):
        base = res[f"{fmt}: prometheus_client"][0]
        for who in ("otelperf", "prometheus_client", "OTel exporter (before)"):
            if f"{fmt}: {who}" not in res:
                continue
            dt, size = res[f"{fmt}: {who}"]
            print(f"{fmt + ': ' + who:<34} {dt * 1e3:8.2f} {size:>10} {dt / base:6.2f}x")


if __name__ == "__main__":
    trace.get_tracer_provider()  # nothing global is set: every provider here is local
    main()
