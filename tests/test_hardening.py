"""Issue 14's library defects, each reproduced the way the abuse run found it (real providers,
real HTTP scrapes, a real fork()), so every test here failed before its fix."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import _names as N
from otelperf._core.labels import MAX_LABEL_LENGTH, safe_label
from otelperf.config import resolve
from otelperf.derive.processor import BottleneckSpanProcessor
from otelperf.errors import ConfigError
from otelperf.expose.probes import Probes
from otelperf.expose.resources import ResourceMonitor
from otelperf.expose.server import prometheus_reader
from tests.scrape import get, matching, read_registry, scrape, value

SURROGATE = os.fsdecode(b"report-\xff.csv")  # 'report-\udcff.csv': not encodable as UTF-8
HUGE = "x" * 100_000
SAFE_SURROGATE = "report-?.csv"
SAFE_HUGE = "x" * (MAX_LABEL_LENGTH - 1) + "\u2026"


@pytest.fixture
def t() -> Iterator[otelperf.Telemetry]:
    tel = otelperf.configure(
        service_name="hardening", prometheus_port=0, registry=CollectorRegistry(),
        set_global=False,
    )  # fmt: skip
    try:
        yield tel
    finally:
        tel.shutdown()


def _processor(tel: otelperf.Telemetry) -> BottleneckSpanProcessor:
    assert tel._bottleneck is not None
    return tel._bottleneck[0]


# -- defect 1 and "Names" ------------------------------------------------------------------------


def test_safe_label_replaces_surrogates_and_caps_length() -> None:
    assert safe_label(SURROGATE) == SAFE_SURROGATE
    assert safe_label(HUGE) == SAFE_HUGE and len(SAFE_HUGE) == MAX_LABEL_LENGTH
    assert safe_label("x" * MAX_LABEL_LENGTH) == "x" * MAX_LABEL_LENGTH  # at the limit: kept
    assert safe_label("GET /caf\u00e9") == "GET /caf\u00e9"
    assert safe_label("a\ufffdb") == "a?b"  # PromQL's lexer refuses U+FFFD in a literal


def test_no_name_breaks_or_bloats_a_scrape(t: otelperf.Telemetry) -> None:
    tracer = t.tracer_provider.get_tracer("app")
    # An exception class name cannot hold a surrogate, but it can be 100 KB long.
    bad_error = type("E" * 100_000, (Exception,), {})
    safe_error = "E" * (MAX_LABEL_LENGTH - 1) + "\u2026"
    for name in (SURROGATE, HUGE):
        with otelperf.measure(name) as op:
            op.add_items(2)
        with pytest.raises(bad_error), otelperf.measure(name):
            raise bad_error("boom")
        otelperf.record_cache(name, hit=True)
        otelperf.record_api_call(name, model=name, input_tokens=10, duration_seconds=0.1)
        with otelperf.api_call(name, model=name):
            pass
        # Any OTel span: a root (root_operation) with a child, and a failing CLIENT span whose
        # error.type is the bad name.
        with tracer.start_as_current_span(name), tracer.start_as_current_span(name):
            with tracer.start_as_current_span(name, kind=SpanKind.CLIENT) as client:
                client.set_attribute("error.type", name)
                client.set_status(Status(StatusCode.ERROR))
    status, _, body = get(t.metrics_url)  # type: ignore[arg-type]
    assert status == 200, body[:300]
    # One 100 KB name made a 7 MB scrape: now every label value is at most 256 characters.
    assert len(body) < 150_000, len(body)
    text = body.decode()
    assert "x" * MAX_LABEL_LENGTH not in text
    samples = scrape(t.metrics_url)  # type: ignore[arg-type]
    # The api_call() span is named "<api> <model>": for the huge name that truncates to the
    # same label value as the name itself (one more success and one more root there).
    for safe, same_prefix in ((SAFE_SURROGATE, 0), (SAFE_HUGE, 1)):
        duration = N.OPERATION_DURATION.prom + "_count"
        # measure()'s success and the plain spans (root and child).
        assert value(samples, duration, operation=safe, outcome="success") == 3 + same_prefix
        assert value(samples, duration, operation=safe, outcome="error",
                     error_type=safe_error) == 1  # fmt: skip
        assert value(samples, duration, operation=safe, outcome="error",
                     error_type=safe) == 1  # the client span's error.type  # fmt: skip
        assert value(samples, N.OPERATION_ITEMS.prom, operation=safe) == 2
        assert value(samples, N.CACHE_REQUESTS.prom, cache=safe, result="hit") == 1
        # record_api_call + api_call + the failing client span of the same api
        assert value(samples, N.API_CALLS.prom, api=safe, model=safe, outcome="success") == 2
        # measure()'s 2 calls and the root span
        assert value(samples, N.ROOTS.prom, root_operation=safe) == 3 + same_prefix
    assert not matching(samples, N.INTERNAL_ERRORS.prom)


# -- defect 3 ------------------------------------------------------------------------------------


class ErrA(Exception):
    pass


class ErrB(Exception):
    pass


def test_otelperf_caps_bind_before_the_sdk_cardinality_limit(t: otelperf.Telemetry) -> None:
    """The issue's scenario (1,000 operations, each succeeding and failing with two error
    types) plus the per-(api, outcome) table at its cap: 2,000 series in one SDK instrument,
    where the SDK's default limit folded series into otel_metric_overflow silently."""
    for i in range(1000):
        name = f"op{i}"
        with otelperf.measure(name):
            pass
        for err in (ErrA, ErrB):
            with pytest.raises(err), otelperf.measure(name):
                raise err()
        otelperf.record_api_call(f"api{i}", input_tokens=1)
        otelperf.record_api_call(f"api{i}", input_tokens=1, error=True)
    status, _, body = get(t.metrics_url)  # type: ignore[arg-type]
    assert status == 200
    assert b"otel_metric_overflow" not in body
    samples = scrape(t.metrics_url)  # type: ignore[arg-type]
    duration = N.OPERATION_DURATION.prom + "_count"
    for i in range(1000):
        for etype in ("ErrA", "ErrB"):
            assert value(samples, duration, operation=f"op{i}", outcome="error",
                         error_type=etype) == 1  # fmt: skip
        assert value(samples, N.API_CALLS.prom, api=f"api{i}", model=N.UNKNOWN_MODEL,
                     outcome="error") == 1  # fmt: skip
    assert not matching(samples, N.CARDINALITY_OVERFLOW.prom)
    # One operation past max_operations (1,000): otelperf's cap, counted.
    with otelperf.measure("op1000"):
        pass
    otelperf.record_api_call("api1000", input_tokens=1)
    samples = scrape(t.metrics_url)  # type: ignore[arg-type]
    overflow = N.CARDINALITY_OVERFLOW.prom
    assert value(samples, overflow, component="operation") == 1  # measure()'s pipeline
    assert value(samples, overflow, component="apis") == 1  # the (api, model) table
    # The processor: the duration series once, the totals twice (as a root operation and as
    # the operation of its (root, operation) pair).
    assert value(samples, overflow, component="processor") == 3
    assert value(samples, duration, operation=N.OVERFLOW, outcome="success") == 1
    assert b"otel_metric_overflow" not in get(t.metrics_url)[2]  # type: ignore[arg-type]


