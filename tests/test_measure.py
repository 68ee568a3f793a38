"""measure(): every form, spans and metrics read back over a real socket."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import tracemalloc
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import measure
from tests.scrape import matching, scrape, value

H = "otelperf_operation_duration_seconds"


@pytest.fixture
def spans(telemetry: otelperf.Telemetry) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def count(url: str, operation: str, outcome: str = "success", error_type: str = "") -> float | None:
    return value(scrape(url), H + "_count", operation=operation, outcome=outcome,
                 error_type=error_type)  # fmt: skip


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in exporter.get_finished_spans():
        out.setdefault(s.name, []).append(s)
    return out


@measure
def bare_function(x: int) -> int:
    return x * 2


class Service:
    @measure
    def method(self, x: int) -> int:
        return x + 1

    @measure("svc.static")
    @staticmethod
    def static(x: int) -> int:
        return x + 2

    @measure
    @classmethod
    def klass(cls, x: int) -> int:
        return x + 3


def test_bare_decorator_names_operation_module_qualname(telemetry, spans):
    assert bare_function(21) == 42
    assert bare_function.__name__ == "bare_function"  # functools.wraps kept
    name = f"{__name__}.bare_function"
    assert count(telemetry.metrics_url, name) == 1.0
    assert [s.name for s in spans.get_finished_spans()] == [name]


def test_methods_staticmethods_classmethods(telemetry, spans):
    svc = Service()
    assert svc.method(1) == 2
    assert Service.static(1) == 3
    assert svc.static(1) == 3
    assert Service.klass(1) == 4
    url = telemetry.metrics_url
    assert count(url, f"{__name__}.Service.method") == 1.0
    assert count(url, "svc.static") == 2.0
    assert count(url, f"{__name__}.Service.klass") == 1.0
    assert sorted(s.name for s in spans.get_finished_spans()) == sorted(
        [f"{__name__}.Service.method", "svc.static", "svc.static", f"{__name__}.Service.klass"]
    )


def test_named_decorator_sync_and_async(telemetry, spans):
    @measure("download")
    def download() -> str:
        return "ok"

    @measure("adownload")
    async def adownload() -> str:
        await asyncio.sleep(0)
        return "aok"

    assert download() == "ok"
    assert asyncio.run(adownload()) == "aok"
    assert count(telemetry.metrics_url, "download") == 1.0
    assert count(telemetry.metrics_url, "adownload") == 1.0


def test_histogram_full_label_set_and_buckets(telemetry):
    with measure("parse"):
        pass
    samples = scrape(telemetry.metrics_url)
    buckets = matching(samples, H + "_bucket", operation="parse")
    les = sorted(float(dict(k[1])["le"]) for k in buckets)
    assert len(les) >= 15 and les[0] == 0.0001 and les[-2] == 60.0 and les[-1] == float("inf")
    for key in buckets:
        assert dict(key[1]) == {
            "operation": "parse",
            "outcome": "success",
            "le": dict(key[1])["le"],
        }
    assert value(samples, H + "_bucket", operation="parse", outcome="success", error_type="",
                 le="+Inf") == 1.0  # fmt: skip


def test_context_manager_throughput_and_attributes(telemetry, spans):
    with measure("parse") as op:
        op.add_items(3)
        op.add_items(4)
        op.add_bytes(1000)
        op.set_attribute("db.table", "orders")

    async def main() -> None:
        async with measure("aparse") as aop:
            aop.add_items(5)
            aop.add_bytes(7)

    asyncio.run(main())
    s = scrape(telemetry.metrics_url)
    assert value(s, "otelperf_operation_items_total", operation="parse") == 7.0
    assert value(s, "otelperf_operation_bytes_total", operation="parse") == 1000.0
    assert value(s, "otelperf_operation_items_total", operation="aparse") == 5.0
    assert value(s, "otelperf_operation_bytes_total", operation="aparse") == 7.0
    span = by_name(spans)["parse"][0]
    assert span.attributes is not None
    assert span.attributes["db.table"] == "orders"
    assert span.attributes["otelperf.items"] == 7
    assert span.attributes["otelperf.bytes"] == 1000
    assert span.kind == SpanKind.INTERNAL


def test_exception_recorded_and_reraised_unchanged(telemetry, spans):
    original = KeyError("missing")

    @measure("lookup")
    def lookup() -> None:
        raise original

    with pytest.raises(KeyError) as info:
        lookup()
    assert info.value is original
    # The traceback still ends in the frame that raised.
    tb = info.value.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    assert tb is not None and tb.tb_frame.f_code.co_name == "lookup"

    with pytest.raises(ValueError), measure("lookup"):
        raise ValueError("bad")

    url = telemetry.metrics_url
    assert count(url, "lookup", "error", "KeyError") == 1.0
    assert count(url, "lookup", "error", "ValueError") == 1.0
    assert count(url, "lookup") is None  # no success series: one call is one observation
    for span in by_name(spans)["lookup"]:
        assert span.status.status_code == StatusCode.ERROR
        assert [e.name for e in span.events] == ["exception"]
        assert span.attributes is not None and span.attributes["error.type"] in (
            "KeyError", "ValueError",
        )  # fmt: skip


def test_async_exception_and_in_flight(telemetry):
    started = asyncio.Event

    async def main() -> None:
        gate = started()

        @measure("wait")
        async def wait() -> None:
            await gate.wait()

        task = asyncio.create_task(wait())
        await asyncio.sleep(0.01)
        s = await asyncio.to_thread(scrape, telemetry.metrics_url)
        assert value(s, "otelperf_operation_in_flight", operation="wait") == 1.0
        gate.set()
        await task

        @measure("afail")
        async def afail() -> None:
            raise RuntimeError("x")

        with pytest.raises(RuntimeError):
            await afail()

    asyncio.run(main())
    s = scrape(telemetry.metrics_url)
    assert value(s, "otelperf_operation_in_flight", operation="wait") == 0.0
    assert (
        value(s, H + "_count", operation="afail", outcome="error", error_type="RuntimeError") == 1
    )


def test_generator_lasts_until_exhausted_and_span_only_current_in_body(telemetry, spans):
    from opentelemetry import trace

    seen_in_body: list[str] = []

    @measure("rows")
    def rows(n: int) -> Iterator[int]:
        for i in range(n):
            seen_in_body.append(trace.get_current_span().name)  # type: ignore[attr-defined]
            yield i

    outside: list[bool] = []
    for _ in rows(3):
        outside.append(trace.get_current_span().is_recording())
    assert seen_in_body == ["rows", "rows", "rows"]
    assert outside == [False, False, False]  # the consumer is not inside the operation

    gen = rows(10)
    assert next(gen) == 0
    assert count(telemetry.metrics_url, "rows") == 1.0  # the first one only: still open
    gen.close()
    assert count(telemetry.metrics_url, "rows") == 2.0  # closed early counts as done

    @measure("bad_rows")
    def bad_rows() -> Iterator[int]:
        yield 1
        raise OSError("disk")

    with pytest.raises(OSError):
        list(bad_rows())
    assert count(telemetry.metrics_url, "bad_rows", "error", "OSError") == 1.0

    # send() and return values pass through.
    @measure("echo")
    def echo() -> Iterator[int]:
        got = yield 0
        yield got * 2
        return

    g = echo()
    assert next(g) == 0
    assert g.send(21) == 42
    assert len(by_name(spans)["rows"]) == 2


def test_async_generator(telemetry, spans):
    @measure("stream")
    async def stream(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    async def main() -> list[int]:
        out = [i async for i in stream(4)]
        g = stream(100)
        await g.__anext__()
        await g.aclose()
        return out

    assert asyncio.run(main()) == [0, 1, 2, 3]
    assert count(telemetry.metrics_url, "stream") == 2.0
    assert len(by_name(spans)["stream"]) == 2


def test_nesting_across_await_gather_and_threads(telemetry, spans):
    @measure("child")
    async def child(i: int) -> int:
        await asyncio.sleep(0.001 * (i % 3))
        return i

    @measure("parent")
    async def parent() -> list[int]:
        return await asyncio.gather(*(child(i) for i in range(5)))

    asyncio.run(parent())
    named = by_name(spans)
    (p,) = named["parent"]
    assert len(named["child"]) == 5
    for c in named["child"]:
        assert c.parent is not None and c.parent.span_id == p.context.span_id
        assert c.context.trace_id == p.context.trace_id

    spans.clear()

    def work() -> None:
        with measure("outer"), measure("inner"):
            pass

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    named = by_name(spans)
    outer = {s.context.span_id for s in named["outer"]}
    assert len(outer) == 8
    assert {s.parent.span_id for s in named["inner"] if s.parent} == outer
    assert all(s.parent is None for s in named["outer"])


def test_sixteen_threads_exact_counts(telemetry):
    @measure("hot")
    def hot() -> None:
        pass

    def loop() -> None:
        for i in range(10_000):  # 10 000 calls per thread, half each form
            if i % 2:
                hot()
            else:
                with measure("hot_cm") as op:
                    op.add_items(1)

    threads = [threading.Thread(target=loop) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = scrape(telemetry.metrics_url)
    assert value(s, H + "_count", operation="hot", outcome="success", error_type="") == 80_000
    assert value(s, H + "_count", operation="hot_cm", outcome="success", error_type="") == 80_000
    assert value(s, "otelperf_operation_items_total", operation="hot_cm") == 80_000
    assert value(s, "otelperf_operation_in_flight", operation="hot_cm") == 0


def test_thousand_concurrent_tasks_exact_counts_and_parents(telemetry, spans):
    async def request(i: int) -> None:
        async with measure("request"):
            await asyncio.sleep(0.001)
            async with measure("step") as op:
                op.add_items(i)
                await asyncio.sleep(0.001)

    async def main() -> None:
        await asyncio.gather(*(request(i) for i in range(1000)))

    asyncio.run(main())
    s = scrape(telemetry.metrics_url)
    assert value(s, H + "_count", operation="request", outcome="success", error_type="") == 1000
    assert value(s, H + "_count", operation="step", outcome="success", error_type="") == 1000
    assert value(s, "otelperf_operation_items_total", operation="step") == sum(range(1000))
    named = by_name(spans)
    requests = {r.context.span_id: r.context.trace_id for r in named["request"]}
    assert len(requests) == 1000
    parents = [st.parent.span_id for st in named["step"] if st.parent]
    assert sorted(parents) == sorted(requests)
    for st in named["step"]:
        assert st.parent is not None
        assert requests[st.parent.span_id] == st.context.trace_id


def test_bad_input_names_the_argument(telemetry):
    with pytest.raises(TypeError, match="123"):
        measure(123)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="name"):
        measure("")
    with pytest.raises(TypeError, match="track_memory"):
        measure("x", track_memory="yes")  # type: ignore[call-overload]
    with measure("x") as op:
        with pytest.raises(ValueError, match=r"add_items\(n=-1\)"):
            op.add_items(-1)
        with pytest.raises(TypeError, match=r"add_bytes\(n=1.5\)"):
            op.add_bytes(1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="add_items"):
            op.add_items(True)
        with pytest.raises(TypeError, match="key"):
            op.set_attribute("", 1)
    m = measure("reuse")
    with m, pytest.raises(RuntimeError, match="already in use"), m:
        pass


def test_operation_cap_overflows_with_one_warning(caplog):
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           max_operations=10)  # fmt: skip
    try:
        with caplog.at_level(logging.WARNING, logger="otelperf"):
            for i in range(25):
                with measure(f"op{i}"):
                    pass
        warnings = [r for r in caplog.records if "distinct operation names" in r.getMessage()]
        assert len(warnings) == 1
        s = scrape(t.metrics_url)
        names = {dict(k[1])["operation"] for k in matching(s, H + "_count")}
        assert names == {f"op{i}" for i in range(10)} | {"__overflow__"}
        assert value(s, H + "_count", operation="__overflow__", outcome="success",
                     error_type="") == 15  # fmt: skip
        assert value(s, "otelperf_cardinality_overflow_total", component="operation") == 15
    finally:
        t.shutdown()


def test_hundred_thousand_names_memory_flat():
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False)
    try:
        # Fill the table and warm every cache first (the span namer caches up to 4096 names).
        for i in range(5000):
            with measure(f"warm{i}"):
                pass
        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        for i in range(100_000):
            with measure(f"name-{i}"):
                pass
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert after - base < 256 * 1024, f"grew by {after - base} bytes"
        s = scrape(t.metrics_url)
        assert len(matching(s, H + "_count")) == 1001  # 1000 names + __overflow__
    finally:
        t.shutdown()


def test_pipeline_failures_never_reach_the_application(telemetry):
    pipeline = telemetry._pipeline

    class Boom(Exception):
        pass

    def broken(*a: object, **k: object) -> None:
        raise Boom("exporter down")

    pipeline.histogram.record = broken  # type: ignore[method-assign]
    pipeline.tracer.start_span = broken  # type: ignore[method-assign]

    @measure("fragile")
    def fragile() -> int:
        return 7

    assert fragile() == 7
    with measure("fragile") as op:
        op.add_items(1)
    with pytest.raises(ZeroDivisionError):  # the application's own errors still propagate
        with measure("fragile"):
            1 / 0  # noqa: B018
    s = scrape(telemetry.metrics_url)
    assert value(s, "otelperf_internal_errors_total", component="instrument") == 3


def test_decorated_before_configure_binds_to_the_configured_pipeline():
    @measure("early")
    def early() -> None:
        pass

    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False)
    try:
        early()
        assert count(t.metrics_url, "early") == 1.0
    finally:
        t.shutdown()
    t2 = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False)
    try:
        early()
        early()
        assert count(t2.metrics_url, "early") == 2.0  # rebound to the new pipeline
    finally:
        t2.shutdown()
