"""BottleneckSpanProcessor on real SDK providers: exact metric values read back from Prometheus."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import _names as N
from otelperf.derive.processor import BottleneckSpanProcessor
from otelperf.derive.sampler import RecordEverythingSampler
from otelperf.derive.totals import PAIRS_PER_OPERATION
from tests.scrape import read_registry, scrape

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


read = read_registry


def get(samples: Samples, metric: N.Metric, **labels: str) -> float | None:
    return samples.get((metric.series[0], frozenset(labels.items())))


def family(samples: Samples, metric: N.Metric) -> dict[frozenset[tuple[str, str]], float]:
    return {k[1]: v for k, v in samples.items() if k[0] == metric.series[0]}


class Rig:
    """A processor on a fresh TracerProvider and MeterProvider exposing to a fresh registry."""

    def __init__(self, **kwargs: Any) -> None:
        self.registry = CollectorRegistry()
        self.mp = MeterProvider(metric_readers=[otelperf.prometheus_reader(self.registry)])
        self.tp = TracerProvider()
        kwargs.setdefault("registry", self.registry)
        self.processor = BottleneckSpanProcessor(meter_provider=self.mp, **kwargs)
        self.tp.add_span_processor(self.processor)
        self.tracer = self.tp.get_tracer("test")

    def read(self) -> Samples:
        return read(self.registry)

    def close(self) -> None:
        self.tp.shutdown()
        self.mp.shutdown()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()


def fan_out(tracer: trace.Tracer, offset: int = 0, root_name: str = "root") -> None:
    """The issue's case: children [10,30] and [20,50] under [0,100]."""
    root = tracer.start_span(root_name, start_time=offset)
    ctx = trace.set_span_in_context(root)
    tracer.start_span("A", context=ctx, start_time=offset + 10).end(end_time=offset + 30)
    tracer.start_span("B", context=ctx, start_time=offset + 20).end(end_time=offset + 50)
    root.end(end_time=offset + 100)


def assert_fan_out(samples: Samples, n: int = 1, root: str = "root") -> None:
    cp, st = N.CRITICAL_PATH, N.SELF_TIME
    assert family(samples, cp) == {
        frozenset({(N.ROOT_OPERATION, root), (N.OPERATION, op)}): n * ns / 1e9
        for op, ns in ((root, 70), ("A", 0), ("B", 30))
    }
    assert family(samples, st) == {
        frozenset({(N.ROOT_OPERATION, root), (N.OPERATION, op)}): n * ns / 1e9
        for op, ns in ((root, 60), ("A", 20), ("B", 30))
    }
    duration = n * 100 / 1e9
    assert family(samples, N.ROOT_DURATION) == {frozenset({(N.ROOT_OPERATION, root)}): duration}
    assert family(samples, N.ROOTS) == {frozenset({(N.ROOT_OPERATION, root)}): n}


def test_fan_out_exact_through_configure_and_a_real_scrape(telemetry: otelperf.Telemetry):
    fan_out(telemetry.tracer_provider.get_tracer("app"))
    assert telemetry.metrics_url is not None
    assert_fan_out(scrape(telemetry.metrics_url))
    assert get(scrape(telemetry.metrics_url), N.TRACES_IN_FLIGHT) == 0


def test_configure_adds_exactly_one_processor_and_shutdown_removes_it():
    tp = TracerProvider()
    before = tp.sampler
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           tracer_provider=tp)  # fmt: skip
    try:
        mine = [
            p
            for p in tp._active_span_processor._span_processors
            if isinstance(p, BottleneckSpanProcessor)
        ]
        assert len(mine) == 1
        assert isinstance(tp.sampler, RecordEverythingSampler)
        assert tp.sampler.delegate is before
    finally:
        t.shutdown()
        t.shutdown()
    assert tp._active_span_processor._span_processors == ()
    assert tp.sampler is before
    assert mine[0]._closed


