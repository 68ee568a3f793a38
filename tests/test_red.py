"""The processor's duration histogram for every span (issue 12): exact counts, sums and buckets
per (operation, outcome, error_type) on a real SDK TracerProvider, caps, threads, sampling,
fork, and OpenMetrics exemplars over a real scrape."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

import otelperf
from otelperf import _names as N
from otelperf.derive.processor import BottleneckSpanProcessor
from otelperf.emit.operation import MAX_ERROR_TYPES
from tests.scrape import get

H = N.OPERATION_DURATION.prom
MS = 1_000_000  # ns
LES = [f"{b}" for b in N.DEFAULT_DURATION_BUCKETS] + ["+Inf"]


class Rig:
    """A processor on a fresh TracerProvider, serving into a fresh registry."""

    def __init__(self, sampler: Any = None, **kwargs: Any) -> None:
        self.registry = CollectorRegistry()
        self.mp = MeterProvider(metric_readers=[otelperf.prometheus_reader(self.registry)])
        self.tp = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        self.processor = BottleneckSpanProcessor(
            meter_provider=self.mp, registry=self.registry, **kwargs
        )
        self.tp.add_span_processor(self.processor)
        self.tracer = self.tp.get_tracer("test")

    def hist(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of the duration family by (name, labels); an empty error_type (written
        only when another series has one) is dropped, as Prometheus drops empty labels."""
        out = {}
        for fam in parse_om(openmetrics_latest(self.registry).decode()):
            if fam.name == H.removesuffix("_seconds") or fam.name == H:
                for s in fam.samples:
                    out[(s.name, frozenset((k, v) for k, v in s.labels.items() if v))] = s.value
        return out

    def close(self) -> None:
        self.tp.shutdown()
        self.mp.shutdown()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()


def series(op: str, outcome: str, error_type: str = "", **extra: str) -> frozenset[Any]:
    labels = {"operation": op, "outcome": outcome, "error_type": error_type, **extra}
    return frozenset((k, v) for k, v in labels.items() if v)


def assert_series(h: dict[Any, float], op: str, outcome: str, error_type: str,
                  durations_ns: list[int]) -> None:  # fmt: skip
    """The series holds exactly these durations: count, ns-exact sum, every cumulative bucket."""
    assert h[(H + "_count", series(op, outcome, error_type))] == len(durations_ns)
    assert h[(H + "_sum", series(op, outcome, error_type))] == sum(durations_ns) / 1e9
    for le, bound in zip(LES, [*N.DEFAULT_DURATION_BUCKETS, float("inf")], strict=True):
        want = sum(1 for d in durations_ns if d / 1e9 <= bound)
        assert h[(H + "_bucket", series(op, outcome, error_type, le=le))] == want, le


def request(tracer: trace.Tracer, t0: int, client_status: int, server_status: int) -> None:
    """A FastAPI-shaped request: the SERVER span, its ASGI ``http send`` child (noise), an
    INTERNAL step and an httpx-shaped CLIENT call (old HTTP conventions)."""
    server = tracer.start_span(
        "GET /items/{item_id}", kind=SpanKind.SERVER, start_time=t0,
        attributes={"http.method": "GET", "http.route": "/items/{item_id}",
                    "http.target": "/items/7"},
    )  # fmt: skip
    ctx = trace.set_span_in_context(server)
    step = tracer.start_span("load", context=ctx, start_time=t0 + 1 * MS)
    step.end(end_time=t0 + 3 * MS)
    client = tracer.start_span(
        "GET", context=ctx, kind=SpanKind.CLIENT, start_time=t0 + 3 * MS,
        attributes={"http.method": "GET", "http.url": "http://127.0.0.1:8000/stock?id=7",
                    "http.status_code": client_status},
    )  # fmt: skip
    client.end(end_time=t0 + 10 * MS)
    send = tracer.start_span("GET /items/{item_id} http send", context=ctx, start_time=t0 + 10 * MS)
    send.end(end_time=t0 + 12 * MS)
    server.set_attribute("http.status_code", server_status)
    if server_status >= 500:
        server.set_status(Status(StatusCode.ERROR))
    server.end(end_time=t0 + 12 * MS)