def test_configure_gives_its_meter_provider_views_above_the_caps() -> None:
    assert otelperf.telemetry.series_bound(1000) > 2000
    views = otelperf.telemetry.cardinality_views(10)
    assert {v._meter_name for v in views} == {"otelperf", "otelperf.processor",
                                              "otelperf.resources"}  # fmt: skip


# -- defect 4 ------------------------------------------------------------------------------------


def test_generator_exit_raised_in_a_generator_body_ends_its_operation(
    t: otelperf.Telemetry,
) -> None:
    @otelperf.measure("gen")
    def gen() -> Iterator[int]:
        yield 1
        raise GeneratorExit  # the body itself raises it (not close())

    with pytest.raises(GeneratorExit):
        list(gen())
    assert not trace.get_current_span().get_span_context().is_valid  # the span is not current
    stats = t._pipeline.stats("gen")
    assert stats.in_flight == 0
    with otelperf.measure("after") as op:
        assert not op.span.parent  # type: ignore[attr-defined]  # not a child of "gen"
    samples = read_registry(t.registry)
    assert value(samples, N.OPERATION_DURATION.prom + "_count", operation="gen",
                 outcome="success") == 1  # fmt: skip


def test_generator_exit_raised_in_an_async_generator_body_ends_its_operation(
    t: otelperf.Telemetry,
) -> None:
    @otelperf.measure("agen")
    async def agen() -> Any:
        yield 1
        raise GeneratorExit

    async def consume() -> None:
        async for _ in agen():
            pass

    with pytest.raises(GeneratorExit):
        asyncio.run(consume())
    assert t._pipeline.stats("agen").in_flight == 0
    assert not trace.get_current_span().get_span_context().is_valid
    samples = read_registry(t.registry)
    assert value(samples, N.OPERATION_DURATION.prom + "_count", operation="agen",
                 outcome="success") == 1  # fmt: skip


