"""Per-operation CPU and memory: real busy loops, real sleeps, real allocations, real scrapes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import _names as N
from otelperf import measure
from tests.scrape import matching, scrape, value

CPU = N.OPERATION_CPU.prom
DUR = N.OPERATION_DURATION.prom
MEM = N.OPERATION_MEMORY_DELTA.prom
MiB = 2**20


def spin(seconds: float) -> None:
    """Burn ``seconds`` of this thread's CPU (not wall time: other processes share the host)."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1


def cpu_of(url: str, operation: str) -> float | None:
    return value(scrape(url), CPU, operation=operation)


def wall_of(url: str, operation: str) -> float:
    v = value(scrape(url), DUR + "_sum", operation=operation, outcome="success")
    assert v is not None
    return v


def test_busy_operation_cpu_matches_thread_cpu_and_wall(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url
    outer0 = time.thread_time()
    with measure("busy"):
        spin(0.25)
    outer = time.thread_time() - outer0
    cpu = cpu_of(url, "busy")
    wall = wall_of(url, "busy")
    assert cpu is not None
    # The operation's CPU is this thread's CPU over the block, less the bookkeeping outside it.
    assert outer - 0.002 <= cpu <= outer
    assert cpu >= 0.25
    # A single thread cannot burn more CPU than wall time; on a loaded host it gets less.
    assert cpu <= wall + 0.001


def test_sleeping_operation_has_almost_no_cpu(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url
    with measure("sleepy"):
        time.sleep(0.2)
    cpu = cpu_of(url, "sleepy")
    assert cpu is not None and cpu < 0.005
    assert wall_of(url, "sleepy") >= 0.2
    # The CPU-bound / waiting split the report and dashboards use: cpu / wall.
    assert cpu / wall_of(url, "sleepy") < 0.025


def test_cpu_of_other_threads_is_not_attributed(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url
    burner = threading.Thread(target=spin, args=(0.3,))
    with measure("waits_while_others_burn"):
        burner.start()
        burner.join()
    cpu = cpu_of(url, "waits_while_others_burn")
    assert cpu is not None and cpu < 0.005


def test_nested_operations_each_count_their_own_span(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url
    with measure("outer"):
        spin(0.05)
        with measure("inner"):
            spin(0.1)
    inner, outer = cpu_of(url, "inner"), cpu_of(url, "outer")
    assert inner is not None and outer is not None
    assert inner >= 0.1
    assert outer >= inner + 0.05  # outer includes inner (inclusive, like its duration)


def test_decorated_function_and_repeated_calls_accumulate(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url

    @measure("work")
    def work() -> None:
        spin(0.02)

    total0 = time.thread_time()
    for _ in range(5):
        work()
    total = time.thread_time() - total0
    cpu = cpu_of(url, "work")
    assert cpu is not None and total - 0.005 <= cpu <= total


def test_async_operations_report_no_cpu(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url

    @measure("async_decorated")
    async def decorated() -> None:
        spin(0.02)
        await asyncio.sleep(0)

    async def main() -> None:
        async with measure("async_block"):
            spin(0.02)
            await asyncio.sleep(0)
        await decorated()

    asyncio.run(main())
    samples = scrape(url)
    for op in ("async_block", "async_decorated"):
        assert value(samples, DUR + "_count", operation=op, outcome="success") == 1
        assert matching(samples, CPU, operation=op) == {}, op


def test_generator_cpu_counts_only_its_own_steps(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url

    @measure("lazy_rows")
    def rows() -> Iterator[int]:
        for i in range(3):
            spin(0.01)
            yield i

    for _ in rows():
        spin(0.05)  # the consumer's CPU, between items: not the generator's
    cpu = cpu_of(url, "lazy_rows")
    assert cpu is not None and 0.03 <= cpu <= 0.04
    assert wall_of(url, "lazy_rows") >= 0.15  # wall time includes the consumer's


def test_track_cpu_off_reports_no_cpu() -> None:
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           track_cpu=False)  # fmt: skip
    try:
        with measure("busy_untracked"):
            spin(0.01)
        samples = scrape(t.metrics_url)
        assert value(samples, DUR + "_count", operation="busy_untracked", outcome="success") == 1
        assert matching(samples, CPU) == {}
    finally:
        t.shutdown()


# -- track_memory ---------------------------------------------------------------------------------


def _buckets(url: str, operation: str) -> dict[str, float]:
    return {dict(k[1])["le"]: v for k, v in matching(scrape(url), MEM + "_bucket",
                                                       operation=operation).items()}  # fmt: skip


def test_track_memory_records_growth(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url
    kept = []
    with measure("grow", track_memory=True):
        kept.append(bytearray(b"\x01") * (64 * MiB))  # written, so resident
    samples = scrape(url)
    assert value(samples, MEM + "_count", operation="grow") == 1
    total = value(samples, MEM + "_sum", operation="grow")
    assert total is not None and 60 * MiB <= total <= 80 * MiB
    b = _buckets(url, "grow")
    assert b == {"0.0": 0, "4096.0": 0, "65536.0": 0, "1048576.0": 0, "16777216.0": 0,
                 "134217728.0": 1, "1073741824.0": 1, "+Inf": 1}  # fmt: skip
    kept.clear()


def test_track_memory_records_release_as_zero(
    telemetry: otelperf.Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    url = telemetry.metrics_url
    big = bytearray(b"\x01") * (64 * MiB)
    with measure("release", track_memory=True):
        del big  # a 64 MiB block is its own mapping: freeing it returns it to the OS
    samples = scrape(url)
    # OTel histograms refuse negative values; a release is recorded as no growth, not dropped.
    assert value(samples, MEM + "_count", operation="release") == 1
    assert value(samples, MEM + "_sum", operation="release") == 0
    assert _buckets(url, "release")["0.0"] == 1
    assert "non-negative" not in caplog.text


def test_without_track_memory_no_memory_series(telemetry: otelperf.Telemetry) -> None:
    with measure("no_memory"):
        pass

    @measure("no_memory_fn")
    def f() -> None:
        pass

    f()
    assert matching(scrape(telemetry.metrics_url), MEM + "_count") == {}


@pytest.mark.parametrize("kind", ["decorator", "async"])
def test_track_memory_on_decorators(telemetry: otelperf.Telemetry, kind: str) -> None:
    name = f"mem_{kind}"
    if kind == "decorator":

        @measure(name, track_memory=True)
        def f() -> int:
            return 1

        f()
        f()
    else:

        @measure(name, track_memory=True)
        async def g() -> int:
            return 1

        asyncio.run(g())
        asyncio.run(g())
    assert value(scrape(telemetry.metrics_url), MEM + "_count", operation=name) == 2
