"""What the BottleneckSpanProcessor adds per span, measured against baselines in the same run.

    .venv/bin/python benchmarks/processor.py [--repeats R] [--quick]

Three views, best of R runs each (baseline and subject alternate, so machine noise hits both):

1. hooks only: real SDK ReadableSpans, built once, replayed through on_start/on_end; the
   processor's own cost per span, attribution included (one per trace).
2. through the SDK: traces of 10, 100 and 10 000 spans (a root and its children, each child
   ended before the next starts) on a bare TracerProvider versus one with the processor; the
   difference divided by the spans is the amortised added cost per span.
3. measure(): configure()'s pipeline with the processor versus the same pipeline with the
   processor detached, for a single measured call (each one a root: the worst case) and a
   measured handler with 9 measured steps.

The goal is <= 2 us per span amortised.  A benchmark, not a test: figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanContext
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import processor as P


def best_pair(
    base: Callable[[], None], subject: Callable[[], None], repeats: int
) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of each, alternating so drift and noise hit both alike."""
    b = s = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        base()
        t1 = time.perf_counter()
        subject()
        t2 = time.perf_counter()
        b, s = min(b, t1 - t0), min(s, t2 - t1)
    return b, s


def readable_trace(trace_id: int, spans: int) -> list[ReadableSpan]:
    res = Resource.create({})
    root_ctx = SpanContext(trace_id, 1, False)
    out = [ReadableSpan("root", root_ctx, None, res, start_time=0, end_time=spans * 10)]
    for i in range(1, spans):
        ctx = SpanContext(trace_id, i + 1, False)
        out.append(ReadableSpan(f"op{i % 8}", ctx, root_ctx, res, start_time=i * 10,
                                end_time=i * 10 + 5))  # fmt: skip
    return out


def hooks_only(spans: int, total: int, repeats: int) -> float:
    """ns per span of on_start + on_end, attribution included."""
    p = P.BottleneckSpanProcessor(meter_provider=MeterProvider(), max_spans_per_trace=spans)
    traces = [readable_trace(t + 1, spans) for t in range(max(1, min(50, total // spans)))]
    rounds = max(1, total // (spans * len(traces)))

    def run() -> None:
        on_start, on_end = p.on_start, p.on_end
        for _ in range(rounds):
            for tr in traces:
                for s in tr:
                    on_start(s)  # type: ignore[arg-type]
                for s in tr[1:]:
                    on_end(s)
                on_end(tr[0])

    def nothing() -> None:
        pass

    _, s = best_pair(nothing, run, repeats)
    p.shutdown()
    return s / (rounds * len(traces) * spans) * 1e9


def sdk_traces(spans: int, total: int, repeats: int) -> tuple[float, float]:
    """ns per span on a bare TracerProvider and on one with the processor."""
    bare = TracerProvider()
    withp = TracerProvider()
    withp.add_span_processor(
        P.BottleneckSpanProcessor(meter_provider=MeterProvider(), max_spans_per_trace=spans)
    )
    n_traces = max(1, total // spans)

    def make(tp: TracerProvider) -> Callable[[], None]:
        tracer = tp.get_tracer("bench")

        def run() -> None:
            for _ in range(n_traces):
                root = tracer.start_span("root")
                ctx = trace.set_span_in_context(root)
                for i in range(1, spans):
                    tracer.start_span(f"op{i % 8}", context=ctx).end()
                root.end()

        return run

    b, s = best_pair(make(bare), make(withp), repeats)
    bare.shutdown()
    withp.shutdown()
    n = n_traces * spans
    return b / n * 1e9, s / n * 1e9


def measure_calls(calls: int, repeats: int) -> list[tuple[str, float, float]]:
    telemetry = otelperf.configure(
        prometheus_port=0, registry=CollectorRegistry(), set_global=False, start_server=False
    )
    proc, wrapper = telemetry._bottleneck
    tp = telemetry.tracer_provider

    @otelperf.measure("single")
    def single() -> None:
        pass

    @otelperf.measure("step")
    def step() -> None:
        pass

    @otelperf.measure("handler")
    def handler() -> None:
        for _ in range(9):
            step()

    out = []
    for name, fn, n, spans in (
        ("@measure single call (1 span, 1 root)", single, calls, 1),
        ("@measure handler + 9 steps (10 spans)", handler, calls // 10, 10),
    ):

        def loop(fn: Callable[[], None] = fn, n: int = n) -> None:
            for _ in range(n):
                fn()

        loop()  # warm up
        with_p = without = float("inf")
        for _ in range(3 * repeats):  # short alternating runs: the minimum is stable
            # alternate: attach for one run, detach for the next
            _, s = best_pair(lambda: None, loop, 1)
            with_p = min(with_p, s)
            P.detach(tp, proc, wrapper)
            _, b = best_pair(lambda: None, loop, 1)
            without = min(without, b)
            proc = P.BottleneckSpanProcessor(meter_provider=telemetry.meter_provider)
            wrapper = P.attach(tp, proc)
        out.append((name, without / (n * spans) * 1e9, with_p / (n * spans) * 1e9))
    telemetry._bottleneck = (proc, wrapper)
    telemetry.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--spans", type=int, default=100_000, help="spans per run and case")
    ap.add_argument("--quick", action="store_true", help="10x fewer spans, 3 repeats")
    args = ap.parse_args()
    total, repeats = args.spans, args.repeats
    if args.quick:
        total, repeats = total // 10, 3

    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {total} spans per run, best of {repeats}")  # fmt: skip
    print("\n## processor hooks only (on_start + on_end + attribution), ns per span")
    for spans in (10, 100, 10_000):
        print(f"traces of {spans:>6} spans: {hooks_only(spans, total, repeats):8.0f}")

    print("\n## through the SDK: bare TracerProvider vs with the processor, ns per span")
    print(f"{'trace size':<22} {'bare':>8} {'with':>8} {'added':>8} {'ratio':>7}")
    for spans in (10, 100, 10_000):
        b, s = sdk_traces(spans, total, repeats)
        print(f"traces of {spans:>6} spans  {b:8.0f} {s:8.0f} {s - b:8.0f} {s / b:6.2f}x")

    print("\n## measure() with and without the processor, ns per span")
    print(f"{'case':<40} {'without':>8} {'with':>8} {'added':>8} {'ratio':>7}")
    for name, b, s in measure_calls(max(1000, total // 20), repeats):
        print(f"{name:<40} {b:8.0f} {s:8.0f} {s - b:8.0f} {s / b:6.2f}x")


if __name__ == "__main__":
    main()
