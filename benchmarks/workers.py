"""Pre-fork services: what a scrape costs with 1, 4 and 8 workers, and measure() in a worker.

    .venv/bin/python benchmarks/workers.py [--ops 200] [--repeats 20] [--calls 20000]

Scrape: W processes (this one serving, W-1 writers started as subprocesses) each run
``--ops`` operations through measure(); the figure is the best-of-R time of one GET /metrics
over a socket (merge of the live registry and W-1 snapshots).  Against it, prometheus_client's
multiprocess mode on the same operation series (duration histogram with the same buckets,
items and roots counters, critical-path and self-time counters): W processes write their
mmap files, and the figure is generate_latest() over a MultiProcessCollector (no HTTP, so
its figure is, if anything, flattered).  measure(): the best-of-R mean per call in this
process alone (single-process service) and inside a writer while its snapshot thread runs.
A benchmark, not a test: figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ops(n: int) -> None:
    import otelperf

    for i in range(n):
        with otelperf.measure("handle") as op:
            op.add_items(3)
            with otelperf.measure(f"step{i % 4}"):
                pass


def per_call_ns(calls: int, repeats: int) -> float:
    import otelperf

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            with otelperf.measure("bench"):
                pass
        best = min(best, (time.perf_counter_ns() - t0) / calls)
    return best


def child(mode: str, arg: str, ops: int, calls: int, repeats: int) -> None:
    """A worker: set up like the service, run the operations, report, wait for stdin EOF."""
    if mode == "otelperf":
        import otelperf

        otelperf.configure(service_name="bench", prometheus_port=int(arg))
        run_ops(ops)
        time.sleep(1.5)  # let the snapshot thread write the operations
        ns = per_call_ns(calls, repeats) if calls else 0.0
        print(f"ready {ns}", flush=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = arg
        from prometheus_client import Counter, Histogram

        from otelperf import _names as N

        name = N.OPERATION_DURATION.prom.removesuffix("_seconds")
        buckets = N.DEFAULT_DURATION_BUCKETS
        dur = Histogram(name, "d", ["operation", "outcome"], unit="seconds", buckets=buckets)
        items = Counter(N.OPERATION_ITEMS.prom, "i", ["operation"])
        roots = Counter(N.ROOTS.prom, "r", ["root_operation"])
        crit = Counter(N.CRITICAL_PATH.prom, "c", ["root_operation", "operation"])
        self_t = Counter(N.SELF_TIME.prom, "s", ["root_operation", "operation"])
        for i in range(ops):
            for op in ("handle", f"step{i % 4}"):
                dur.labels(op, "success").observe(0.001)
                crit.labels("handle", op).inc(0.001)
                self_t.labels("handle", op).inc(0.001)
            items.labels("handle").inc(3)
            roots.labels("handle").inc()
        print("ready 0", flush=True)
    sys.stdin.read()


def spawn(mode: str, arg: str, ops: int, calls: int = 0, repeats: int = 1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE), "--child", mode, arg, "--ops", str(ops),
         "--calls", str(calls), "--repeats", str(repeats)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def ready(procs: list[subprocess.Popen[str]]) -> list[float]:
    out = []
    for p in procs:
        assert p.stdout is not None
        out.append(float(p.stdout.readline().split()[1]))
    return out


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        assert p.stdin is not None
        p.stdin.close()
        p.wait()


def best_of(fn: object, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def bench_otelperf(workers: int, ops: int, repeats: int) -> tuple[float, int]:
    import otelperf

    port = free_port()
    t = otelperf.configure(service_name="bench", prometheus_port=port)
    try:
        run_ops(ops)
        kids = [spawn("otelperf", str(port), ops) for _ in range(workers - 1)]
        ready(kids)
        url = t.metrics_url
        assert url is not None

        def scrape() -> bytes:
            with urllib.request.urlopen(url, timeout=30) as r:
                return bytes(r.read())

        size = len(scrape())
        seconds = best_of(scrape, repeats)
        stop(kids)
        return seconds, size
    finally:
        t.shutdown()


def bench_multiprocess(workers: int, ops: int, repeats: int) -> tuple[float, int]:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    with tempfile.TemporaryDirectory() as d:
        kids = [spawn("prom", d, ops) for _ in range(workers)]
        ready(kids)
        reg = CollectorRegistry()
        MultiProcessCollector(reg, path=d)
        size = len(generate_latest(reg))
        seconds = best_of(lambda: generate_latest(reg), repeats)
        stop(kids)
        return seconds, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--ops", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--calls", type=int, default=20000)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], a.child[1], a.ops, a.calls, a.repeats)
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {a.ops} operations "
          f"per worker, best of {a.repeats}")  # fmt: skip
    print(f"{'workers':>7} {'otelperf scrape':>16} {'bytes':>7} {'mp scrape':>10} {'bytes':>7}")
    for w in (1, 4, 8):
        o, osz = bench_otelperf(w, a.ops, a.repeats)
        m, msz = bench_multiprocess(w, a.ops, a.repeats)
        print(f"{w:>7} {o * 1e3:>13.2f} ms {osz:>7} {m * 1e3:>7.2f} ms {msz:>7}")

    import otelperf

    # measure() per call: this process alone, then a writer of a 2-process service
    port = free_port()
    t = otelperf.configure(service_name="bench", prometheus_port=port)
    try:
        alone = per_call_ns(a.calls, a.repeats)
        kid = spawn("otelperf", str(port), a.ops, a.calls, a.repeats)
        in_worker = ready([kid])[0]
        again = per_call_ns(a.calls, a.repeats)
        stop([kid])
    finally:
        t.shutdown()
    print(
        f"measure() per call: single process {alone:.0f} ns (again {again:.0f} ns), "
        f"inside a worker {in_worker:.0f} ns (ratio {in_worker / min(alone, again):.2f})"
    )


if __name__ == "__main__":
    main()
