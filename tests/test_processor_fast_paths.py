"""The processor's per-span shortcuts (speed goal 1 of issue 12) change nothing it reports.

Each shortcut has a slower general path; these tests run both on real SDK TracerProviders and
compare every metric the processor serves, so a shortcut that drifts from its general path
fails here: the hooks reading the SDK span's fields versus PublicView (its public properties,
what an SDK whose layout the probe does not recognise gets), the by-name series lookup versus
the namer, the C builtin answering the SDK's ``_on_ending``, and shutdown's no-op hooks.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import _names as N
from otelperf._core import sdk_compat
from otelperf.derive.naming import SpanNamer
from otelperf.derive.processor import BottleneckSpanProcessor
from tests.scrape import read_registry

MS = 1_000_000


class Rig:
    def __init__(self, **kwargs: Any) -> None:
        self.registry = CollectorRegistry()
        self.mp = MeterProvider(metric_readers=[otelperf.prometheus_reader(self.registry)])
        self.tp = TracerProvider()
        self.processor = BottleneckSpanProcessor(
            meter_provider=self.mp, registry=self.registry, **kwargs
        )
        self.tp.add_span_processor(self.processor)
        self.tracer = self.tp.get_tracer("test")

    def close(self) -> None:
        self.tp.shutdown()
        self.mp.shutdown()


def requests(tracer: trace.Tracer, n: int = 3) -> None:
    """Requests of every kind the shortcuts tell apart: INTERNAL steps (by name), a SERVER
    span with HTTP attributes, CLIENT calls (API accounting), an error, overlapping children,
    a grandchild and an ASGI ``http send`` child (noise)."""
    for i in range(n):
        t0 = i * 100 * MS
        server = tracer.start_span(
            "GET /items/{id}", kind=SpanKind.SERVER, start_time=t0,
            attributes={"http.method": "GET", "http.route": "/items/{id}"},
        )  # fmt: skip
        ctx = trace.set_span_in_context(server)
        load = tracer.start_span("load", context=ctx, start_time=t0 + 1 * MS)
        inner = tracer.start_span(
            "parse", context=trace.set_span_in_context(load), start_time=t0 + 2 * MS
        )
        inner.end(end_time=t0 + 3 * MS)
        load.end(end_time=t0 + 4 * MS)
        calls = []
        for k in range(3):
            attrs = {"http.method": "GET", "http.url": f"http://10.0.0.{k}:8080/x",
                     "http.status_code": 200 if k else 503}  # fmt: skip
            calls.append(
                tracer.start_span(
                    "GET",
                    context=ctx,
                    kind=SpanKind.CLIENT,
                    start_time=t0 + (4 + k) * MS,
                    attributes=attrs,
                )
            )
        for k, call in enumerate(calls):  # all three overlap
            call.end(end_time=t0 + (20 + k) * MS)
        failing = tracer.start_span("save", context=ctx, start_time=t0 + 23 * MS)
        failing.set_status(Status(StatusCode.ERROR))
        failing.end(end_time=t0 + 25 * MS)
        tracer.start_span("GET /items/{id} http send", context=ctx, start_time=t0 + 25 * MS).end(
            end_time=t0 + 26 * MS
        )
        server.end(end_time=t0 + 30 * MS)


def served(rig: Rig) -> dict[Any, float]:
    """Everything the processor serves, its own error and drop counters included."""
    return {
        k: v
        for k, v in read_registry(rig.registry).items()
        if k[0].startswith("otelperf_") and "process" not in k[0]
    }


def test_public_view_serves_exactly_what_the_direct_field_reads_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    direct = Rig()
    try:
        table = direct.processor.table
        assert direct.processor.on_end == table.on_end  # the SDK calls the table directly
        requests(direct.tracer)
        want = served(direct)
    finally:
        direct.close()
    monkeypatch.setattr(sdk_compat, "DIRECT_FIELDS", False)  # an SDK the probe fails on
    viewed = Rig()
    try:
        assert viewed.processor.on_end != viewed.processor.table.on_end
        requests(viewed.tracer)
        got = served(viewed)
    finally:
        viewed.close()
    ops = {dict(k[1]).get(N.OPERATION) for k in want if k[0] == N.OPERATION_DURATION.series[0]}
    assert {"load", "parse", "save", "GET 10.0.0.1:8080", "GET /items/{id}"} <= ops
    assert got == want


def test_names_alone_go_straight_to_their_series_only_with_the_span_namer() -> None:
    class Shouting(SpanNamer):
        def classify(self, name: str, *args: Any) -> Any:
            r = super().classify(name, *args)
            return r and (r[0].upper(), *r[1:])

    plain, custom = Rig(), Rig(namer=Shouting())
    try:
        for rig in (plain, custom):
            requests(rig.tracer)
        assert set(plain.processor.table.by_name) == {"load", "parse", "GET /items/{id} http send"}
        assert plain.processor.table.by_name["GET /items/{id} http send"] is False  # noise
        assert custom.processor.table.by_name == {}  # a namer of its own is always asked
        h = N.OPERATION_DURATION.series[0]
        ops = {dict(k[1])[N.OPERATION] for k in served(custom) if k[0] == h}
        assert {"LOAD", "PARSE", "SAVE"} <= ops and "load" not in ops
    finally:
        plain.close()
        custom.close()


def test_a_name_past_the_cap_is_counted_as_an_overflow_on_every_span() -> None:
    rig = Rig(max_operations=1)
    try:
        for _ in range(3):
            rig.tracer.start_span("first", start_time=0).end(end_time=MS)
        for _ in range(3):
            rig.tracer.start_span("second", start_time=0).end(end_time=MS)
        assert "second" not in rig.processor.table.by_name
        v = rig.registry.get_sample_value
        h = N.OPERATION_DURATION.prom
        assert v(h + "_count", {"operation": N.OVERFLOW, "outcome": "success"}) == 3
        # 3 duration observations, and per root its name and its (root, operation) pair
        assert v(N.CARDINALITY_OVERFLOW.prom, {"component": "processor"}) == 3 + 3 * 2
    finally:
        rig.close()


def test_the_sdk_empty_on_ending_is_answered_by_a_builtin() -> None:
    assert sdk_compat.NO_OP_ON_ENDING
    rig = Rig()
    try:
        assert rig.processor._on_ending is callable
        requests(rig.tracer, 1)
        assert rig.registry.get_sample_value(N.ROOTS.prom, {N.ROOT_OPERATION: "GET /items/{id}"})
    finally:
        rig.close()

    class Ending(BottleneckSpanProcessor):
        seen = 0

        def _on_ending(self, span: Any) -> None:
            Ending.seen += 1

    tp = TracerProvider()
    p = Ending(meter_provider=MeterProvider(), registry=CollectorRegistry())
    tp.add_span_processor(p)
    tp.get_tracer("t").start_span("x").end()
    assert Ending.seen == 1  # an override of its own is kept
    assert SpanProcessor._on_ending is not callable  # type: ignore[comparison-overlap]
    tp.shutdown()


def test_a_shut_down_processor_still_attached_records_nothing() -> None:
    rig = Rig()
    try:
        requests(rig.tracer, 1)
        before = served(rig)
        rig.processor.shutdown()
        requests(rig.tracer, 2)  # the SDK still calls it: it was never removed
        assert served(rig) == before
    finally:
        rig.close()
