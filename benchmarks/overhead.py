"""Per-call cost of measure() against its baselines, measured in one run on one machine.

    .venv/bin/python benchmarks/overhead.py [--calls N] [--repeats R]

Prints the best-of-R mean per call for: a bare call, prometheus_client's bound
Histogram.observe, a hand-written OTel pair (start_as_current_span + histogram.record) on a bare
SDK provider, measure() on the same bare providers (decorator, with the opt-in thread CPU, and
context manager counting items), and measure() as configure() sets it up, which adds the
BottleneckSpanProcessor to every span (it records the duration histogram, so measure() records
none of its own there).  Ratios are against the hand-written OTel pair.  A benchmark, not a
test: figures go to BENCHMARKS.md.
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
from otelperf.emit import pipeline as instrument

Case = tuple[str, Callable[[], object], Callable[[], None]]


def best_ns_per_call(cases: list[Case], calls: int, repeats: int) -> list[tuple[str, float]]:
    """Best-of-``repeats`` mean per call, the cases interleaved round by round so that a
    change in machine load during the run hits every case alike.  Each case's set-up runs
    before its timed loop (it selects the pipeline measure() records into)."""
    best = [float("inf")] * len(cases)
    for _ in range(repeats):
        for i, (_, fn, setup) in enumerate(cases):
            setup()
            for _ in range(200):  # re-bind and warm after the switch, untimed
                fn()
            gc.collect()
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            best[i] = min(best[i], (time.perf_counter_ns() - t0) / calls)
    return [(name, ns) for (name, _, _), ns in zip(cases, best, strict=True)]


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

    def bare_call() -> None:
        pass

    prom = Histogram("bench_seconds", "x", ["operation"], registry=CollectorRegistry())
    bound = prom.labels("op")

    def prom_observe() -> None:
        bound.observe(0.001)

    otel_pair = hand_written_otel_pair()

    telemetry = otelperf.configure(
        prometheus_port=0, registry=CollectorRegistry(), set_global=False
    )
    configured = instrument.STATE.pipeline
    assert configured is not None
    # The like-for-like comparison: measure() on the same kind of bare SDK providers as the
    # hand-written pair (no BottleneckSpanProcessor; its cost is measured on its own below
    # and in benchmarks/processor.py).
    bare_mp = MeterProvider(metric_readers=[PrometheusMetricReader(registry=CollectorRegistry())])
    # No processor on this provider: measure() records its own OTel histogram, as the pair does.
    bare = instrument.Pipeline(TracerProvider().get_tracer("bench"), bare_mp, record_duration=True)

    def use(pipeline: instrument.Pipeline, cpu: bool) -> Callable[[], None]:
        def setup() -> None:
            pipeline.track_cpu = cpu
            instrument.install(pipeline)

        return setup

    @otelperf.measure("op")
    def decorated() -> None:
        pass

    def context_manager() -> None:
        with otelperf.measure("op_cm") as op:
            op.add_items(1)

    def nothing() -> None:
        pass

    cases: list[Case] = [
        ("bare call", bare_call, nothing),
        ("prometheus_client Histogram.labels().observe", prom_observe, nothing),
        ("OTel start_as_current_span + histogram.record", otel_pair, nothing),
        ("@measure, bare SDK providers", decorated, use(bare, False)),
        ("@measure + track_cpu=True, bare SDK providers", decorated, use(bare, True)),
        ("with measure() as op: add_items(1), bare SDK providers", context_manager,
         use(bare, False)),
        ("@measure as configure() sets it up (+ processor)", decorated, use(configured, False)),
        ("with measure() ..., as configure() sets it up", context_manager, use(configured, False)),
    ]  # fmt: skip
    results = best_ns_per_call(cases, args.calls, args.repeats)
    instrument.install(configured)
    telemetry.shutdown()

    base = results[2][1]
    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {args.calls} calls x best of {args.repeats}")  # fmt: skip
    print(f"{'case':<58} {'ns/call':>10} {'vs OTel pair':>13}")
    for name, ns in results:
        print(f"{name:<58} {ns:>10.0f} {ns / base:>12.2f}x")


if __name__ == "__main__":
    main()
