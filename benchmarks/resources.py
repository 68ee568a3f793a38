"""What resource monitoring costs: per measured call (thread CPU, track_memory) and per scrape.

    .venv/bin/python benchmarks/resources.py [--calls N] [--scrapes S] [--repeats R]

1. Clock and RSS reads alone: time.thread_time_ns() (two per sync operation when CPU tracking
   is on), perf_counter_ns() for comparison, and resources.current_rss() (two per operation
   with track_memory=True).
2. measure() per call, alternating in one process: CPU tracking on (the default) and off, and
   track_memory=True; ratios against a hand-written OTel pair (start_as_current_span +
   histogram.record), the foundation's yardstick (<= 1.0x).
3. Per scrape: generate_latest() of a registry whose provider has only the ResourceMonitor,
   against the same without it; then each probe alone; then a configure()d instance with 50
   operations, with and without resource metrics.

A benchmark, not a test: figures go to BENCHMARKS.md and docs/metrics.md.
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections.abc import Callable

import psutil
from opentelemetry.sdk.metrics import MeterProvider
from overhead import hand_written_otel_pair  # benchmarks/ is on sys.path when run
from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector, generate_latest

import otelperf
from otelperf.expose import probes as resources
from otelperf.expose.probes import CpuSampler, Probes
from otelperf.expose.resources import ResourceMonitor
from otelperf.expose.server import prometheus_reader


def best_ns(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """Best-of-``repeats`` mean nanoseconds per call of ``fn``."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / calls)
    return best


def best_ns_alternating(
    cases: dict[str, tuple[Callable[[], None], Callable[[], object]]], calls: int, repeats: int
) -> dict[str, float]:
    """Like best_ns for several cases, interleaved so machine noise hits all alike.

    Each case is (set-up run before its round, the call measured).
    """
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for name, (setup, fn) in cases.items():
            setup()
            gc.collect()
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.perf_counter_ns() - t0) / calls)
    return best


def per_call(calls: int, repeats: int) -> None:
    print("1. reads per call (ns)")
    reads: dict[str, float] = {}
    for name, fn in (
        ("time.perf_counter_ns()", time.perf_counter_ns),
        ("time.thread_time_ns()", time.thread_time_ns),
        ("resources.current_rss()", resources.current_rss),
    ):
        n = calls if fn is not resources.current_rss else max(1, calls // 10)
        reads[name] = best_ns(fn, n, repeats)
        print(f"   {name:<28} {reads[name]:8.0f}")

    otel_pair = hand_written_otel_pair()  # the same baseline as overhead.py

    telemetry = otelperf.configure(
        prometheus_port=0, registry=CollectorRegistry(), set_global=False
    )
    pipeline = telemetry._pipeline

    @otelperf.measure("op")
    def plain() -> None:
        pass

    @otelperf.measure("op_mem", track_memory=True)
    def with_memory() -> None:
        pass

    def cpu(on: bool) -> Callable[[], None]:
        def setup() -> None:
            pipeline.track_cpu = on  # read per call, so toggling it switches the next round

        return setup

    def nothing() -> None:
        pass

    try:
        res = best_ns_alternating(
            {
                "hand-written OTel pair": (nothing, otel_pair),
                "measure(), CPU tracking on": (cpu(True), plain),
                "measure(), CPU tracking off": (cpu(False), plain),
                "measure(track_memory=True)": (cpu(True), with_memory),
            },
            calls,
            repeats,
        )
    finally:
        pipeline.track_cpu = True
        telemetry.shutdown()
    base = res["hand-written OTel pair"]
    print("\n2. per measured call (ns, ratio to the hand-written OTel pair)")
    for name, ns in res.items():
        print(f"   {name:<28} {ns:8.0f}  {ns / base:5.2f}x")
    on, off = res["measure(), CPU tracking on"], res["measure(), CPU tracking off"]
    print(f"   CPU tracking adds {on - off:.0f} ns per call ({(on - off) / base:.1%} of the pair) "
          f"measured, {2 * reads['time.thread_time_ns()']:.0f} ns from its two clock reads "
          f"({2 * reads['time.thread_time_ns()'] / base:.1%});")  # fmt: skip
    mem = res["measure(track_memory=True)"]
    print(f"   track_memory adds {mem - on:.0f} ns per call")


def per_scrape(scrapes: int, repeats: int) -> None:
    def registry(with_monitor: bool) -> tuple[CollectorRegistry, ResourceMonitor | None]:
        reg = CollectorRegistry()
        mp = MeterProvider(metric_readers=[prometheus_reader(reg)])
        return reg, ResourceMonitor(mp, reg) if with_monitor else None

    bare, _ = registry(False)
    full, monitor = registry(True)
    res = best_ns_alternating(
        {
            "empty provider": (lambda: None, lambda: generate_latest(bare)),
            "with ResourceMonitor": (lambda: None, lambda: generate_latest(full)),
        },
        scrapes,
        repeats,
    )
    print("\n3. per scrape (us)")
    for name, ns in res.items():
        print(f"   {name:<40} {ns / 1000:8.1f}")
    added = res["with ResourceMonitor"] - res["empty provider"]
    print(f"   resource collection adds {added / 1000:.1f} us per scrape")
    assert monitor is not None
    monitor.close()

    probes = Probes()
    sampler = CpuSampler()
    proc = ProcessCollector(registry=None)
    gcc = GCCollector(registry=CollectorRegistry())
    print("   each probe alone:")
    for name, fn in (
        ("host CPU (psutil.cpu_times)", sampler.read),
        ("host memory (psutil.virtual_memory)", lambda: resources.memory_utilization()),
        ("filesystems (partitions + statvfs)", lambda: resources.filesystems(probes, print)),
        ("thread count (psutil)", probes.num_threads),
        ("ProcessCollector.collect", lambda: list(proc.collect())),
        ("GCCollector.collect", lambda: list(gcc.collect())),
    ):
        print(f"     {name:<38} {best_ns(fn, scrapes, repeats) / 1000:8.1f}")

    # A realistic instance: 50 operations with a few calls each, then resource metrics off.
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False)
    try:
        for i in range(50):
            with otelperf.measure(f"op{i}") as op:
                op.add_items(1)
        with_res = best_ns(lambda: generate_latest(t.registry), scrapes, repeats)
        assert t._resources is not None
        t._resources.close()
        without = best_ns(lambda: generate_latest(t.registry), scrapes, repeats)
    finally:
        t.shutdown()
    print(f"   configure()d instance, 50 operations: {with_res / 1000:.1f} us per scrape with "
          f"resource metrics, {without / 1000:.1f} us without "
          f"(+{(with_res - without) / without:.0%})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{psutil.cpu_count()} CPUs, psutil {psutil.__version__}\n")  # fmt: skip
    per_call(args.calls, args.repeats)
    per_scrape(args.scrapes, args.repeats)


if __name__ == "__main__":
    main()
