"""What the BottleneckSpanProcessor adds per span, measured against baselines in the same run.

    .venv/bin/python benchmarks/processor.py [--repeats R] [--quick]

Three views, best of R runs each, the cases run round-robin (so machine noise hits all alike):

1. hooks only: the span objects a real SDK TracerProvider passes to span processors,
   captured once and replayed through on_start/on_end; the processor's own cost per span,
   attribution included (one per trace).
2. through the SDK: traces of 10, 100 and 10 000 spans (a root and its children, each child
   ended before the next starts), and of 10 and 100 spans whose children all overlap, on a
   bare TracerProvider versus one with the processor; the difference divided by the spans is
   the amortised added cost per span.
3. measure(): configure()'s pipeline with the processor versus the same pipeline with the
   processor detached, for a single measured call (each one a root: the worst case) and a
   measured handler with 9 measured steps.

The goal is <= 2.5 us per span amortised (issue 12).  A benchmark, not a test: figures go to
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from prometheus_client import CollectorRegistry

import otelperf
from otelperf.derive import processor as P
from otelperf.derive import sampler as S


def once(run: Callable[[], None]) -> float:
    """Seconds one run takes."""
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def interleaved(runs: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds of every run, round-robin: each round runs every case once,
    so a slow spell of the machine hits all cases alike instead of one case's whole sample."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        gc.collect()
        for key, run in runs.items():
            best[key] = min(best[key], once(run))
    return best


def one_trace(tracer: trace.Tracer, spans: int, parallel: bool) -> None:
    """A root and its children: one after another (sequential), or all started before any
    ends (parallel: every child overlaps the others, so the critical-path walk runs)."""
    root = tracer.start_span("root")
    ctx = trace.set_span_in_context(root)
    if parallel:
        kids = [tracer.start_span(f"op{i % 8}", context=ctx) for i in range(1, spans)]
        for kid in kids:
            kid.end()
    else:
        for i in range(1, spans):
            tracer.start_span(f"op{i % 8}", context=ctx).end()
    root.end()


class _Capture(SpanProcessor):
    """Keeps the objects the SDK hands to span processors, to replay them."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.ended: list[ReadableSpan] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def sdk_trace_objects(
    spans: int, traces: int, parallel: bool
) -> list[tuple[list[Any], list[ReadableSpan]]]:
    """What the SDK passes to on_start and on_end for ``traces`` traces of ``spans`` spans."""
    tp = TracerProvider()
    cap = _Capture()
    tp.add_span_processor(cap)
    tracer = tp.get_tracer("bench")
    out = []
    for _ in range(traces):
        cap.started, cap.ended = [], []
        one_trace(tracer, spans, parallel)
        out.append((cap.started, cap.ended))
    tp.shutdown()
    return out


Runner = tuple[Callable[[], None], int]  # a run and the spans it makes


def hooks_runner(spans: int, total: int, parallel: bool) -> Runner:
    """on_start + on_end, attribution included, replayed on the SDK's own span objects."""
    p = P.BottleneckSpanProcessor(meter_provider=MeterProvider(), max_spans_per_trace=spans)
    traces = sdk_trace_objects(spans, max(1, min(50, total // spans)), parallel)
    rounds = max(1, total // (spans * len(traces)))

    def run() -> None:
        on_start, on_end = p.on_start, p.on_end
        for _ in range(rounds):
            for started, ended in traces:  # the SDK's order: ends as they happened
                for s in started:
                    on_start(s)
                for e in ended:
                    on_end(e)

    return run, rounds * len(traces) * spans


def sdk_runner(spans: int, total: int, parallel: bool, processor: bool) -> Runner:
    """Traces through a real TracerProvider, bare or with the processor."""
    tp = TracerProvider()
    if processor:
        tp.add_span_processor(
            P.BottleneckSpanProcessor(meter_provider=MeterProvider(), max_spans_per_trace=spans)
        )
    tracer = tp.get_tracer("bench")
    n_traces = max(1, total // spans)

    def run() -> None:
        for _ in range(n_traces):
            one_trace(tracer, spans, parallel)

    return run, n_traces * spans


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
            with_p = min(with_p, once(loop))
            S.detach(tp, proc, wrapper)
            without = min(without, once(loop))
            proc = P.BottleneckSpanProcessor(meter_provider=telemetry.meter_provider)
            wrapper = S.attach(tp, proc)
        out.append((name, without / (n * spans) * 1e9, with_p / (n * spans) * 1e9))
    telemetry._bottleneck = (proc, wrapper)
    telemetry.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    # Many short runs rather than a few long ones: on a shared VM the minimum of short runs
    # finds the quiet moments, where long runs all catch some noise.
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--spans", type=int, default=20_000, help="spans per run and case")
    ap.add_argument("--quick", action="store_true", help="10x fewer spans, 3 repeats")
    args = ap.parse_args()
    total, repeats = args.spans, args.repeats
    if args.quick:
        total, repeats = total // 10, 3

    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {total} spans per run, best of {repeats}")  # fmt: skip
    shapes = [(spans, False) for spans in (10, 100, 10_000)] + [(10, True), (100, True)]
    runners: dict[str, Runner] = {}
    for spans, parallel in shapes:
        key = f"{spans:>6} spans, {'parallel' if parallel else 'sequential'}"
        runners["hooks " + key] = hooks_runner(spans, total, parallel)
        runners["bare " + key] = sdk_runner(spans, total, parallel, processor=False)
        runners["with " + key] = sdk_runner(spans, total, parallel, processor=True)
    best = interleaved({k: run for k, (run, _) in runners.items()}, repeats)
    ns = {k: best[k] / runners[k][1] * 1e9 for k in runners}
    keys = [k.removeprefix("hooks ") for k in runners if k.startswith("hooks ")]

    print("\n## processor hooks only (on_start + on_end + attribution), ns per span")
    for key in keys:
        print(f"{key:<28} {ns['hooks ' + key]:8.0f}")

    print("\n## through the SDK: bare TracerProvider vs with the processor, ns per span")
    print(f"{'traces of':<28} {'bare':>8} {'with':>8} {'added':>8} {'ratio':>7}")
    for key in keys:
        b, w = ns["bare " + key], ns["with " + key]
        print(f"{key:<28} {b:8.0f} {w:8.0f} {w - b:8.0f} {w / b:6.2f}x")

    print("\n## measure() with and without the processor, ns per span")
    print(f"{'case':<40} {'without':>8} {'with':>8} {'added':>8} {'ratio':>7}")
    for name, b, s in measure_calls(max(1000, total // 20), repeats):
        print(f"{name:<40} {b:8.0f} {s:8.0f} {s - b:8.0f} {s / b:6.2f}x")


if __name__ == "__main__":
    main()