def test_server_client_internal_spans_exact_per_outcome(rig: Rig):
    # 3 requests all fine, 2 whose stock call answers 404 (a client error, the server fine), 1
    # whose stock call answers 503 and the server 500.
    for i, (cs, ss) in enumerate([(200, 200)] * 3 + [(404, 200)] * 2 + [(503, 500)]):
        request(rig.tracer, i * 100 * MS, cs, ss)
    h = rig.hist()
    route, stock = "GET /items/{item_id}", "GET 127.0.0.1:8000"
    assert_series(h, route, "success", "", [12 * MS] * 5)
    assert_series(h, route, "error", "500", [12 * MS])
    assert_series(h, "load", "success", "", [2 * MS] * 6)
    assert_series(h, stock, "success", "", [7 * MS] * 3)
    assert_series(h, stock, "error", "404", [7 * MS] * 2)
    assert_series(h, stock, "error", "503", [7 * MS])
    # Exactly these series (the ASGI ``http send`` span is noise: no series of its own).
    assert {dict(k)["operation"] for name, k in h if name == H + "_count"} == {route, "load", stock}
    assert len([1 for name, _ in h if name == H + "_count"]) == 6

    # The shares are filed under the same names; the noise span's 2 ms stay with the server.
    page = parse_om(openmetrics_latest(rig.registry).decode())
    s = {(m.name, frozenset(m.labels.items())): m.value for fam in page for m in fam.samples}

    def cp(op: str) -> float:
        return s[("otelperf_critical_path_seconds_total",
                  frozenset({"root_operation": route, "operation": op}.items()))]  # fmt: skip

    assert cp(stock) == 6 * 7 * MS / 1e9
    assert cp("load") == 6 * 2 * MS / 1e9
    assert cp(route) == 6 * 3 * MS / 1e9  # [0,1] + [10,12]: its gaps, http send included
    assert not any(dict(k).get("operation", "").endswith("http send") for _, k in s)


def test_measure_span_counted_once_with_exception_class_as_error_type():
    reg = CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=reg, set_global=False)
    try:

        @otelperf.measure("charge")
        def charge(fail: bool) -> None:
            if fail:
                raise KeyError("card")

        for fail in (False, False, True):
            try:
                charge(fail)
            except KeyError:
                pass
        with otelperf.measure("outer"):
            with otelperf.measure("inner"):
                pass
        text = generate_latest(reg).decode()
        # one family, served once (not also by the OTel exporter)
        assert text.count(f"# TYPE {H} histogram") == 1
        v = reg.get_sample_value
        assert v(H + "_count", {"operation": "charge", "outcome": "success", "error_type": ""}) == 2
        assert v(H + "_count", {"operation": "charge", "outcome": "error",
                                "error_type": "KeyError"}) == 1  # fmt: skip
        assert v(H + "_count", {"operation": "outer", "outcome": "success", "error_type": ""}) == 1
        assert v(H + "_count", {"operation": "inner", "outcome": "success", "error_type": ""}) == 1
    finally:
        t.shutdown()


def test_lazy_pipeline_records_its_own_histogram_only_while_no_processor_runs():
    from otelperf.emit import pipeline

    pipeline.install(None)
    first = pipeline.current_pipeline()
    assert first.lazy
    rig = Rig()  # a processor starts: the lazy pipeline is rebuilt, leaving durations to it
    try:
        second = pipeline.current_pipeline()
        assert second is not first and second.lazy and not second.record_duration
    finally:
        rig.close()
        rig.processor.shutdown()
        pipeline.install(None)


