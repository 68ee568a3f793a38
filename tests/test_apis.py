"""Cache and external-API accounting: api_call(), record_*(), prices, and spans shaped exactly
as the GenAI and HTTP client instrumentations make them, counted without code changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import _names as N
from otelperf.emit import apis
from otelperf.emit import prices as price_table
from tests.scrape import read_registry, scrape

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


read = read_registry


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def family(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {k[1]: v for k, v in samples.items() if k[0] == name}


CALLS = N.API_CALLS.prom
TOKENS = N.API_TOKENS.prom
COST = N.API_COST.prom
DUR_COUNT = N.API_CALL_DURATION.prom + "_count"
DUR_SUM = N.API_CALL_DURATION.prom + "_sum"
CACHE = N.CACHE_REQUESTS.prom


@pytest.fixture(autouse=True)
def no_prices() -> Iterator[None]:
    price_table.clear_prices()
    yield
    price_table.clear_prices()


@pytest.fixture
def tel() -> Iterator[otelperf.Telemetry]:
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False)
    yield t
    t.shutdown()


def client_span(tel: otelperf.Telemetry, name: str, attrs: dict[str, Any], *, start: int,
                end: int, end_attrs: dict[str, Any] | None = None,
                error: bool = False) -> None:  # fmt: skip
    tracer = tel.tracer_provider.get_tracer("opentelemetry.instrumentation.test")
    span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs, start_time=start)
    for k, v in (end_attrs or {}).items():
        span.set_attribute(k, v)
    if error:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=end)


def test_genai_client_span_as_the_openai_instrumentation_makes_it(tel: otelperf.Telemetry):
    otelperf.set_api_price("openai", "gpt-4o-mini", input_per_million_usd=0.15,
                           output_per_million_usd=0.6)  # fmt: skip
    start_attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    end_attrs = {
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
    }
    client_span(tel, "chat gpt-4o-mini", start_attrs, start=0, end=250_000_000,
                end_attrs=end_attrs)  # fmt: skip
    s = read(tel.registry)
    labels = {"api": "openai", "model": "gpt-4o-mini"}
    assert family(s, CALLS) == {frozenset({**labels, "outcome": "success"}.items()): 1}
    assert get(s, TOKENS, **labels, token_type="input") == 1200
    assert get(s, TOKENS, **labels, token_type="output") == 300
    assert get(s, COST, **labels) == (1200 * 0.15 + 300 * 0.6) / 1e6
    assert get(s, DUR_COUNT, **labels, outcome="success") == 1
    assert get(s, DUR_SUM, **labels, outcome="success") == 0.25


def test_genai_provider_name_and_error_type_make_an_error(tel: otelperf.Telemetry):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
             "gen_ai.request.model": "claude-sonnet-4"}  # fmt: skip
    client_span(tel, "chat claude-sonnet-4", attrs, start=0, end=10,
                end_attrs={"error.type": "RateLimitError"}, error=True)  # fmt: skip
    usage = {"gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": 3}
    client_span(tel, "chat claude-sonnet-4", attrs, start=0, end=10, end_attrs=usage)
    s = read(tel.registry)
    labels = {"api": "anthropic", "model": "claude-sonnet-4"}
    assert family(s, CALLS) == {
        frozenset({**labels, "outcome": "error"}.items()): 1,
        frozenset({**labels, "outcome": "success"}.items()): 1,
    }
    assert get(s, TOKENS, **labels, token_type="input") == 7
    assert family(s, COST) == {}  # no price, no cost given: no cost recorded


def test_http_client_spans_as_httpx_and_requests_make_them(tel: otelperf.Telemetry):
    base = {"http.request.method": "GET", "url.full": "https://api.example.com/v1/geo",
            "server.address": "api.example.com", "server.port": 443}  # fmt: skip
    client_span(tel, "GET", base, start=0, end=1_000_000,
                end_attrs={"http.response.status_code": 200})  # fmt: skip
    client_span(tel, "GET", base, start=0, end=3_000_000,
                end_attrs={"http.response.status_code": 503, "error.type": "503"},
                error=True)  # fmt: skip
    client_span(
        tel, "GET", base, start=0, end=2_000_000, end_attrs={"http.response.status_code": 500}
    )  # >= 500 even without error.type
    client_span(tel, "GET", base, start=0, end=2_000_000,
                end_attrs={"http.response.status_code": 429, "error.type": "429"})  # fmt: skip
    client_span(
        tel, "GET", base, start=0, end=2_000_000, end_attrs={"http.response.status_code": 404}
    )  # a 4xx without error.type: ok
    # not counted: a SERVER span and an INTERNAL span with the same attributes
    tracer = tel.tracer_provider.get_tracer("x")
    tracer.start_span("GET /geo", kind=SpanKind.SERVER, attributes=base).end()
    tracer.start_span("helper", attributes=base).end()
    s = read(tel.registry)
    labels = {"api": "api.example.com", "model": N.UNKNOWN_MODEL}
    assert family(s, CALLS) == {
        frozenset({**labels, "outcome": "success"}.items()): 2,
        frozenset({**labels, "outcome": "error"}.items()): 3,
    }
    assert get(s, DUR_SUM, **labels, outcome="error") == 0.007
    assert family(s, TOKENS) == {}


def test_api_call_context_manager_tokens_price_and_set_cost(tel: otelperf.Telemetry):
    otelperf.set_api_price("openai", "gpt-4o", input_per_million_usd=2.5,
                           output_per_million_usd=10.0)  # fmt: skip
    with otelperf.api_call("openai", model="gpt-4o") as call:
        call.set_tokens(input=1000, output=200)
        assert call.span.is_recording()
    with otelperf.api_call("openai", model="gpt-4o") as call:
        call.set_tokens(input=10, output=0)
        call.set_cost(0.5)  # given: the price table is not used
    with pytest.raises(KeyError), otelperf.api_call("openai", model="gpt-4o"):
        raise KeyError("boom")
    s = read(tel.registry)
    labels = {"api": "openai", "model": "gpt-4o"}
    assert get(s, CALLS, **labels, outcome="success") == 2
    assert get(s, CALLS, **labels, outcome="error") == 1
    assert get(s, TOKENS, **labels, token_type="input") == 1010
    assert get(s, TOKENS, **labels, token_type="output") == 200
    assert get(s, COST, **labels) == (1000 * 2.5 + 200 * 10.0) / 1e6 + 0.5
    assert get(s, DUR_COUNT, **labels, outcome="error") == 1


def test_api_call_decorator_sync_and_async_and_nested_under_a_root(tel: otelperf.Telemetry):
    @otelperf.api_call("geocoder")
    def geocode(address: str) -> str:
        return address.upper()

    @otelperf.api_call("llm", model="m1")
    async def complete(prompt: str) -> str:
        await asyncio.sleep(0)
        return prompt[::-1]

    @otelperf.measure("handle")
    def handle() -> str:
        return geocode("x") + asyncio.run(complete("ab"))

    assert handle() == "Xba"
    assert geocode.__name__ == "geocode"
    s = read(tel.registry)
    assert get(s, CALLS, api="geocoder", model=N.UNKNOWN_MODEL, outcome="success") == 1
    assert get(s, CALLS, api="llm", model="m1", outcome="success") == 1
    # the API spans are operations on the critical path of their root
    ops = {dict(k)["operation"] for k in family(s, N.CRITICAL_PATH.prom)}
    assert ops == {"handle", "geocoder", "llm m1"}


def test_record_api_call_records_into_the_same_instruments(tel: otelperf.Telemetry):
    otelperf.set_api_price("openai", "gpt-4o", input_per_million_usd=2.5,
                           output_per_million_usd=10.0)  # fmt: skip
    otelperf.record_api_call("openai", model="gpt-4o", input_tokens=400, output_tokens=100,
                             duration_seconds=0.5)  # fmt: skip
    otelperf.record_api_call("openai", model="gpt-4o", error=TimeoutError("t"), cost_usd=0.0)
    otelperf.record_api_call("maps", duration_seconds=0.25)
    with otelperf.api_call("openai", model="gpt-4o"):  # the span path: same series
        pass
    s = read(tel.registry)
    assert family(s, CALLS) == {
        frozenset({("api", "openai"), ("model", "gpt-4o"), ("outcome", "success")}): 2,
        frozenset({("api", "openai"), ("model", "gpt-4o"), ("outcome", "error")}): 1,
        frozenset({("api", "maps"), ("model", N.UNKNOWN_MODEL), ("outcome", "success")}): 1,
    }
    assert get(s, COST, api="openai", model="gpt-4o") == (400 * 2.5 + 100 * 10.0) / 1e6
    assert get(s, DUR_SUM, api="maps", model=N.UNKNOWN_MODEL, outcome="success") == 0.25
    assert get(s, DUR_COUNT, api="openai", model="gpt-4o", outcome="success") == 2
    assert get(s, DUR_COUNT, api="openai", model="gpt-4o", outcome="error") is None


def test_cache_by_call_and_by_span_attributes_through_a_real_scrape(tel: otelperf.Telemetry):
    for hit in (True, True, False):
        otelperf.record_cache("sessions", hit)
    tracer = tel.tracer_provider.get_tracer("x")
    tracer.start_span("cache.get", attributes={N.ATTR_CACHE_NAME: "prices",
                                               N.ATTR_CACHE_HIT: False}).end()  # fmt: skip
    # not a bool: ignored
    tracer.start_span("cache.get", attributes={N.ATTR_CACHE_NAME: "prices",
                                               N.ATTR_CACHE_HIT: "yes"}).end()  # fmt: skip
    assert tel.metrics_url is not None
    s = scrape(tel.metrics_url)
    assert {k[1]: v for k, v in s.items() if k[0] == CACHE} == {
        frozenset({("cache", "sessions"), ("result", "hit")}): 2,
        frozenset({("cache", "sessions"), ("result", "miss")}): 1,
        frozenset({("cache", "prices"), ("result", "miss")}): 1,
    }


def test_cache_and_api_label_caps_overflow():
    reg = CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=reg, set_global=False, max_operations=2)
    try:
        for i in range(3):
            otelperf.record_api_call(f"api{i}", model="m")
        for i in range(5):
            otelperf.record_cache(f"c{i}", True)
        s = read(reg)
        assert family(s, CALLS) == {
            frozenset({("api", "api0"), ("model", "m"), ("outcome", "success")}): 1,
            frozenset({("api", "api1"), ("model", "m"), ("outcome", "success")}): 1,
            frozenset({("api", N.OVERFLOW), ("model", N.OVERFLOW), ("outcome", "success")}): 1,
        }
        assert get(s, CACHE, cache=N.OVERFLOW, result="hit") == 1  # cap: 2 * max_operations
        assert get(s, N.CARDINALITY_OVERFLOW.prom, component="apis") == 2
    finally:
        t.shutdown()


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: otelperf.record_cache("", True), r"record_cache\(cache=''\)"),
        (lambda: otelperf.record_cache("c", 1), r"record_cache\(hit=1\)"),
        (lambda: otelperf.record_api_call("a", input_tokens=-1), r"input_tokens=-1"),
        (lambda: otelperf.record_api_call("a", output_tokens=1.5), r"output_tokens=1.5"),
        (lambda: otelperf.record_api_call("a", cost_usd=float("nan")), r"cost_usd=nan"),
        (lambda: otelperf.record_api_call("a", model=""), r"model=''"),
        (lambda: otelperf.record_api_call("a", error=3), r"error=3"),
        (lambda: otelperf.record_api_call("a", duration_seconds=-2), r"duration_seconds=-2"),
        (lambda: otelperf.api_call(""), r"api_call\(api=''\)"),
        (
            lambda: otelperf.set_api_price(
                "a", "m", input_per_million_usd=-1, output_per_million_usd=1
            ),
            r"input_per_million_usd=-1",
        ),
    ],
)
def test_bad_arguments_name_the_argument(call: Any, pattern: str):
    with pytest.raises((TypeError, ValueError), match=pattern):
        call()


def test_set_tokens_validates_and_prices_are_a_copy():
    with pytest.raises(ValueError, match=r"set_tokens\(input=-3\)"):
        with otelperf.api_call("a") as call:
            call.set_tokens(input=-3)
    otelperf.set_api_price("a", "m", input_per_million_usd=1, output_per_million_usd=2)
    table = price_table.prices()
    table.clear()
    # cached input at the input price, reasoning at the output price unless set
    assert price_table.prices() == {("a", "m"): (1.0, 2.0, 1.0, 2.0)}


def test_without_a_processor_records_are_dropped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
):
    assert apis.active_processor() is None
    apis._warned.clear()
    with caplog.at_level(logging.WARNING, logger="otelperf"):
        otelperf.record_cache("c", True)
        otelperf.record_cache("c", False)
        otelperf.record_api_call("a")
        otelperf.record_api_call("a")
        with otelperf.api_call("a") as call:  # a non-recording span: nothing to count into
            call.set_tokens(input=1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "otelperf.record_cache(): no BottleneckSpanProcessor is running" in warnings[0]
    assert "otelperf.record_api_call()" in warnings[1]


def test_manual_processor_is_the_sink_without_configure():
    from opentelemetry.sdk.metrics import MeterProvider

    reg = CollectorRegistry()
    mp = MeterProvider(metric_readers=[otelperf.prometheus_reader(reg)])
    tp = TracerProvider()
    p = otelperf.BottleneckSpanProcessor(meter_provider=mp)
    tp.add_span_processor(p)
    try:
        assert apis.active_processor() is p
        otelperf.record_cache("c", True)
        tr = tp.get_tracer("x")
        with tr.start_as_current_span("llm", kind=SpanKind.CLIENT,
                                      attributes={"gen_ai.system": "openai"}):  # fmt: skip
            pass
        s = read(reg)
        assert get(s, CACHE, cache="c", result="hit") == 1
        assert get(s, CALLS, api="openai", model=N.UNKNOWN_MODEL, outcome="success") == 1
    finally:
        tp.shutdown()
        mp.shutdown()
    assert apis.active_processor() is None


def test_api_call_span_is_a_client_span_with_genai_attributes(tel: otelperf.Telemetry):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tel.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    with otelperf.api_call("openai", model="gpt-4o") as call:
        call.set_tokens(input=5, output=6)
        call.set_cost(0.25)
        assert trace.get_current_span() is call.span
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.CLIENT
    assert span.name == "openai gpt-4o"
    assert dict(span.attributes or {}) == {
        N.ATTR_API: "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 6,
        N.ATTR_API_COST: 0.25,
    }


def test_http_client_spans_under_the_old_conventions_count_per_host_and_port(
    tel: otelperf.Telemetry,
):
    # requests / httpx at their default (old) HTTP conventions: no server.address
    old = {"http.method": "GET", "http.url": "http://127.0.0.1:8081/items/1?q=2"}
    for status in (200, 404, 429, 503):
        client_span(tel, "GET", old, start=0, end=1_000_000,
                    end_attrs={"http.status_code": status})  # fmt: skip
    # net.peer.name / net.peer.port, and the Host header, on other instrumentations
    peer = {"http.method": "POST", "net.peer.name": "billing", "net.peer.port": 8443}
    client_span(tel, "POST", peer, start=0, end=1, end_attrs={"http.status_code": 201})
    host = {"http.method": "GET", "http.host": "svc:9000", "http.scheme": "http"}
    client_span(tel, "GET", host, start=0, end=1, end_attrs={"http.status_code": 500})
    # the scheme's default port is left out, under either convention
    client_span(tel, "GET", {"http.method": "GET", "http.url": "https://maps.example:443/x"},
                start=0, end=1)  # fmt: skip
    stable = {"http.request.method": "GET", "url.full": "http://[::1]:8082/a",
              "server.address": "::1", "server.port": 8082}  # fmt: skip
    client_span(tel, "GET", stable, start=0, end=1,
                end_attrs={"http.response.status_code": 429})  # fmt: skip
    # a connection failure: error.type and no status code
    client_span(tel, "GET", old, start=0, end=1, end_attrs={"error.type": "ConnectError"},
                error=True)  # fmt: skip
    s = read(tel.registry)

    def calls(api: str, outcome: str) -> frozenset[tuple[str, str]]:
        return frozenset({"api": api, "model": N.UNKNOWN_MODEL, "outcome": outcome}.items())

    assert family(s, CALLS) == {
        calls("127.0.0.1:8081", "success"): 2,  # 200 and 404
        calls("127.0.0.1:8081", "error"): 3,  # 429, 503 and the connection error
        calls("billing:8443", "success"): 1,
        calls("svc:9000", "error"): 1,
        calls("maps.example", "success"): 1,
        calls("[::1]:8082", "error"): 1,
    }


def test_genai_tokens_by_type_from_the_current_and_the_older_attribute_names(
    tel: otelperf.Telemetry,
):
    otelperf.set_api_price("openai", "o4-mini", input_per_million_usd=1.0,
                           output_per_million_usd=4.0, cached_input_per_million_usd=0.25,
                           reasoning_per_million_usd=8.0)  # fmt: skip
    otelperf.set_api_price("anthropic", "claude", input_per_million_usd=3.0,
                           output_per_million_usd=15.0)  # fmt: skip
    # The GenAI conventions: input_tokens includes cache_read.input_tokens, output_tokens
    # includes reasoning.output_tokens.
    current = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "o4-mini"}
    client_span(tel, "chat o4-mini", current, start=0, end=1, end_attrs={
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cache_read.input_tokens": 600,
        "gen_ai.usage.output_tokens": 300, "gen_ai.usage.reasoning.output_tokens": 200,
    })  # fmt: skip
    # The older names (OpenLLMetry's semconv_ai): prompt_tokens includes
    # cache_read_input_tokens (its Anthropic instrumentation adds them in).
    older = {"gen_ai.system": "anthropic", "gen_ai.request.model": "claude"}
    client_span(tel, "anthropic.chat", older, start=0, end=1, end_attrs={
        "gen_ai.usage.prompt_tokens": 500, "gen_ai.usage.cache_read_input_tokens": 100,
        "gen_ai.usage.completion_tokens": 50, "gen_ai.usage.reasoning_tokens": 20,
    })  # fmt: skip
    # A part larger than its whole: counted apart by the instrumentation, both taken as given.
    client_span(tel, "chat", current, start=0, end=1, end_attrs={
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read.input_tokens": 40,
    })  # fmt: skip
    s = read(tel.registry)
    o = {"api": "openai", "model": "o4-mini"}
    a = {"api": "anthropic", "model": "claude"}

    def tk(labels: dict[str, str], t: str) -> frozenset[tuple[str, str]]:
        return frozenset({**labels, "token_type": t}.items())

    assert family(s, TOKENS) == {
        tk(o, "input"): 400 + 10, tk(o, "cached_input"): 600 + 40,
        tk(o, "output"): 100, tk(o, "reasoning"): 200,
        tk(a, "input"): 400, tk(a, "cached_input"): 100,
        tk(a, "output"): 30, tk(a, "reasoning"): 20,
    }  # fmt: skip
    assert get(s, COST, **o) == pytest.approx(
        (410 * 1.0 + 640 * 0.25 + 100 * 4.0 + 200 * 8.0) / 1e6
    )
    # defaults: cached input at the input price, reasoning at the output price
    assert get(s, COST, **a) == pytest.approx((400 * 3.0 + 100 * 3.0 + 30 * 15.0 + 20 * 15.0) / 1e6)


def test_api_call_and_record_api_call_take_cached_and_reasoning_tokens(
    tel: otelperf.Telemetry,
):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tel.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    otelperf.set_api_price(
        "openai", "gpt-4o", input_per_million_usd=2.0, output_per_million_usd=8.0,
        cached_input_per_million_usd=0.5,
    )  # fmt: skip
    with otelperf.api_call("openai", model="gpt-4o") as call:
        call.set_tokens(input=1200, output=300, cached_input=1000, reasoning=100)
    otelperf.record_api_call("openai", model="gpt-4o", input_tokens=50, output_tokens=10,
                             cached_input_tokens=50, reasoning_tokens=10)  # fmt: skip
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 100
    s = read(tel.registry)
    labels = {"api": "openai", "model": "gpt-4o"}
    assert {dict(k)["token_type"]: v for k, v in family(s, TOKENS).items()} == {
        "input": 200, "cached_input": 1050, "output": 200, "reasoning": 110,
    }  # fmt: skip
    assert get(s, COST, **labels) == pytest.approx(
        (200 * 2.0 + 1050 * 0.5 + 200 * 8.0 + 110 * 8.0) / 1e6
    )


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: otelperf.record_api_call("a", input_tokens=5, cached_input_tokens=6),
         r"record_api_call\(cached_input_tokens=6\): more than input_tokens=5"),
        (lambda: otelperf.record_api_call("a", reasoning_tokens=1),
         r"record_api_call\(reasoning_tokens=1\): more than output_tokens=0"),
        (lambda: otelperf.record_api_call("a", cached_input_tokens=-1),
         r"cached_input_tokens=-1"),
        (lambda: otelperf.record_api_call("a", reasoning_tokens=True), r"reasoning_tokens=True"),
        (lambda: otelperf.set_api_price("a", "m", input_per_million_usd=1,
                                        output_per_million_usd=1,
                                        cached_input_per_million_usd=-1),
         r"set_api_price\(cached_input_per_million_usd=-1\)"),
        (lambda: otelperf.set_api_price("a", "m", input_per_million_usd=1,
                                        output_per_million_usd=1, reasoning_per_million_usd="x"),
         r"set_api_price\(reasoning_per_million_usd='x'\)"),
    ],
)  # fmt: skip
def test_bad_token_type_arguments_name_the_argument(call: Any, pattern: str):
    with pytest.raises((TypeError, ValueError), match=pattern):
        call()


def test_set_tokens_parts_are_checked_against_their_whole():
    with pytest.raises(ValueError, match=r"set_tokens\(cached_input=3\): more than input=2"):
        with otelperf.api_call("a") as call:
            call.set_tokens(input=2, cached_input=3)
    with pytest.raises(ValueError, match=r"set_tokens\(reasoning=3\): more than output=0"):
        with otelperf.api_call("a") as call:
            call.set_tokens(input=2, reasoning=3)


def test_a_4xx_counts_alike_under_both_http_conventions(tel: otelperf.Telemetry):
    """The stable conventions add error.type="404" to a 404, the old ones nothing: the status
    code decides, so a 404 is a success under both and a 429 an error under both."""
    stable = {"http.request.method": "GET", "url.full": "http://h:81/x", "server.address": "h",
              "server.port": 81}  # fmt: skip
    old = {"http.method": "GET", "http.url": "http://h:81/x"}
    for code in (404, 429):
        client_span(tel, "GET", stable, start=0, end=1,
                    end_attrs={"http.response.status_code": code, "error.type": str(code)},
                    error=True)  # fmt: skip
        client_span(tel, "GET", old, start=0, end=1, end_attrs={"http.status_code": code},
                    error=True)  # fmt: skip
    # an error.type naming something other than the code is an error
    timeout = {"http.response.status_code": 404, "error.type": "ReadTimeout"}
    client_span(tel, "GET", stable, start=0, end=1, end_attrs=timeout)
    s = read(tel.registry)
    labels = {"api": "h:81", "model": N.UNKNOWN_MODEL}
    assert family(s, CALLS) == {
        frozenset({**labels, "outcome": "success"}.items()): 2,
        frozenset({**labels, "outcome": "error"}.items()): 3,
    }