def test_metrics_complete_with_sampling_ratio_zero_and_exporters_see_nothing():
    exporter = InMemorySpanExporter()
    tp = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    early = tp.get_tracer("made-before-configure")  # must get the new sampler too
    reg = CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=reg, set_global=False, tracer_provider=tp)
    try:
        for i in range(25):
            fan_out(early, offset=1000 * i)
        for i in range(25):
            fan_out(tp.get_tracer("late"), offset=1000 * i)

        @otelperf.measure("handler")
        def handler() -> None:
            with otelperf.measure("step"):
                pass

        for _ in range(7):
            handler()
        s = read(reg)
        assert get(s, N.ROOTS, root_operation="root") == 50
        assert get(s, N.CRITICAL_PATH, root_operation="root", operation="B") == 50 * 30 / 1e9
        assert get(s, N.SELF_TIME, root_operation="root", operation="root") == 50 * 60 / 1e9
        assert get(s, N.ROOTS, root_operation="handler") == 7
        assert exporter.get_finished_spans() == ()
    finally:
        t.shutdown()
    # after shutdown the application's sampler is back: unsampled spans are not recorded
    assert tp.sampler.get_description().startswith("ParentBased")
    assert not early.start_span("x").is_recording()


def test_always_off_with_the_sampler_becomes_record_only(rig: Rig):
    sampler = RecordEverythingSampler(ALWAYS_OFF)
    r = sampler.should_sample(None, 1, "x")
    assert r.decision.is_recording() and not r.decision.is_sampled()
    sampler.active = False
    assert not sampler.should_sample(None, 1, "x").decision.is_recording()
    assert sampler.get_description() == "RecordEverything{AlwaysOffSampler}"


def remote_context(trace_id: int, span_id: int) -> Any:
    sc = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1))
    return trace.set_span_in_context(NonRecordingSpan(sc))


def test_remote_parent_makes_a_local_root_and_several_roots_share_a_trace(rig: Rig):
    tr = rig.tracer
    parent = remote_context(0xABC, 0x1)
    r1 = tr.start_span("GET /a", context=parent, start_time=0)
    r2 = tr.start_span("GET /b", context=parent, start_time=5)
    assert r1.get_span_context().trace_id == r2.get_span_context().trace_id == 0xABC
    tr.start_span("db", context=trace.set_span_in_context(r1), start_time=10).end(40)
    tr.start_span("cache", context=trace.set_span_in_context(r2), start_time=10).end(15)
    assert get(rig.read(), N.TRACES_IN_FLIGHT) == 2
    r1.end(50)
    r2.end(25)
    s = rig.read()
    assert family(s, N.CRITICAL_PATH) == {
        frozenset({("root_operation", "GET /a"), ("operation", "GET /a")}): 20 / 1e9,
        frozenset({("root_operation", "GET /a"), ("operation", "db")}): 30 / 1e9,
        frozenset({("root_operation", "GET /b"), ("operation", "GET /b")}): 15 / 1e9,
        frozenset({("root_operation", "GET /b"), ("operation", "cache")}): 5 / 1e9,
    }
    assert get(s, N.ROOTS, root_operation="GET /a") == 1
    assert get(s, N.ROOTS, root_operation="GET /b") == 1
    assert get(s, N.TRACES_IN_FLIGHT) == 0


def test_several_roots_in_flight_in_one_trace_keep_nested_spans_apart(rig: Rig):
    # Spans are not registered when they start while a trace has one root; once a second root
    # of the trace is in flight they are, and each span is filed under its own root.
    tr = rig.tracer
    remote = remote_context(0xABC, 0x1)

    def under(span: Any) -> Any:
        return trace.set_span_in_context(span)

    r1 = tr.start_span("GET /a", context=remote, start_time=0)
    a1 = tr.start_span("a1", context=under(r1), start_time=5)  # before the second root
    r2 = tr.start_span("GET /b", context=remote, start_time=10)
    assert rig.processor.table.shared  # the trace now registers its spans
    a2 = tr.start_span("a2", context=under(a1), start_time=12)  # parent unregistered: r1's
    b1 = tr.start_span("b1", context=under(r2), start_time=15)
    b2 = tr.start_span("b2", context=under(b1), start_time=16)
    b2.end(20)
    a2.end(18)
    a1.end(25)
    tr.start_span("a3", context=under(r1), start_time=26).end(28)
    b1.end(30)
    bg_a = tr.start_span("bg_a", context=under(r1), start_time=35)
    r1.end(40)
    bg_a.end(45)  # after its root, while the trace's other root is in flight: late
    bg_b = tr.start_span("bg_b", context=under(r2), start_time=45)
    r2.end(50)
    bg_b.end(55)  # after the trace's last root: late
    s = rig.read()

    def series(root: str, values: dict[str, int]) -> dict[frozenset[tuple[str, str]], float]:
        return {
            frozenset({(N.ROOT_OPERATION, root), (N.OPERATION, op)}): ns / 1e9
            for op, ns in values.items()
        }

    a = {"GET /a": 18, "a1": 14, "a2": 6, "a3": 2}
    b = {"GET /b": 25, "b1": 11, "b2": 4}
    assert family(s, N.CRITICAL_PATH) == series("GET /a", a) | series("GET /b", b)
    assert family(s, N.SELF_TIME) == series("GET /a", a) | series("GET /b", b)
    assert family(s, N.ROOT_DURATION) == {
        frozenset({(N.ROOT_OPERATION, "GET /a")}): 40 / 1e9,
        frozenset({(N.ROOT_OPERATION, "GET /b")}): 40 / 1e9,
    }
    assert family(s, N.DROPPED_SPANS) == {frozenset({(N.REASON, "late")}): 2}
    assert get(s, N.TRACES_IN_FLIGHT) == 0
    p = rig.processor
    assert p.table.roots == {} and p.table.traces == {} and p.table.shared == {}