def test_ratio_zero_sampling_is_exact_and_leaves_no_exemplar():
    rig = Rig(sampler=ParentBased(TraceIdRatioBased(0.0)))
    reg = CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=reg, set_global=False,
                           tracer_provider=rig.tp, meter_provider=rig.mp)  # fmt: skip
    try:
        tracer = rig.tp.get_tracer("late")
        for i in range(40):
            root = tracer.start_span("job", start_time=i * 10 * MS)
            assert not root.get_span_context().trace_flags.sampled
            root.end(end_time=i * 10 * MS + 3 * MS)
        text = openmetrics_latest(reg).decode()
        assert reg.get_sample_value(H + "_count", {"operation": "job", "outcome": "success"}) == 40
        assert reg.get_sample_value(H + "_sum", {"operation": "job", "outcome": "success"}) == (
            40 * 3 * MS / 1e9
        )
        assert "trace_id" not in text  # unsampled spans leave no exemplar
    finally:
        t.shutdown()
        rig.close()


def test_exemplar_on_the_right_bucket_over_a_real_openmetrics_scrape():
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False)
    try:
        tracer = t.tracer_provider.get_tracer("app")
        span = tracer.start_span("slow", start_time=1_000 * MS)
        span.end(end_time=1_000 * MS + 40 * MS)  # 0.04 s: the le="0.05" bucket
        sc = span.get_span_context()
        assert sc.trace_flags.sampled
        status, headers, body = get(t.metrics_url, "application/openmetrics-text; version=1.0.0")
        assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
        lines = [ln for ln in body.decode().splitlines() if 'operation="slow"' in ln and "#" in ln]
        assert lines == [
            f'{H}_bucket{{le="0.05",operation="slow",outcome="success"}} 1.0 # '
            f'{{span_id="{sc.span_id:016x}",trace_id="{sc.trace_id:032x}"}} 0.04 1.04'
        ]
        # The Prometheus text format carries no exemplars.
        status, headers, body = get(t.metrics_url)
        assert headers["Content-Type"].startswith("text/plain")
        assert 'le="0.05",operation="slow",outcome="success"} 1.0\n' in body.decode()
        assert "trace_id" not in body.decode()
    finally:
        t.shutdown()


def test_exemplar_keeps_the_latest_sampled_span_per_bucket(rig: Rig):
    ids = []
    for i in range(3):
        s = rig.tracer.start_span("op", start_time=i * 10 * MS)
        s.end(end_time=i * 10 * MS + 2 * MS)  # all in le="0.0025"
        ids.append(s.get_span_context().trace_id)
    fams = {f.name: f for f in parse_om(openmetrics_latest(rig.registry).decode())}
    ex = [s.exemplar for s in fams[H].samples if s.exemplar]
    assert len(ex) == 1 and ex[0].labels["trace_id"] == f"{ids[-1]:032x}"


def test_caps_overflow_operations_and_error_types():
    rig = Rig(max_operations=3)
    try:
        for i in range(5):
            rig.tracer.start_span(f"op{i}", start_time=0).end(end_time=MS)
        for i in range(MAX_ERROR_TYPES + 5):
            s = rig.tracer.start_span("op0", start_time=0)
            s.set_attribute("error.type", f"E{i}")
            s.set_status(Status(StatusCode.ERROR))
            s.end(end_time=MS)
        v = rig.registry.get_sample_value
        for i in range(3):
            assert v(H + "_count", {"operation": f"op{i}", "outcome": "success",
                                    "error_type": ""}) == 1  # fmt: skip
        assert v(H + "_count", {"operation": N.OVERFLOW, "outcome": "success",
                                "error_type": ""}) == 2  # fmt: skip
        assert v(H + "_count", {"operation": "op0", "outcome": "error",
                                "error_type": N.OVERFLOW}) == 5  # fmt: skip
        assert v(H + "_count", {"operation": "op0", "outcome": "error", "error_type": "E49"}) == 1
        n_series = len([1 for k in rig.hist() if k[0] == H + "_count"])
        assert n_series == 3 + 1 + MAX_ERROR_TYPES + 1
        red = rig.processor.red
        assert len({id(s) for s in red.series.values()}) == n_series  # bounded
        # 2 overflowed operations and 5 overflowed error types; the shares' own cap counts each
        # root past it twice (its name and its (root, operation) pair), as before issue 12.
        assert v("otelperf_cardinality_overflow_total", {"component": "processor"}) == 2 + 5 + 2 * 2
    finally:
        rig.close()


