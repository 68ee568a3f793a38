"""Auto-instrumented services, end to end: a real FastAPI app (uvicorn) and a real Flask app
(werkzeug), each calling a stub HTTP server through httpx and requests with the real OTel
instrumentations, served over sockets by ``tests/apps/serve.py`` with ``otelperf.configure()``,
at the instrumentations' default (old) HTTP conventions and with
``OTEL_SEMCONV_STABILITY_OPT_IN=http``; /metrics is scraped over a socket.

The ``service`` fixture (module scope, one subprocess per convention) drives a known set of
requests and returns the scraped samples with the counts they must show, so other tests (the
duration histograms per operation) can reuse it.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from otelperf import _names as N
from tests.scrape import Key, scrape

ROOT = Path(__file__).resolve().parent.parent

# The requests the tests send to each app, in order.
PATHS = (
    "/items/1", "/items/2", "/items/3",
    "/upstream/404", "/upstream/429", "/upstream/503",
    "/broken", "/missing/x", "/chat",
)  # fmt: skip
STATUS = {"/broken": 503, "/missing/x": 404}  # what the apps answer (200 otherwise)
FASTAPI_ROUTES = {"items": "GET /items/{item_id}", "upstream": "GET /upstream/{code}"}
FLASK_ROUTES = {"items": "GET /items/<item_id>", "upstream": "GET /upstream/<int:code>"}
# Local roots per root operation over both apps ("/broken" and "/chat" exist in both; an
# unmatched path is named by its method alone, never by the raw path).
ROOTS = {
    FASTAPI_ROUTES["items"]: 3, FASTAPI_ROUTES["upstream"]: 3,
    FLASK_ROUTES["items"]: 3, FLASK_ROUTES["upstream"]: 3,
    "GET /broken": 2, "GET /chat": 2, "GET": 2,
}  # fmt: skip
# Server outcomes per root operation: only a 5xx is an error on a server span.
SERVER_OUTCOMES = {
    FASTAPI_ROUTES["items"]: {"success": 3}, FASTAPI_ROUTES["upstream"]: {"success": 3},
    FLASK_ROUTES["items"]: {"success": 3}, FLASK_ROUTES["upstream"]: {"success": 3},
    "GET /broken": {"error": 2}, "GET /chat": {"success": 2}, "GET": {"success": 2},
}  # fmt: skip
CONVENTIONS = ("default", "http")


@dataclass
class Service:
    """One run of both apps: where they listened, what was sent, and the scraped samples."""

    convention: str
    info: dict[str, Any]
    samples: dict[Key, float] = field(default_factory=dict)

    @property
    def stub_fastapi(self) -> str:
        """The FastAPI app's upstream as otelperf names it: ``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.info['stub_fastapi_port']}"

    @property
    def stub_flask(self) -> str:
        return f"127.0.0.1:{self.info['stub_flask_port']}"

    def client_outcomes(self) -> dict[str, dict[str, int]]:
        """HTTP client calls per operation and span outcome (a 4xx is an error on a client
        span): per app, 3 /items x 2 calls succeed, 404, 429 and 503 x 2 calls fail."""
        return {
            f"GET {stub}": {"success": 6, "error": 6}
            for stub in (self.stub_fastapi, self.stub_flask)
        }

    def counts_by_outcome(
        self, metric: N.Metric, suffix: str = "_count"
    ) -> dict[str, dict[str, float]]:
        """``{operation: {outcome: count}}`` of a per-operation histogram, summed over
        ``error_type`` (compare with SERVER_OUTCOMES and client_outcomes())."""
        out: dict[str, dict[str, float]] = {}
        for labels, v in self.family(metric, suffix).items():
            d = dict(labels)
            per = out.setdefault(d[N.OPERATION], {})
            per[d[N.OUTCOME]] = per.get(d[N.OUTCOME], 0) + v
        return out

    def family(self, metric: N.Metric, suffix: str = "") -> dict[frozenset[tuple[str, str]], float]:
        name = metric.prom + suffix
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def _labels(**kv: str) -> frozenset[tuple[str, str]]:
    return frozenset(kv.items())


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError(f"tests.apps.serve printed nothing within {timeout} s")
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"tests.apps.serve exited with {proc.wait(5)} before it was ready")
    return line


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _total(samples: dict[Key, float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


@pytest.fixture(scope="module", params=CONVENTIONS)
def service(request: pytest.FixtureRequest) -> Iterator[Service]:
    """Both apps in a subprocess at one HTTP convention, after the known requests, scraped
    once every root and API call of them is counted."""
    env = {k: v for k, v in os.environ.items() if k != "OTEL_SEMCONV_STABILITY_OPT_IN"}
    if request.param != "default":
        env["OTEL_SEMCONV_STABILITY_OPT_IN"] = request.param
    env.pop("OTEL_EXPORTER_PROMETHEUS_PORT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.serve"],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        info = json.loads(_read_line(proc, 60))
        svc = Service(request.param, info)
        for port in (info["fastapi_port"], info["flask_port"]):
            for path in PATHS:
                assert _get(f"http://127.0.0.1:{port}{path}") == STATUS.get(path, 200), path
        # A server span ends after its response is sent: poll until every root and API call
        # of these requests is counted, then the figures are final.
        deadline = time.monotonic() + 30
        while True:
            svc.samples = scrape(info["metrics_url"])
            roots = _total(svc.samples, N.ROOTS.prom)
            calls = _total(svc.samples, N.API_CALLS.prom)
            if roots >= len(PATHS) * 2 and calls >= 26:
                break
            assert time.monotonic() < deadline, f"only {roots} roots and {calls} API calls"
            time.sleep(0.05)
        yield svc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_roots_per_route(service: Service) -> None:
    roots = service.family(N.ROOTS)
    expected = {k: v for k, v in ROOTS.items() if k != "GET"}
    assert {dict(k)[N.ROOT_OPERATION]: v for k, v in roots.items() if v and
            dict(k)[N.ROOT_OPERATION] in expected} == expected  # fmt: skip
    assert sum(roots.values()) == len(PATHS) * 2


def test_every_root_is_named_by_method_and_route_never_a_raw_path(service: Service) -> None:
    roots = service.family(N.ROOTS)
    assert {dict(k)[N.ROOT_OPERATION]: v for k, v in roots.items()} == ROOTS


def test_critical_path_operations_are_meaningful_names(service: Service) -> None:
    pairs = {
        (dict(k)[N.ROOT_OPERATION], dict(k)[N.OPERATION]) for k in service.family(N.CRITICAL_PATH)
    }
    fa, fl = f"GET {service.stub_fastapi}", f"GET {service.stub_flask}"
    assert pairs == {
        (FASTAPI_ROUTES["items"], FASTAPI_ROUTES["items"]), (FASTAPI_ROUTES["items"], fa),
        (FASTAPI_ROUTES["upstream"], FASTAPI_ROUTES["upstream"]), (FASTAPI_ROUTES["upstream"], fa),
        (FLASK_ROUTES["items"], FLASK_ROUTES["items"]), (FLASK_ROUTES["items"], fl),
        (FLASK_ROUTES["upstream"], FLASK_ROUTES["upstream"]), (FLASK_ROUTES["upstream"], fl),
        ("GET /broken", "GET /broken"), ("GET", "GET"),
        ("GET /chat", "GET /chat"), ("GET /chat", "chat gpt-4o"), ("GET /chat", "openai.chat"),
    }  # fmt: skip
    # no ASGI "... http send" / "... http receive" child anywhere
    assert not [op for _, op in pairs if op.endswith((" http send", " http receive"))]


def test_every_server_and_client_span_has_its_duration_outcome_and_error_type(
    service: Service,
) -> None:
    """The RED histogram for spans the instrumentations made (no measure() anywhere): per
    route and per host:port, exact counts by outcome, under both HTTP conventions."""
    counts = service.counts_by_outcome(N.OPERATION_DURATION)
    for op, outcomes in {**SERVER_OUTCOMES, **service.client_outcomes()}.items():
        assert counts[op] == outcomes, op
    # no series for ASGI's internal send/receive spans
    assert not [op for op in counts if op.endswith((" http send", " http receive"))]
    # error types: a failing server route by its status code, client errors by theirs
    errors = {
        (dict(k)[N.OPERATION], dict(k)[N.ERROR_TYPE]): v
        for k, v in service.family(N.OPERATION_DURATION, "_count").items()
        if dict(k)[N.OUTCOME] == "error"
    }
    assert errors[("GET /broken", "503")] == 2
    for stub in (service.stub_fastapi, service.stub_flask):
        assert {code: errors[(f"GET {stub}", code)] for code in ("404", "429", "503")} == {
            "404": 2,
            "429": 2,
            "503": 2,
        }


def test_api_calls_per_host_and_port_with_their_outcomes(service: Service) -> None:
    """The same counts under both HTTP conventions: per app, 3 /items x 2 calls and the 404s
    succeed; the 429s and 503s (x 2 calls) fail; plus one call per GenAI span."""

    def calls(api: str, outcome: str, model: str = N.UNKNOWN_MODEL) -> frozenset[tuple[str, str]]:
        return _labels(api=api, model=model, outcome=outcome)

    assert service.family(N.API_CALLS) == {
        calls(service.stub_fastapi, "success"): 8, calls(service.stub_fastapi, "error"): 4,
        calls(service.stub_flask, "success"): 8, calls(service.stub_flask, "error"): 4,
        calls("openai", "success", "gpt-4o"): 1, calls("openai", "success", "gpt-4o-mini"): 1,
    }  # fmt: skip
    durations = service.family(N.API_CALL_DURATION, "_count")
    assert durations == service.family(N.API_CALLS)  # every call observed once


def test_genai_tokens_by_type_from_current_and_older_conventions(service: Service) -> None:
    def tokens(model: str, token_type: str) -> frozenset[tuple[str, str]]:
        return _labels(api="openai", model=model, token_type=token_type)

    assert service.family(N.API_TOKENS) == {
        # current: input_tokens 1000 of which cache_read 600; output 300 of which reasoning 200
        tokens("gpt-4o", "input"): 400, tokens("gpt-4o", "cached_input"): 600,
        tokens("gpt-4o", "output"): 100, tokens("gpt-4o", "reasoning"): 200,
        # older (OpenLLMetry): prompt 500 of which cached 100; completion 50 of which reasoning 20
        tokens("gpt-4o-mini", "input"): 400, tokens("gpt-4o-mini", "cached_input"): 100,
        tokens("gpt-4o-mini", "output"): 30, tokens("gpt-4o-mini", "reasoning"): 20,
    }  # fmt: skip