def test_open_child_at_root_end_is_async_and_its_end_is_late(rig: Rig):
    tr = rig.tracer
    root = tr.start_span("root", start_time=0)
    ctx = trace.set_span_in_context(root)
    bg = tr.start_span("background", context=ctx, start_time=10)
    bg_child = tr.start_span("bg_child", context=trace.set_span_in_context(bg), start_time=20)
    bg_child.end(30)  # ended before the root, but under an open (non-blocking) parent
    root.end(100)
    s = rig.read()
    assert family(s, N.CRITICAL_PATH) == {
        frozenset({("root_operation", "root"), ("operation", "root")}): 100 / 1e9
    }
    assert family(s, N.DROPPED_SPANS) == {}
    bg.end(200)
    tr.start_span("after", context=trace.set_span_in_context(bg), start_time=210).end(220)
    assert family(rig.read(), N.DROPPED_SPANS) == {frozenset({("reason", "late")}): 2}


def test_capacity_cap_on_traces_in_flight():
    rig = Rig(max_traces_in_flight=2)
    try:
        tr = rig.tracer
        roots = [tr.start_span(f"r{i}", start_time=0) for i in range(3)]
        for r in roots:
            tr.start_span("c", context=trace.set_span_in_context(r), start_time=1).end(2)
        assert get(rig.read(), N.TRACES_IN_FLIGHT) == 2
        for r in roots:
            r.end(10)
        s = rig.read()
        assert family(s, N.DROPPED_SPANS) == {frozenset({("reason", "capacity")}): 2}
        assert family(s, N.ROOTS) == {
            frozenset({("root_operation", "r0")}): 1,
            frozenset({("root_operation", "r1")}): 1,
        }
        fan_out(tr)  # room again
        assert get(rig.read(), N.ROOTS, root_operation="root") == 1
    finally:
        rig.close()


