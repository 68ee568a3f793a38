"""SpanNamer: operation names, outcomes and noise, rule by rule (docs/processor.md)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import _names as N
from otelperf.config import DEFAULT_IGNORED_SPANS, resolve
from otelperf.derive.naming import (
    CACHE_MAX,
    DEFAULT_IGNORED,
    SpanNamer,
    authority,
    http_authority,
    http_status,
    split_url,
)
from otelperf.errors import ConfigError
from tests.scrape import read_registry

S, C, INT, P, K = (
    SpanKind.SERVER,
    SpanKind.CLIENT,
    SpanKind.INTERNAL,
    SpanKind.PRODUCER,
    SpanKind.CONSUMER,
)
OK = ("success", "")


def op(name: str, kind: SpanKind, attrs: dict[str, Any] | None, error: bool = False) -> Any:
    return SpanNamer().classify(name, kind, attrs, error)


# -- server spans --------------------------------------------------------------------------------
def test_server_span_by_method_and_route_under_both_conventions() -> None:
    old = {"http.method": "GET", "http.route": "/items/{item_id}", "http.target": "/items/7"}
    new = {"http.request.method": "GET", "http.route": "/items/{item_id}", "url.path": "/items/7"}
    for attrs in (old, new):
        assert op("GET /items/{item_id}", S, attrs) == ("GET /items/{item_id}", *OK)
    # Flask's route syntax, and a span named otherwise: the name is built from the attributes.
    flask = {"http.method": "POST", "http.route": "/orders/<int:n>"}
    assert op("/orders/<int:n>", S, flask) == ("POST /orders/<int:n>", *OK)


def test_server_span_without_route_is_the_method_never_the_raw_path() -> None:
    # The plain ASGI instrumentation names such a span after the raw path.
    attrs = {"http.request.method": "GET", "url.path": "/items/123", "http.target": "/items/123"}
    assert op("GET /items/123", S, attrs) == ("GET", *OK)
    assert op("GET /items/123", S, {"http.method": "GET", "http.target": "/x/1"}) == ("GET", *OK)


def test_nonstandard_methods_are_bounded() -> None:
    assert op("x", S, {"http.request.method": "_OTHER", "http.route": "/a"}) == ("HTTP /a", *OK)
    assert op("x", S, {"http.method": "BREW", "http.route": "/a"}) == ("HTTP /a", *OK)
    assert op("x", S, {"http.method": "get", "http.route": "/a"}) == ("HTTP /a", *OK)


def test_server_outcome_only_5xx_is_an_error() -> None:
    base = {"http.request.method": "GET", "http.route": "/a"}
    for code in (200, 302, 400, 404, 429, 499):
        assert op("GET /a", S, {**base, "http.response.status_code": code}) == ("GET /a", *OK)
    assert op("GET /a", S, {**base, "http.response.status_code": 503}) == (
        "GET /a",
        "error",
        "503",
    )
    old = {"http.method": "GET", "http.route": "/a", "http.status_code": 500}
    assert op("GET /a", S, old) == ("GET /a", "error", "500")
    # error.type wins over the code; a status ERROR alone is "_OTHER".
    et = {**base, "http.response.status_code": 500, "error.type": "500"}
    assert op("GET /a", S, et) == ("GET /a", "error", "500")
    assert op("GET /a", S, base, error=True) == ("GET /a", "error", "_OTHER")
    # a status ERROR makes a 4xx server span an error too (the application said so)
    assert op("GET /a", S, {**base, "http.response.status_code": 404}, error=True) == (
        "GET /a",
        "error",
        "404",
    )


# -- HTTP client spans ---------------------------------------------------------------------------
def test_http_client_old_conventions_from_the_url() -> None:
    attrs = {"http.method": "GET", "http.url": "http://127.0.0.1:8123/items/7?q=1"}
    assert op("GET", C, attrs) == ("GET 127.0.0.1:8123", *OK)
    attrs = {"http.method": "POST", "http.url": "https://user:pw@API.Example.com/v1/x"}
    assert op("HTTP POST", C, attrs) == ("POST api.example.com", *OK)


def test_http_client_stable_conventions() -> None:
    attrs = {
        "http.request.method": "GET",
        "url.full": "http://127.0.0.1:8123/items/7",
        "server.address": "127.0.0.1",
        "server.port": 8123,
        "http.response.status_code": 200,
    }
    assert op("GET", C, attrs) == ("GET 127.0.0.1:8123", *OK)


def test_http_client_default_ports_are_left_out() -> None:
    def name(url: str, **extra: Any) -> str:
        return op("GET", C, {"http.method": "GET", "http.url": url, **extra})[0]  # type: ignore[no-any-return]

    assert name("http://h:80/x") == "GET h"
    assert name("https://h:443/x") == "GET h"
    assert name("http://h/x") == "GET h"
    assert name("https://h:80/x") == "GET h:80"
    assert name("http://h:443/x") == "GET h:443"
    assert name("https://h:8443") == "GET h:8443"
    stable = {"server.address": "h", "server.port": 443, "url.full": "https://h/x"}
    assert op("GET", C, {"http.request.method": "GET", **stable})[0] == "GET h"
    stable = {"server.address": "h", "server.port": 443, "url.full": "http://h:443/x"}
    assert op("GET", C, {"http.request.method": "GET", **stable})[0] == "GET h:443"


def test_http_client_ipv6_hosts() -> None:
    attrs = {"http.method": "GET", "http.url": "http://[::1]:8080/a"}
    assert op("GET", C, attrs)[0] == "GET [::1]:8080"
    attrs = {"http.method": "GET", "http.url": "https://[2001:db8::1]/a"}
    assert op("GET", C, attrs)[0] == "GET [2001:db8::1]"
    stable = {"http.request.method": "GET", "server.address": "::1", "server.port": 9000}
    assert op("GET", C, stable)[0] == "GET [::1]:9000"


def test_http_client_host_from_net_peer_and_http_host() -> None:
    attrs = {"http.method": "GET", "net.peer.name": "db.local", "net.peer.port": 5000}
    assert op("GET", C, attrs)[0] == "GET db.local:5000"
    attrs = {"http.method": "GET", "http.host": "svc:8081", "http.scheme": "http"}
    assert op("GET", C, attrs)[0] == "GET svc:8081"
    # server.address without server.port: the port comes from the URL
    attrs = {"http.request.method": "GET", "server.address": "h", "url.full": "http://h:81/"}
    assert op("GET", C, attrs)[0] == "GET h:81"
    # nothing names a host: the method alone
    assert op("GET", C, {"http.method": "GET"})[0] == "GET"


def test_http_client_outcome_4xx_and_5xx_are_errors() -> None:
    base = {"http.request.method": "GET", "server.address": "h", "server.port": 81}
    for code, outcome in ((200, OK), (301, OK)):
        assert op("GET", C, {**base, "http.response.status_code": code}) == ("GET h:81", *outcome)
    for code in (400, 404, 429, 500, 503):
        got = op("GET", C, {**base, "http.response.status_code": code})
        assert got == ("GET h:81", "error", str(code))
    old = {"http.method": "GET", "http.url": "http://h:81/", "http.status_code": 429}
    assert op("GET", C, old) == ("GET h:81", "error", "429")
    conn = {**base, "error.type": "httpx.ConnectError"}
    assert op("GET", C, conn, error=True) == ("GET h:81", "error", "httpx.ConnectError")


def test_http_helpers() -> None:
    assert split_url("http://a:1/b") == ("http", "a", 1)
    assert split_url("HTTPS://a?x=1") == ("https", "a", None)
    assert split_url("https://[::1]:5/x#y") == ("https", "::1", 5)
    assert split_url("/relative") is None
    assert split_url("http:///x") is None
    assert authority("Host", 80, None) == "host"
    assert authority("host", 8080, None) == "host:8080"
    assert http_authority({}) is None
    assert http_status({"http.status_code": "404"}) == 404
    assert http_status({"http.response.status_code": True}) is None


# -- databases and messaging -----------------------------------------------------------------------
def test_database_spans() -> None:
    stable = {"db.system.name": "postgresql", "db.operation.name": "SELECT"}
    assert op("SELECT orders", C, {**stable, "db.collection.name": "orders"}) == (
        "postgresql SELECT orders",
        *OK,
    )
    old = {"db.system": "postgresql", "db.operation": "SELECT", "db.sql.table": "orders"}
    assert op("SELECT", C, old)[0] == "postgresql SELECT orders"
    assert op("x", C, {"db.system": "redis", "db.operation": "GET"})[0] == "redis GET"
    # no operation attribute: a one-word span name (DB-API names spans by the first keyword)
    assert op("SELECT", C, {"db.system": "sqlite", "db.statement": "SELECT 1"})[0] == (
        "sqlite SELECT"
    )
    assert op("select * from t", C, {"db.system": "sqlite"})[0] == "sqlite"
    mongo = {"db.system": "mongodb", "db.operation": "find", "db.collection.name": "users"}
    assert op("find", C, mongo, error=True) == ("mongodb find users", "error", "_OTHER")


def test_messaging_spans() -> None:
    new = {
        "messaging.system": "kafka",
        "messaging.operation.name": "publish",
        "messaging.destination.name": "orders",
    }
    assert op("publish orders", P, new) == ("publish orders", *OK)
    assert op("x", P, {"messaging.system": "rabbitmq", "messaging.destination": "jobs"})[0] == (
        "publish jobs"
    )
    old = {"messaging.system": "rabbitmq", "messaging.destination": "jobs"}
    assert op("x", K, {**old, "messaging.operation": "receive"})[0] == "receive jobs"
    assert op("x", K, old)[0] == "process jobs"
    tmp = {"messaging.system": "rabbitmq", "messaging.destination.name": "amq.gen-Xa3"}
    assert op("x", P, {**tmp, "messaging.destination.temporary": True})[0] == (
        "publish (temporary)"
    )
    assert op("x", P, {**tmp, "messaging.destination.anonymous": True})[0] == (
        "publish (temporary)"
    )
    assert op("x", P, {**old, "messaging.temp_destination": True})[0] == "publish (temporary)"
    templ = {**tmp, "messaging.destination.template": "/customers/{id}"}
    assert op("x", P, templ)[0] == "publish /customers/{id}"
    # without a destination: the span name
    assert op("kafka poll", K, {"messaging.system": "kafka"}) == ("kafka poll", *OK)


# -- everything else, outcomes, noise ---------------------------------------------------------
def test_other_spans_keep_their_name() -> None:
    assert op("load_user", INT, None) == ("load_user", *OK)
    assert op("load_user", INT, {"http.method": "GET"}) == ("load_user", *OK)
    assert op("chat gpt-4o", C, {"gen_ai.provider.name": "openai"}) == ("chat gpt-4o", *OK)
    assert op("grpc.Svc/Call", S, {"rpc.system": "grpc"}) == ("grpc.Svc/Call", *OK)
    assert op("load_user", INT, None, error=True) == ("load_user", "error", "_OTHER")
    assert op("load_user", INT, {"error.type": "KeyError"}, error=True) == (
        "load_user",
        "error",
        "KeyError",
    )
    # error.type without an ERROR status on a non-HTTP span is not an error
    assert op("load_user", INT, {"error.type": "KeyError"}) == ("load_user", *OK)


def test_asgi_send_and_receive_spans_are_noise_by_default() -> None:
    for name in (
        "GET /items/{item_id} http send",
        "GET /items/{item_id} http receive",
        "GET http send",
        "/ws websocket receive",
        "/ws websocket send",
    ):
        assert op(name, INT, {"asgi.event.type": "http.response.start"}) is None
        assert op(name, INT, None, error=True) is None
    assert op("http sender", INT, None) == ("http sender", *OK)
    assert op("GET /send", S, {"http.method": "GET", "http.route": "/send"})[0] == "GET /send"


def test_ignore_patterns_are_exact_names_or_suffixes() -> None:
    namer = SpanNamer(ignore=["health", "*.render"])
    assert namer.classify("health", INT, None, False) is None
    assert namer.classify("health", S, {"http.method": "GET"}, False) is None
    assert namer.classify("page.render", INT, None, False) is None
    assert namer.classify("healthy", INT, None, False) == ("healthy", *OK)
    # replacing the list drops the defaults: ASGI's children count again
    assert namer.classify("GET / http send", INT, None, False) == ("GET / http send", *OK)
    assert SpanNamer(ignore=()).classify("GET / http send", INT, None, False) is not None
    assert "* http send" in DEFAULT_IGNORED


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("health", "ignore='health' is a string"),
        ([""], "ignore: '' is not a span name"),
        (["  "], "ignore: '  ' is not a span name"),
        ([3], "ignore: 3 is not a span name"),
        (["*"], r"ignore: '\*' would leave out every span"),
        (["* "], r"ignore: '\* ' would leave out every span"),
    ],
)
def test_bad_ignore_patterns_name_the_argument(bad: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        SpanNamer(ignore=bad)


def test_the_name_cache_is_bounded() -> None:
    namer = SpanNamer()
    for i in range(CACHE_MAX + 100):
        assert namer.classify(f"op{i}", INT, None, False) == (f"op{i}", *OK)
    assert len(namer._plain) == CACHE_MAX
    assert namer.classify(f"op{CACHE_MAX + 50}", INT, None, True)[1] == "error"  # type: ignore[index]


def test_real_sdk_spans() -> None:
    """The attribute values a real SDK span carries (its BoundedAttributes) classify the same."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET", kind=C) as span:
        span.set_attribute("http.method", "GET")
        span.set_attribute("http.url", "http://127.0.0.1:9/x")
        span.set_attribute("http.status_code", 404)
        span.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("GET /a/{b} http send", kind=INT):
        pass
    provider.shutdown()
    spans: list[ReadableSpan] = list(exporter.get_finished_spans())
    namer = SpanNamer()
    got = [
        namer.classify(s.name, s.kind, s.attributes, s.status.status_code is StatusCode.ERROR)
        for s in spans
    ]
    assert got == [("GET 127.0.0.1:9", "error", "404"), None]


