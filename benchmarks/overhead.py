"""Per-call cost of measure() against its baselines, measured in one run on one machine.

    .venv/bin/python benchmarks/overhead.py [--calls N] [--repeats R]

Prints the best-of-R mean per call for: a bare call, prometheus_client's bound
Histogram.observe, a hand-written OTel pair (start_as_current_span + histogram.record) on a bare
SDK provider, and measure() as configure() sets it up (span, histogram, in-flight, and the
BottleneckSpanProcessor), as a decorator and as a context manager counting items, plus the
opt-in thread CPU tracking and measure()'s own path without the processor.  Ratios are
against the hand-written OTel pair.  A benchmark, not a test: figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections.abc import Callable

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Histogram

import otelperf
from otelperf import instrument


def best_ns_per_call(
    cases: list[tuple[str, Callable[[], object]]], calls: int, repeats: int
) -> list[tuple[str, float]]:
    """Best-of-``repeats`` mean per call, the cases interleaved round by round so that a
    change in machine load during the run hits every case alike."""
    best = [float("inf")] * len(cases)
    for _ in range(repeats):
        for i, (_, fn) in enumerate(cases):
            gc.collect()
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            best[i] = min(best[i], (time.perf_counter_ns() - t0) / calls)
    return [(name, ns) for (name, _), ns in zip(cases, best, strict=True)]


def hand_written_otel_pair() -> Callable[[], None]:
    """The baseline: what a user writes by hand on a bare SDK provider, span plus histogram."""
    tracer = TracerProvider().get_tracer("bench")
    mp = MeterProvider(metric_readers=[PrometheusMetricReader(registry=CollectorRegistry())])
    hist = mp.get_meter("bench").create_histogram("bench.duration", unit="s")
    attrs = {"operation": "op", "outcome": "success"}

    def otel_pair() -> None:
        t0 = time.perf_counter()
        with tracer.start_as_current_span("op"):
            pass
        hist.record(time.perf_counter() - t0, attrs)

    return otel_pair


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    def bare() -> None:
        pass

    prom = Histogram("bench_seconds", "x", ["operation"], registry=CollectorRegistry())
    bound = prom.labels("op")

    def prom_observe() -> None:
        bound.observe(0.001)

    otel_pair = hand_written_otel_pair()
    mp = MeterProvider(metric_readers=[PrometheusMetricReader(registry=CollectorRegistry())])

    telemetry = otelperf.configure(
        prometheus_port=0, registry=CollectorRegistry(), set_global=False
    )

    @otelperf.measure("op")
    def decorated() -> None:
        pass

    def context_manager() -> None:
        with otelperf.measure("op_cm") as op:
            op.add_items(1)

    pipeline = instrument._STATE.pipeline
    assert pipeline is not None

    def with_cpu() -> None:
        # track_cpu is read per call, so the opt-in CPU cost shows as a case of its own.
        pipeline.track_cpu = True
        decorated()
        pipeline.track_cpu = False

    # measure() on a provider without the BottleneckSpanProcessor: its share of the cost.
    bare_pipeline = instrument._Pipeline(TracerProvider().get_tracer("bench"), mp)
    bare_stats = bare_pipeline.stats("op")

    def without_processor() -> None:
        op = bare_pipeline.start(bare_stats, "op", True, False)
        bare_pipeline.finish(op, None)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("bare call", bare),
        ("prometheus_client Histogram.labels().observe", prom_observe),
        ("OTel start_as_current_span + histogram.record", otel_pair),
        ("@measure (span, histogram, in-flight, processor)", decorated),
        ("with measure() as op: op.add_items(1)", context_manager),
        ("@measure + track_cpu=True (opt-in)", with_cpu),
        ("measure() internals without the processor", without_processor),
    ]
    for _, fn in cases:  # warm up caches and first-seen set-up
        for _ in range(2000):
            fn()
    results = best_ns_per_call(cases, args.calls, args.repeats)
    telemetry.shutdown()

    base = results[2][1]
    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {args.calls} calls x best of {args.repeats}")  # fmt: skip
    print(f"{'case':<58} {'ns/call':>10} {'vs OTel pair':>13}")
    for name, ns in results:
        print(f"{name:<58} {ns:>10.0f} {ns / base:>12.2f}x")


if __name__ == "__main__":
    main()