def test_truncated_past_max_spans_per_trace():
    rig = Rig(max_spans_per_trace=3)
    try:
        tr = rig.tracer
        root = tr.start_span("root", start_time=0)
        ctx = trace.set_span_in_context(root)
        for i in range(4):  # root, c0 and c0's child fit; c1..c3 and their children do not
            c = tr.start_span(f"c{i}", context=ctx, start_time=10 * i)
            gc = tr.start_span("gc", context=trace.set_span_in_context(c), start_time=10 * i)
            gc.end(10 * i + 1)
            c.end(10 * i + 5)
        root.end(100)
        s = rig.read()
        assert family(s, N.DROPPED_SPANS) == {frozenset({("reason", "truncated")}): 6}
        assert family(s, N.CRITICAL_PATH) == {
            frozenset({("root_operation", "root"), ("operation", op)}): ns / 1e9
            for op, ns in (("root", 95), ("c0", 4), ("gc", 1))
        }
    finally:
        rig.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_sweep_expires_roots_that_never_end_without_a_thread():
    clock = FakeClock()
    rig = Rig(trace_ttl_seconds=10.0, _clock=clock)
    threads = threading.active_count()
    try:
        tr = rig.tracer
        stuck = tr.start_span("stuck", start_time=0)
        ctx = trace.set_span_in_context(stuck)
        tr.start_span("done_child", context=ctx, start_time=1).end(2)
        open_child = tr.start_span("open_child", context=ctx, start_time=1)
        clock.now += 9.0
        fan_out(tr)  # an on_end before the TTL: nothing expires
        assert get(rig.read(), N.TRACES_IN_FLIGHT) == 1
        clock.now += 2.0
        fan_out(tr)  # this root's start sweeps
        s = rig.read()
        assert get(s, N.TRACES_IN_FLIGHT) == 0
        assert family(s, N.DROPPED_SPANS) == {frozenset({("reason", "expired")}): 1}
        open_child.end(5)
        stuck.end(6)
        s = rig.read()
        assert family(s, N.DROPPED_SPANS) == {frozenset({("reason", "expired")}): 3}
        assert get(s, N.ROOTS, root_operation="stuck") is None
        assert get(s, N.ROOTS, root_operation="root") == 2
        assert threading.active_count() == threads
        assert (
            rig.processor.table.traces
            == rig.processor.table.shared
            == rig.processor.table.roots
            == {}
        )
    finally:
        rig.close()


def test_a_scrape_expires_stuck_roots_when_no_request_comes():
    clock = FakeClock()
    rig = Rig(trace_ttl_seconds=10.0, _clock=clock)
    try:
        tr = rig.tracer
        stuck = tr.start_span("stuck", start_time=0)
        for i in range(3):
            tr.start_span("done", context=trace.set_span_in_context(stuck), start_time=i).end(i)
        assert get(rig.read(), N.TRACES_IN_FLIGHT) == 1
        clock.now += 10.5  # past the TTL; no root starts after this
        s = rig.read()
        assert get(s, N.TRACES_IN_FLIGHT) == 0
        assert family(s, N.DROPPED_SPANS) == {frozenset({("reason", "expired")}): 3}
        assert rig.processor.table.traces == {} and rig.processor.table.roots == {}
    finally:
        rig.close()


def test_overflow_past_max_operations():
    rig = Rig(max_operations=3)
    try:
        for i in range(5):
            fan_out(rig.tracer, root_name=f"root{i}")
        s = rig.read()
        roots = family(s, N.ROOTS)
        # names are taken in order of first sight: root0, A, B; everything later overflows
        assert roots == {
            frozenset({("root_operation", "root0")}): 1,
            frozenset({("root_operation", N.OVERFLOW)}): 4,
        }
        assert get(s, N.CRITICAL_PATH, root_operation=N.OVERFLOW, operation=N.OVERFLOW) == (
            4 * 70 / 1e9
        )
        # Per late root: its name and its (root, operation) pair in the counters (2), and, since
        # issue 12, its duration observation (the histogram took A, B, root0 first: 1).
        assert get(s, N.CARDINALITY_OVERFLOW, component="processor") == 4 * 2 + 4
    finally:
        rig.close()


def test_hooks_never_raise_and_count_internal_errors(rig: Rig, caplog: pytest.LogCaptureFixture):
    rig.processor.on_start(object())  # type: ignore[arg-type]
    rig.processor.on_end(object())  # type: ignore[arg-type]
    s = rig.read()
    assert get(s, N.INTERNAL_ERRORS, component="processor") == 2
    assert "otelperf processor failed" in caplog.text
    fan_out(rig.tracer)  # still works
    assert_fan_out(rig.read())


def test_shutdown_and_force_flush_twice_then_inert(rig: Rig):
    fan_out(rig.tracer)
    assert rig.processor.force_flush() is True
    assert rig.processor.force_flush(10) is True
    rig.processor.shutdown()
    rig.processor.shutdown()
    fan_out(rig.tracer)
    assert_fan_out(rig.read(), n=1)  # totals stay readable, nothing new counted


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="max_operations=0"):
        BottleneckSpanProcessor(meter_provider=MeterProvider(), max_operations=0)
    with pytest.raises(TypeError, match="max_spans_per_trace='9'"):
        BottleneckSpanProcessor(meter_provider=MeterProvider(), max_spans_per_trace="9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trace_ttl_seconds=-1"):
        BottleneckSpanProcessor(meter_provider=MeterProvider(), trace_ttl_seconds=-1)