# -- the setting -----------------------------------------------------------------------------------
def test_ignore_spans_setting() -> None:
    assert resolve(env={}).ignore_spans == DEFAULT_IGNORED_SPANS == DEFAULT_IGNORED
    env = {"OTELPERF_IGNORE_SPANS": " GET /health , *.render,GET /health"}
    assert resolve(env=env).ignore_spans == ("GET /health", "*.render")
    assert resolve(env={"OTELPERF_IGNORE_SPANS": "None"}).ignore_spans == ()
    assert resolve(env={"OTELPERF_IGNORE_SPANS": "  "}).ignore_spans == DEFAULT_IGNORED_SPANS
    # the argument beats the variable; an empty list ignores nothing
    assert resolve(ignore_spans=["a"], env=env).ignore_spans == ("a",)
    assert resolve(ignore_spans=[], env=env).ignore_spans == ()
    namer = SpanNamer(ignore=resolve(env=env).ignore_spans)
    assert namer.classify("GET /health", S, {"http.method": "GET"}, False) is None
    assert namer.classify("GET / http send", INT, None, False) == ("GET / http send", *OK)


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({}, {"OTELPERF_IGNORE_SPANS": "a,*"}, "OTELPERF_IGNORE_SPANS: '\\*' would leave out"),
        ({"ignore_spans": "health"}, {}, "ignore_spans='health' is a string"),
        ({"ignore_spans": ["ok", ""]}, {}, "ignore_spans: '' is not a span name"),
        ({"ignore_spans": [None]}, {}, "ignore_spans: None is not a span name"),
        ({"ignore_spans": 5}, {}, "ignore_spans=5 is not a list of span names"),
    ],
)
def test_bad_ignore_spans_setting_names_its_source(
    kwargs: dict[str, Any], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        resolve(env=env, **kwargs)


# -- configure(ignore_spans=...) end to end ------------------------------------------------------


@pytest.mark.parametrize("through", ["argument", "variable"])
def test_configure_ignore_spans_replaces_the_noise_list(
    through: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs: dict[str, Any] = {}
    if through == "argument":
        kwargs["ignore_spans"] = ["cache warmup", "*.render"]
    else:
        monkeypatch.setenv("OTELPERF_IGNORE_SPANS", "cache warmup,*.render")
    registry = CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=registry, set_global=False, **kwargs)
    try:
        tracer = t.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("handle", kind=S):
            for name in ("cache warmup", "page.render", "GET / http send", "load"):
                with tracer.start_as_current_span(name):
                    pass
        ops = {
            dict(labels)["operation"]
            for (name, labels) in read_registry(registry)
            if name == N.CRITICAL_PATH.prom
        }
        # the defaults are replaced: ASGI's send span counts again, the listed ones do not
        assert ops == {"handle", "GET / http send", "load"}
    finally:
        t.shutdown()
    with pytest.raises(ConfigError, match=r"^ignore_spans: '' is not a span name"):
        otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), ignore_spans=[""])