# -- defect 5 ------------------------------------------------------------------------------------


def _in_child(work: Any, timeout: float = 20.0) -> str:
    """Run ``work()`` (returning a str) in a forked child; its answer, or fail if it hangs."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.write(w, str(work()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(r)
            pytest.fail("the forked child hung (shutdown blocked)")
        chunk = os.read(r, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks).decode()


def test_after_fork_the_child_serves_nothing_counts_its_own_and_shuts_down_promptly(
    t: otelperf.Telemetry,
) -> None:
    with otelperf.measure("pre") as op:
        op.add_items(5)
    parent_url = t.metrics_url
    assert parent_url is not None

    def child() -> str:
        url = t.metrics_url
        items = value(read_registry(t.registry), N.OPERATION_ITEMS.prom, operation="pre")
        with otelperf.measure("pre") as op2:
            op2.add_items(2)
        own = value(read_registry(t.registry), N.OPERATION_ITEMS.prom, operation="pre")
        start = time.monotonic()
        t.shutdown()
        return f"{url} {items} {own} {time.monotonic() - start < 3}"

    assert _in_child(child) == "None None 2 True"
    # The parent still serves, with its own count.
    assert value(scrape(parent_url), N.OPERATION_ITEMS.prom, operation="pre") == 5


def test_a_forked_worker_of_a_shared_endpoint_keeps_its_url_and_shuts_down_promptly(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the service directory goes under it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tel = otelperf.configure(service_name="shared", prometheus_port=port,
                             registry=CollectorRegistry(), set_global=False)  # fmt: skip
    try:
        url = tel.metrics_url

        def child() -> str:
            start = time.monotonic()
            shared_url = tel.metrics_url
            tel.shutdown()
            return f"{shared_url} {time.monotonic() - start < 3}"

        assert _in_child(child) == f"{url} True"
        assert get(url)[0] == 200  # type: ignore[arg-type]  # the parent still serves
    finally:
        tel.shutdown()


# -- defect 6 ------------------------------------------------------------------------------------


def test_a_probe_failing_at_start_up_keeps_health_and_the_other_gauges() -> None:
    def broken() -> Any:
        raise OSError("psutil: /proc/stat unreadable")

    reg = CollectorRegistry()
    mp = MeterProvider(metric_readers=[prometheus_reader(reg)])
    monitor = ResourceMonitor(mp, reg, probes=Probes(cpu_times=broken))
    try:
        code, doc = monitor.health()
        assert code == 200 and "cpu" in doc["checks"]
        assert monitor.errors.get("resources") == 2  # both samplers, counted
        samples = read_registry(reg)
        assert value(samples, N.HOST_MEMORY_UTILIZATION.prom) is not None
        assert value(samples, N.INTERNAL_ERRORS.prom, component="resources") == 2
    finally:
        monitor.close()
        mp.shutdown()


# -- defect 9 ------------------------------------------------------------------------------------


def test_processor_caps_through_configure_and_variables() -> None:
    tel = otelperf.configure(
        prometheus_port=0, registry=CollectorRegistry(), set_global=False, start_server=False,
        max_traces_in_flight=5, max_spans_per_trace=3, trace_ttl_seconds=2.5,
    )  # fmt: skip
    try:
        p = _processor(tel)
        assert (p.max_traces_in_flight, p.max_spans_per_trace, p.trace_ttl_seconds) == (5, 3, 2.5)
        assert (p.table.max_traces, p.table.max_spans, p.table.ttl) == (5, 3, 2.5)
    finally:
        tel.shutdown()
    env = {"OTELPERF_MAX_TRACES_IN_FLIGHT": "7", "OTELPERF_MAX_SPANS_PER_TRACE": "9",
           "OTELPERF_TRACE_TTL_SECONDS": "1.5"}  # fmt: skip
    s = resolve(env=env)
    assert (s.max_traces_in_flight, s.max_spans_per_trace, s.trace_ttl_seconds) == (7, 9, 1.5)
    d = resolve(env={})
    assert (d.max_traces_in_flight, d.max_spans_per_trace, d.trace_ttl_seconds) == (
        10000, 1000, 60.0)  # fmt: skip
    for kwargs, named in (
        ({"max_traces_in_flight": 0}, "max_traces_in_flight"),
        ({"max_spans_per_trace": "many"}, "max_spans_per_trace"),
        ({"trace_ttl_seconds": 0}, "trace_ttl_seconds"),
        ({"trace_ttl_seconds": float("inf")}, "trace_ttl_seconds"),
        ({"env": {"OTELPERF_MAX_TRACES_IN_FLIGHT": "-1"}}, "OTELPERF_MAX_TRACES_IN_FLIGHT"),
        ({"env": {"OTELPERF_MAX_SPANS_PER_TRACE": "x"}}, "OTELPERF_MAX_SPANS_PER_TRACE"),
        ({"env": {"OTELPERF_TRACE_TTL_SECONDS": "nan"}}, "OTELPERF_TRACE_TTL_SECONDS"),
    ):
        with pytest.raises(ConfigError, match=named):
            resolve(**kwargs)  # type: ignore[arg-type]


def _span(trace_id: int, span_id: int, parent: int, name: str) -> ReadableSpan:
    ctx = SpanContext(trace_id, span_id, False)
    pctx = SpanContext(trace_id, parent, False) if parent else None
    start = time.time_ns()  # distinct epoch-ns ints, as real spans hold
    return ReadableSpan(name, ctx, pctx, start_time=start, end_time=start + 1_000, resource=_RES)


_RES = Resource.create({})


def _fill_the_default_caps() -> str:
    p = BottleneckSpanProcessor(meter_provider=MeterProvider(), registry=CollectorRegistry())
    tracer = TracerProvider().get_tracer("t")
    roots = [tracer.start_span("root") for _ in range(10_000)]
    children = [(r.get_span_context().trace_id, r.get_span_context().span_id) for r in roots]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for root in roots:  # the roots' own records are part of the worst case
        p.on_start(root)  # type: ignore[arg-type]
    sid = 1 << 40
    for _ in range(25):
        for trace_id, root_id in children:
            sid += 1
            p.on_end(_span(trace_id, sid, root_id, "child"))
    held_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return f"{p.table.held} {p.table.dropped.get('capacity')} {p.table.in_flight()} {held_bytes}"


def test_worst_case_memory_at_the_defaults_is_bounded_and_measured() -> None:
    """Fill the default caps: 10,000 roots in flight, each with children, 250,000 children in
    all. Before, every one was held (2.3 GB at 10,000 x 999); now at most 200,000 spans are
    held across all roots, the rest counted as dropped{reason="capacity"}.  Run in a forked
    child, so the churn leaves no freed-but-resident heap behind for the RSS tests."""
    held, dropped, in_flight, held_bytes = _in_child(_fill_the_default_caps, 120).split()
    assert (held, dropped, in_flight) == ("200000", "50000", "10000")
    # Measured 40.7 MiB (about 150 bytes per held span plus the roots' records); before the
    # global cap, 10,000 x 999 spans were ~2.3 GB.  Bound with room for other Python builds.
    assert int(held_bytes) < 64 * 2**20, held_bytes
    print(f"held 200,000 spans under 10,000 roots: {int(held_bytes) / 2**20:.1f} MiB")


# -- defect 11 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("arg", ["disabled", "track_cpu", "start_server"])
@pytest.mark.parametrize("bad", ["false", "true", 0, 1, "no"])
def test_boolean_arguments_accept_only_booleans(arg: str, bad: object) -> None:
    with pytest.raises(ConfigError, match=arg):
        resolve(env={}, **{arg: bad})  # type: ignore[arg-type]


def test_boolean_variables_still_parse_strictly() -> None:
    assert resolve(env={"OTEL_SDK_DISABLED": "true"}).disabled is True
    assert resolve(env={"OTELPERF_TRACK_CPU": "false"}).track_cpu is False
    assert resolve(disabled=False, track_cpu=True, env={}).track_cpu is True
    with pytest.raises(ConfigError, match="OTELPERF_TRACK_CPU"):
        resolve(env={"OTELPERF_TRACK_CPU": "maybe"})


# -- defect 12 -----------------------------------------------------------------------------------


def test_span_less_records_never_raise_an_internal_failure(t: otelperf.Telemetry) -> None:
    p = _processor(t)

    def broken(*args: object) -> None:
        raise RuntimeError("injected failure inside the processor")

    p.count_cache = broken
    p.count_api = broken
    otelperf.record_cache("sessions", hit=True)  # no exception into the application
    otelperf.record_api_call("openai", input_tokens=3)
    samples = scrape(t.metrics_url)  # type: ignore[arg-type]
    assert value(samples, N.INTERNAL_ERRORS.prom, component="apis") == 2


def test_huge_counts_are_refused_at_the_call_and_never_hide_other_operations(
    t: otelperf.Telemetry,
) -> None:
    with otelperf.measure("first") as op:
        op.add_items(1)
    with otelperf.measure("bad") as op, pytest.raises(ValueError, match="add_items"):
        op.add_items(10**400)
    with otelperf.measure("bad") as op, pytest.raises(ValueError, match="add_bytes"):
        op.add_bytes(2**63)
    with otelperf.measure("later") as op:
        op.add_items(3)
    for kwargs, named in (({"input_tokens": 10**400}, "input_tokens"),
                          ({"output_tokens": 2**63}, "output_tokens"),
                          ({"cost_usd": 10**400}, "cost_usd"),
                          ({"duration_seconds": 10**400}, "duration_seconds")):  # fmt: skip
        with pytest.raises(ValueError, match=named):
            otelperf.record_api_call("openai", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input"), otelperf.api_call("x") as call:
        call.set_tokens(input=10**400)
    samples = scrape(t.metrics_url)  # type: ignore[arg-type]
    assert value(samples, N.OPERATION_ITEMS.prom, operation="first") == 1
    assert value(samples, N.OPERATION_ITEMS.prom, operation="later") == 3
    assert value(samples, N.OPERATION_ITEMS.prom, operation="bad") is None
    assert not matching(samples, N.INTERNAL_ERRORS.prom)


# -- interruptions are not errors ------------------------------------------------------------------


def test_cancellation_and_shutdown_are_not_errors(t: otelperf.Telemetry) -> None:
    async def cancelled() -> None:
        async with otelperf.measure("cancelled"):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
    for exc in (KeyboardInterrupt, SystemExit):
        with pytest.raises(exc), otelperf.measure("stopped"):
            raise exc()
    with pytest.raises(asyncio.CancelledError), otelperf.api_call("llm"):
        raise asyncio.CancelledError
    otelperf.record_api_call("llm", error=asyncio.CancelledError())
    # A span an instrumentation ended with status ERROR is still an error.
    tracer = t.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handler") as span:
        span.set_status(Status(StatusCode.ERROR))
    samples = scrape(t.metrics_url)  # type: ignore[arg-type]
    duration = N.OPERATION_DURATION.prom + "_count"
    assert value(samples, duration, operation="cancelled", outcome="success") == 1
    assert value(samples, duration, operation="stopped", outcome="success") == 2
    assert not matching(samples, duration, operation="cancelled", outcome="error")
    assert not matching(samples, duration, operation="stopped", outcome="error")
    assert value(samples, N.API_CALLS.prom, api="llm", model=N.UNKNOWN_MODEL,
                 outcome="success") == 2  # fmt: skip
    assert not matching(samples, N.API_CALLS.prom, outcome="error")
    assert value(samples, duration, operation="handler", outcome="error",
                 error_type="_OTHER") == 1  # fmt: skip