def test_sixteen_threads_give_exact_sums(rig: Rig):
    per_thread = 200
    barrier = threading.Barrier(16)

    def work() -> None:
        barrier.wait()
        for i in range(per_thread):
            fan_out(rig.tracer, offset=i * 1000)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_fan_out(rig.read(), n=16 * per_thread)


def test_threads_serving_many_roots_of_one_trace_give_exact_sums(rig: Rig):
    # Every request is a local root under the same remote parent (one producer trace, many
    # consumers): the trace has several roots in flight nearly all the time, so its spans are
    # registered as they start, from 8 threads at once.
    remote = remote_context(0xFEED, 0x1)
    per_thread = 100
    barrier = threading.Barrier(8)
    tr = rig.tracer

    def work() -> None:
        barrier.wait()
        for i in range(per_thread):
            t0 = i * 1000
            root = tr.start_span("consume", context=remote, start_time=t0)
            a = tr.start_span("A", context=trace.set_span_in_context(root), start_time=t0 + 10)
            tr.start_span("gc", context=trace.set_span_in_context(a), start_time=t0 + 20).end(
                t0 + 30
            )
            a.end(t0 + 40)
            tr.start_span("B", context=trace.set_span_in_context(root), start_time=t0 + 50).end(
                t0 + 90
            )
            root.end(t0 + 100)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = rig.read()
    n = 8 * per_thread
    expected = {
        frozenset({(N.ROOT_OPERATION, "consume"), (N.OPERATION, op)}): n * ns / 1e9
        for op, ns in (("consume", 30), ("A", 20), ("gc", 10), ("B", 40))
    }
    assert family(s, N.CRITICAL_PATH) == expected
    assert family(s, N.SELF_TIME) == expected
    assert get(s, N.ROOTS, root_operation="consume") == n
    assert family(s, N.DROPPED_SPANS) == {}
    p = rig.processor
    assert p.table.roots == p.table.traces == p.table.shared == {}