def test_sixteen_threads_exact(rig: Rig):
    n = 500

    def work(k: int) -> None:
        for i in range(n):
            root = rig.tracer.start_span(f"t{k % 4}", start_time=i * 10 * MS)
            ctx = trace.set_span_in_context(root)
            rig.tracer.start_span("child", context=ctx, start_time=i * 10 * MS).end(
                end_time=i * 10 * MS + MS
            )
            root.end(end_time=i * 10 * MS + 3 * MS)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    h = rig.hist()
    assert h[(H + "_count", series("child", "success"))] == 16 * n
    assert h[(H + "_sum", series("child", "success"))] == 16 * n * MS / 1e9
    for k in range(4):
        assert_series(h, f"t{k}", "success", "", [3 * MS] * (4 * n))


def test_a_failing_namer_is_counted_never_raised():
    class Broken:
        def classify(self, *args: Any) -> None:
            raise RuntimeError("boom")

    rig = Rig(namer=Broken())
    try:
        rig.tracer.start_span("x").end()
        v = rig.registry.get_sample_value
        assert v("otelperf_internal_errors_total", {"component": "processor"}) == 1
        assert v(H + "_count", {"operation": "x", "outcome": "success"}) is None
    finally:
        rig.close()


def test_bad_buckets_name_the_argument():
    with pytest.raises(ValueError, match="duration_buckets"):
        BottleneckSpanProcessor(meter_provider=MeterProvider(), duration_buckets=[1.0, 0.5])
    with pytest.raises(ValueError, match="duration_buckets"):
        BottleneckSpanProcessor(meter_provider=MeterProvider(), duration_buckets="x")


def test_configured_buckets(rig: Rig):
    r = Rig(duration_buckets=(0.001, 0.01))
    try:
        r.tracer.start_span("op", start_time=0).end(end_time=5 * MS)
        v = r.registry.get_sample_value
        got = [v(H + "_bucket", {"operation": "op", "outcome": "success", "le": le})
               for le in ("0.001", "0.01", "+Inf")]  # fmt: skip
        assert got == [0, 1, 1]
    finally:
        r.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_after_fork_starts_with_empty_series(rig: Rig):
    rig.tracer.start_span("before", start_time=0).end(end_time=MS)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it sees, then leave without running pytest teardown
        code = 1
        try:
            empty = not rig.processor.red.series
            rig.tracer.start_span("after", start_time=0).end(end_time=MS)
            v = rig.registry.get_sample_value
            got = (v(H + "_count", {"operation": "before", "outcome": "success"}),
                   v(H + "_count", {"operation": "after", "outcome": "success"}))  # fmt: skip
            os.write(w, f"{empty} {got}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 200).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == "True (None, 1)"
    assert rig.registry.get_sample_value(H + "_count", {"operation": "before",
                                                         "outcome": "success"}) == 1  # fmt: skip


def test_latency_panels_ask_for_exemplars():
    import json
    from pathlib import Path

    doc = json.loads((Path(__file__).parent.parent / "dashboards" / "overview.json").read_text())
    flags = {
        p["title"]: [t.get("exemplar", False) for t in p.get("targets", [])]
        for p in doc["panels"]
        if "targets" in p
    }
    assert {t: f for t, f in flags.items() if any(f)} == {
        "Latency p50": [True],
        "Latency p95": [True],
        "Latency p99": [True],
    }


def test_a_taken_name_on_the_registry_is_logged_not_raised(caplog: pytest.LogCaptureFixture):
    from prometheus_client import Histogram

    reg = CollectorRegistry()
    Histogram("otelperf_operation_duration", "taken", unit="seconds", registry=reg)
    p = BottleneckSpanProcessor(meter_provider=MeterProvider(), registry=reg)
    try:
        assert "cannot serve otelperf_operation_duration_seconds" in caplog.text
    finally:
        p.shutdown()