def test_interleaved_asyncio_tasks_give_exact_sums(rig: Rig):
    tr = rig.tracer

    async def request(i: int) -> None:
        root = tr.start_span("root", start_time=i * 1000)
        ctx = trace.set_span_in_context(root)
        a = tr.start_span("A", context=ctx, start_time=i * 1000 + 10)
        await asyncio.sleep(0)
        b = tr.start_span("B", context=ctx, start_time=i * 1000 + 20)
        await asyncio.sleep(0)
        a.end(i * 1000 + 30)
        await asyncio.sleep(0)
        b.end(i * 1000 + 50)
        await asyncio.sleep(0)
        root.end(i * 1000 + 100)

    async def main() -> None:
        await asyncio.gather(*(request(i) for i in range(300)))

    asyncio.run(main())
    assert_fan_out(rig.read(), n=300)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_state_is_reinitialised_after_fork(rig: Rig):
    fan_out(rig.tracer)
    rig.tracer.start_span("open_in_parent", start_time=0)  # in flight at fork time
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it sees, then leave without running pytest teardown
        code = 1
        try:
            p = rig.processor
            fresh = not p.table.roots and not p.table.traces and not p.totals.roots
            fan_out(rig.tracer)
            roots = get(rig.read(), N.ROOTS, root_operation="root")
            os.write(w, f"{fresh} {roots}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 100).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == "True 1"
    assert get(rig.read(), N.TRACES_IN_FLIGHT) == 1  # the parent is unaffected


def _drive(p: BottleneckSpanProcessor, n_spans: int, trace_base: int, distinct: bool) -> None:
    """Feed real ReadableSpans straight to the hooks (the SDK's own span objects, built directly
    so a million fit the time budget): traces of 10 spans, with abuse in 3 of every 100."""
    res = Resource.create({})
    sid = trace_base * 100
    for t in range(n_spans // 10):
        trace_id = trace_base + t
        sid += 1
        name = f"root{trace_id}" if distinct else "root"
        root_ctx = SpanContext(trace_id, sid, False)
        root = ReadableSpan(name, root_ctx, None, res, start_time=0, end_time=1000)
        p.on_start(root)  # type: ignore[arg-type]
        kids = []
        for k in range(9):
            sid += 1
            ctx = SpanContext(trace_id, sid, False)
            kids.append(ReadableSpan(f"op{k}", ctx, root_ctx, res, start_time=k * 100,
                                     end_time=k * 100 + 50))  # fmt: skip
            p.on_start(kids[-1])  # type: ignore[arg-type]
        abuse = t % 100
        for kid in kids if abuse != 1 else kids[:-1]:  # 1 in 100: a span that never ends
            p.on_end(kid)
        if abuse != 2:  # 1 in 100: a root that never ends (swept by the TTL)
            p.on_end(root)
        if abuse == 3:
            p.on_end(kids[0])  # 1 in 100: a late second end after the root finished


@pytest.mark.slow
def test_a_million_spans_with_100k_distinct_names_leave_memory_at_baseline():
    clock = FakeClock()
    mp = MeterProvider()
    p = BottleneckSpanProcessor(meter_provider=mp, trace_ttl_seconds=5.0, _clock=clock)
    proc = psutil.Process()
    _drive(p, 20_000, 1, False)  # warm up: 2 000 traces, 20 of them never end
    clock.now += 10
    _drive(p, 10, 10**9, False)  # its first root's start sweeps them
    gc.collect()
    base = proc.memory_info().rss
    t0 = time.perf_counter()
    peak_in_flight = 0
    for chunk in range(10):  # 1 000 000 spans; every root has its own name: 100 000 names
        _drive(p, 100_000, 10**7 * (chunk + 1), True)
        peak_in_flight = max(peak_in_flight, len(p.table.roots))
        clock.now += 10  # the roots that never ended expire at the next sweep
    _drive(p, 10, 10**12, False)
    elapsed = time.perf_counter() - t0
    gc.collect()
    grown = proc.memory_info().rss - base
    assert p.table.roots == {} and p.table.traces == {} and p.table.shared == {}
    assert len(p.table.tombstones) == 20 + 10 * 100  # expired traces, under the cap
    assert len(p.totals.names) == p.max_operations
    assert len(p.totals.pairs) <= p.max_operations * PAIRS_PER_OPERATION + 10
    assert peak_in_flight == 100  # only this chunk's never-ending roots
    assert p.table.dropped == {
        "expired": (20 + 10 * 100) * 9,  # the ended children of never-ending roots
        "late": 20 + 10 * 100,  # the late second ends
    }
    assert elapsed < 60, f"1M spans took {elapsed:.1f}s"
    assert grown < 32 * 2**20, f"RSS grew {grown / 2**20:.1f} MiB"
    p.shutdown()
    mp.shutdown()


def test_reconfigure_on_the_same_application_meter_provider_keeps_counting():
    # The SDK drops a second instrument of the same name on a meter (and its callback); the
    # processor's instruments are shared per meter provider and read its newest processor.
    reg = CollectorRegistry()
    mp = MeterProvider(metric_readers=[otelperf.prometheus_reader(reg)])
    tp = TracerProvider()
    try:
        for n in (1, 2):
            t = otelperf.configure(prometheus_port=0, registry=reg, set_global=False,
                                   tracer_provider=tp, meter_provider=mp)  # fmt: skip
            try:
                for i in range(n):
                    fan_out(tp.get_tracer("app"), offset=1000 * i)
                assert_fan_out(read(reg), n=n)  # the new processor's own totals
            finally:
                t.shutdown()
    finally:
        tp.shutdown()
        mp.shutdown()


def test_children_of_one_root_from_many_threads_racing_its_end():
    rig = Rig(max_spans_per_trace=100_000)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so ends race the root's cleanup
    try:
        tr = rig.tracer
        for round_ in range(20):
            root = tr.start_span("root", start_time=0)
            ctx = trace.set_span_in_context(root)
            go = threading.Barrier(9)

            def children(ctx: Any = ctx, go: threading.Barrier = go) -> None:
                go.wait()
                for _ in range(200):
                    tr.start_span("child", context=ctx, start_time=10).end(20)

            threads = [threading.Thread(target=children) for _ in range(8)]
            for t in threads:
                t.start()
            go.wait()
            time.sleep(0.001 * (round_ % 4))  # end the root while children are being made
            root.end(100)
            for t in threads:
                t.join()
        s = rig.read()
        counted = get(s, N.SELF_TIME, root_operation="root", operation="child") or 0.0
        dropped = family(s, N.DROPPED_SPANS)
        late = dropped.pop(frozenset({("reason", "late")}), 0.0)
        assert dropped == {}  # no other reason: nothing was capped or misread as truncated
        # every child is either attributed (10 ns of self time each) or late: none lost
        assert round(counted * 1e9 / 10) + late == 20 * 8 * 200
        assert get(s, N.ROOTS, root_operation="root") == 20
        assert (
            rig.processor.table.traces
            == rig.processor.table.shared
            == rig.processor.table.roots
            == {}
        )
    finally:
        sys.setswitchinterval(interval)
        rig.close()


def test_direct_field_reads_match_the_public_properties():
    from otelperf._core import sdk_compat

    class OtherSpan(ReadableSpan):  # not the SDK's exact class: read through the properties
        pass

    assert sdk_compat.DIRECT_FIELDS  # the installed SDK keeps the fields on_end reads
    res = Resource.create({})
    totals = []
    for cls in (ReadableSpan, OtherSpan):
        rig = Rig()
        try:
            root_ctx = SpanContext(5, 1, False)
            root = cls("root", root_ctx, None, res, start_time=0, end_time=100)
            a = cls("A", SpanContext(5, 2, False), root_ctx, res, start_time=10, end_time=30)
            b = cls("B", SpanContext(5, 3, False), root_ctx, res, start_time=20, end_time=50,
                    attributes={N.ATTR_CACHE_NAME: "c", N.ATTR_CACHE_HIT: True,
                                "server.address": "api.example"},
                    kind=SpanKind.CLIENT)  # fmt: skip
            for s in (root, a, b):
                rig.processor.on_start(s)  # type: ignore[arg-type]
            for s in (a, b, root):
                rig.processor.on_end(s)
            samples = rig.read()
            assert_fan_out(samples)
            assert get(samples, N.CACHE_REQUESTS, cache="c", result="hit") == 1
            api = {N.API: "api.example", N.MODEL: N.UNKNOWN_MODEL, N.OUTCOME: N.OUTCOME_SUCCESS}
            assert family(samples, N.API_CALLS) == {frozenset(api.items()): 1}
            totals.append(samples)
        finally:
            rig.close()
    assert family(totals[0], N.CRITICAL_PATH) == family(totals[1], N.CRITICAL_PATH)


def test_default_sampler_fast_path_decides_like_the_wrapped_parent_based() -> None:
    """The one-step decision for ParentBased(ALWAYS_ON) equals the general wrapping path."""
    from opentelemetry import trace as api
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased
    from opentelemetry.trace import NonRecordingSpan, TraceFlags, TraceState

    fast = RecordEverythingSampler(ParentBased(ALWAYS_ON))
    assert fast._parent_based_always_on
    general = RecordEverythingSampler(ParentBased(ALWAYS_ON))
    general._parent_based_always_on = False
    state = TraceState([("vendor", "x")])
    parents = [None]
    for remote in (False, True):
        for flags in (TraceFlags.SAMPLED, TraceFlags.DEFAULT):
            sc = SpanContext(7, 9, is_remote=remote, trace_flags=TraceFlags(flags),
                             trace_state=state)  # fmt: skip
            parents.append(api.set_span_in_context(NonRecordingSpan(sc)))
    decisions = []
    for ctx in parents:
        a = fast.should_sample(ctx, 7, "op", attributes={"k": "v"})
        b = general.should_sample(ctx, 7, "op", attributes={"k": "v"})
        assert (a.decision, dict(a.attributes), a.trace_state) == (
            b.decision, dict(b.attributes), b.trace_state,
        )  # fmt: skip
        decisions.append(a.decision)
    assert decisions == [Decision.RECORD_AND_SAMPLE, Decision.RECORD_AND_SAMPLE,
                         Decision.RECORD_ONLY, Decision.RECORD_AND_SAMPLE,
                         Decision.RECORD_ONLY]  # fmt: skip
    # Any other sampler takes the general path.
    assert not RecordEverythingSampler(ALWAYS_ON)._parent_based_always_on
