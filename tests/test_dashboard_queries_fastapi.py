"""Every panel query of every dashboard, on a real Prometheus scraping a real auto-instrumented
FastAPI app: the same proof as test_dashboard_queries.py (which runs on the demo), for a
service where every figure comes from OpenTelemetry's instrumentations' spans.

The app (``tests/apps/serve_panels.py``): FastAPI with opentelemetry-instrumentation-fastapi,
httpx and requests instrumented, two stub upstreams, a GenAI-shaped client span with tokens, a
cache lookup span, ``otelperf.configure()`` and no ``measure()`` anywhere.

Exact figures from ``rate()`` need a window whose samples hold exactly one known workload.
Prometheus 2 extrapolates ``rate(x[r])`` evaluated at a sample's timestamp ``t1`` whose first
sample in the window is ``t0`` (less than 1.1 scrape intervals after the window's start, and
the counter's value at ``t0`` large enough that it cannot have started from zero in between)
to exactly ``(x(t1) - x(t0)) / (t1 - t0)``.  So the workload runs once before Prometheus
starts (every series exists, with the same count, from the first scrape on), then once more
right after a scrape ``t0``; the panels are queried at ``t1``, the fourth scrape after ``t0``,
where ``$__rate_interval`` (4.6 s here) reaches back just past ``t0``.  Every rate is then the
phase's count over ``t1 - t0``, and ratios of them (error %, hit ratio, the recording rules'
error ratios) are the phase's exact ratios.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import otelperf.generate.dashboards as D
from otelperf import _names as N
from tests.apps import serve_panels
from tests.conftest import free_port, require_binary
from tests.scrape import get, scrape
from tests.test_dashboard_queries import Stack, builtins, resolve, substitute
from tests.test_dashboards import generated, panels, used_variables, variables

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
JOB = "panels-fastapi"
SCRAPES_IN_WINDOW = 4  # $__rate_interval is 4.6 s at 1 s scrapes: t1 - t0 = 4 scrapes

# One phase of traffic: (path, status the app answers).  Cache keys are per phase, so each
# phase has the same two misses and two hits.
ITEMS, UPSTREAM, BROKEN, CHAT, CACHED = (
    "GET /items/{item_id}", "GET /upstream/{code}", "GET /broken", "GET /chat", "GET /cached/{key}"
)  # fmt: skip
UNMATCHED = "GET"  # a path no route matches is named by its method alone
GENAI = "chat gpt-4o"
LOOKUP = f"{serve_panels.CACHE} lookup"


def workload(phase: str) -> list[tuple[str, int]]:
    """The requests of one phase, in order."""
    return [
        *((f"/items/{i}", 200) for i in range(1, 5)),
        ("/upstream/404", 200), ("/upstream/429", 200), ("/upstream/503", 200),
        ("/broken", 503), ("/broken", 503), ("/missing/x", 404),
        ("/chat", 200), ("/chat", 200),
        *((f"/cached/{phase}-a", 200) for _ in range(3)), (f"/cached/{phase}-b", 200),
    ]  # fmt: skip


# Local roots per phase, by root operation.
ROOTS = {ITEMS: 4, UPSTREAM: 3, BROKEN: 2, UNMATCHED: 1, CHAT: 2, CACHED: 4}
ROOT_COUNT = sum(ROOTS.values())
API_CALL_COUNT = 18  # 14 to the stub, 2 to the prices stub, 2 GenAI calls
# Operations on each root's critical path (every child runs alone inside its parent).
CRITICAL = {
    ITEMS: {ITEMS, "stub"}, UPSTREAM: {UPSTREAM, "stub"}, BROKEN: {BROKEN},
    UNMATCHED: {UNMATCHED}, CHAT: {CHAT, GENAI}, CACHED: {CACHED, LOOKUP, "prices"},
}  # fmt: skip
# Tokens per phase: two GenAI spans of tests.apps.genai.CURRENT_END (input 1000 of which
# cached 600, output 300 of which reasoning 200).
TOKENS = {"input": 800, "cached_input": 1200, "output": 200, "reasoning": 400}
COST = 2 * sum(
    n * serve_panels.PRICE[f"{t}_per_million_usd"] for t, n in
    {"input": 400, "cached_input": 600, "output": 100, "reasoning": 200}.items()
) / 1e6  # fmt: skip


@dataclass
class App:
    """The app's ports, the scrape t0 before the second phase and t1 the panels are read at."""

    info: dict[str, Any]
    stack: Stack
    t0: float = 0.0
    t1: float = 0.0

    def api(self, name: str) -> str:
        """``stub`` / ``prices`` as otelperf names them: ``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.info[f'{name}_port']}"

    def op(self, name: str) -> str:
        """An operation name, with the stubs' client spans as ``GET 127.0.0.1:<port>``."""
        return f"GET {self.api(name)}" if name in ("stub", "prices") else name

    def per_second(self, count: float) -> float:
        """What rate() reads at t1 for ``count`` events of the phase."""
        return count / (self.t1 - self.t0)

    def requests(self) -> dict[str, int]:
        """Finished spans per operation in one phase."""
        return {
            **ROOTS, "GET " + self.api("stub"): 14, "GET " + self.api("prices"): 2,
            GENAI: 2, LOOKUP: 4,
        }  # fmt: skip

    def errors(self) -> dict[str, int]:
        """Failed spans per operation in one phase: the two 503s of /broken (only a 5xx is an
        error on a server span); the stub's 404, 429 and 503 answers, twice each (httpx and
        requests; a 4xx is an error on a client span)."""
        return {BROKEN: 2, "GET " + self.api("stub"): 6}


def _poll(what: str, check: Callable[[], Any], timeout: float, log: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, ValueError):  # not listening yet; 503 "Service Unavailable" (no JSON)
            value = None
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{log()[-3000:]}")


def _run_phase(info: dict[str, Any], phase: str, roots: int, calls: int) -> None:
    """Send one phase's requests and wait until /metrics counts all of them (a server span
    ends after its response is sent)."""
    for path, status in workload(phase):
        assert get(f"http://127.0.0.1:{info['port']}{path}")[0] == status, path

    def counted() -> bool:
        s = scrape(info["metrics_url"])
        have = {n: sum(v for (name, _), v in s.items() if name == n) for n in
                (N.ROOTS.prom, N.API_CALLS.prom)}  # fmt: skip
        return have == {N.ROOTS.prom: roots, N.API_CALLS.prom: calls}

    _poll(f"phase {phase} counted on /metrics", counted, 30, lambda: "")


def _scalar(stack: Stack, expr: str, at: float) -> float:
    (row,) = stack.query(expr, at)["data"]["result"]
    return float(row["value"][1])


def _start_prometheus(prometheus: str, tmp: Path, metrics_url: str) -> tuple[Any, Stack, Path]:
    """Prometheus scraping ``metrics_url`` every second with the generated rules loaded."""
    port = free_port()
    config = tmp / "prometheus.yml"
    target = metrics_url.removeprefix("http://").removesuffix("/metrics")
    config.write_text(
        json.dumps(  # JSON is YAML; the generated rule files, as compose loads them
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(REPO / "alert_rules" / "*.yml")],
                "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
            }
        )
    )
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
        )  # fmt: skip
    return proc, Stack(f"http://127.0.0.1:{port}", time.time()), log


def _scrapes(stack: Stack) -> list[float]:
    """Timestamps of the app's scrapes in the last 30 s."""
    doc = stack.query(f'up{{job="{JOB}"}}[30s]')
    result = doc["data"]["result"] if doc.get("status") == "success" else []
    return [float(t) for t, _ in result[0]["values"]] if result else []


def _rules_healthy(stack: Stack) -> bool:
    groups = stack.get("/api/v1/rules")["data"]["groups"]
    return bool(groups) and all(r["health"] == "ok" for grp in groups for r in grp["rules"])


def _measure(a: App, prom: subprocess.Popen[bytes], log: Callable[[], str]) -> None:
    """Phase 2 between the scrapes t0 and t1 (see the module docstring), checked."""
    stack = a.stack

    def started() -> bool:
        assert prom.poll() is None, f"prometheus exited:\n{log()}"
        return len(_scrapes(stack)) >= 2 and _rules_healthy(stack)

    _poll("Prometheus ready, 2 scrapes, healthy rules", started, 60, log)
    # t0: a fresh scrape, so phase 2 has the most time to be scraped before t1
    last = _scrapes(stack)[-1]
    a.t0 = _poll("a new scrape", lambda: [t for t in _scrapes(stack) if t > last], 10, log)[0]
    _run_phase(a.info, "measured", 2 * ROOT_COUNT, 2 * API_CALL_COUNT)
    later = _poll(
        f"{SCRAPES_IN_WINDOW} scrapes after t0",
        lambda: [t for t in _scrapes(stack) if t > a.t0][SCRAPES_IN_WINDOW - 1 :],
        30,
        log,
    )
    a.t1 = later[0]
    roots = f'sum({N.ROOTS.prom}{{job="{JOB}"}})'
    assert _scalar(stack, roots, a.t0) == ROOT_COUNT, "t0 must hold phase 1 only"
    assert _scalar(stack, roots, a.t1) == 2 * ROOT_COUNT, "phase 2 not scraped by t1"
    # A rule evaluation after t1, so the one the panels read at t1 is there ...
    requests = f'max(timestamp({N.REC_OPERATION_REQUESTS.name}{{job="{JOB}"}}))'
    _poll(
        "a rule evaluation after t1", lambda: _scalar(stack, requests, time.time()) > a.t1, 30, log
    )
    # ... and it saw all of phase 2: a scrape before it, not only the last one (which may
    # have been appended after the evaluation ran), holds all of it.
    evaluated = _scalar(stack, requests, a.t1)
    before = [t for t in _scrapes(stack) if t <= evaluated][-2]
    assert _scalar(stack, roots, before) == 2 * ROOT_COUNT, "phase 2 was slow to be scraped"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The app after both phases, a Prometheus that scraped them, and t0 / t1."""
    prometheus = require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("dashboard-proof-fastapi")
    env = {k: v for k, v in os.environ.items() if k != "OTEL_SEMCONV_STABILITY_OPT_IN"}
    env.pop("OTEL_EXPORTER_PROMETHEUS_PORT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.serve_panels"],
        cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    prom: subprocess.Popen[bytes] | None = None
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "tests.apps.serve_panels printed nothing within 60 s"
        info = json.loads(proc.stdout.readline())
        # Phase 1 before Prometheus starts: every series exists from the first scrape on.
        _run_phase(info, "warm", ROOT_COUNT, API_CALL_COUNT)
        prom, stack, log = _start_prometheus(prometheus, tmp, info["metrics_url"])
        a = App(info, stack)
        _measure(a, prom, log.read_text)
        yield a
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the app exits when its stdin closes
        if prom is not None:
            prom.terminate()
        for p in (prom, proc):
            if p is None:
                continue
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


CASES = [  # every panel of every dashboard, as (file, dashboard key, panel)
    pytest.param(file, key, p, id=f"{key}:{p['title']}")
    for key, _, file in D.DASHBOARDS
    for p in panels(generated()[file])
]

Rows = list[tuple[dict[str, str], float]]


def _finite(result: list[dict[str, Any]]) -> Rows:
    rows = [(r["metric"], float(r["value"][1])) for r in result]
    return [(labels, v) for labels, v in rows if math.isfinite(v)]


def _label_values(stack: Stack, query: str) -> set[str]:
    """What Grafana lists for ``label_values(selector, label)``."""
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
    assert m, query
    start = f"{stack.started - 60:.0f}"
    doc = stack.get("/api/v1/series", **{"match[]": m.group(1), "start": start})
    return {series[m.group(2)] for series in doc["data"] if m.group(2) in series}


def _run(app: App, panel: dict[str, Any], values: dict[str, str | None]) -> dict[str, Rows]:
    """Every target of ``panel`` at t1 with ``values`` substituted; all must parse."""
    results: dict[str, Rows] = {}
    for target in panel["targets"]:
        missing = sorted(u for u in used_variables(target["expr"]) if values.get(u) is None)
        assert not missing, f"{panel['title']}: variable(s) {missing} have no values"
        expr = substitute(target["expr"], values)
        doc = app.stack.query(expr, app.t1)
        assert doc["status"] == "success", f"{target['refId']}: {expr}\n{doc.get('error')}"
        results[target["refId"]] = _finite(doc["data"]["result"])
    return results


@pytest.mark.parametrize(("file", "key", "panel"), CASES)
def test_panel_query_returns_data_for_an_auto_instrumented_app(
    app: App, file: str, key: str, panel: dict[str, Any]
) -> None:
    dashboard = generated()[file]
    values = resolve(app.stack, file, dashboard)
    # A single-value variable (the Bottlenecks root) is tried with each of its values, not
    # only the first Grafana would pick, so every route's attribution is proven.
    runs: list[dict[str, str | None]] = [values]
    for v in variables(dashboard):
        if v["type"] == "query" and not v["multi"]:
            found = _label_values(app.stack, substitute(v["query"], values))
            assert found == set(ROOTS), (v["name"], found)
            runs = [{**r, v["name"]: x} for r in runs for x in sorted(found)]
    where = (key, panel["title"])
    for run in runs:
        results = _run(app, panel, run)
        empty = sorted(ref for ref, rows in results.items() if not rows)
        if where in D.MEASURE_ONLY_PANELS:
            # nothing feeds these without measure(); data here means the list is out of date
            assert empty == sorted(results), f"{panel['title']} has data: drop it from the list"
        elif where not in D.FAULT_ONLY_PANELS:
            assert not empty, f"{panel['title']} ({run.get('root')}): no data from {empty}"
        _exact_checks(app, panel["title"], results, run)


def _prometheus_rate(app: App, selector: str) -> float:
    """``sum(rate(selector[$__rate_interval]))`` at t1, from the raw samples, extrapolated as
    Prometheus 2 does (promql/functions.go, extrapolatedRate; the counters never reset here)."""
    window = int(builtins()["__rate_interval"].removesuffix("ms")) / 1000
    doc = app.stack.query(f"{selector}[{window * 1000:.0f}ms]", app.t1)
    total = 0.0
    for series in doc["data"]["result"]:
        (t0, v0), *_, (t1, v1) = [(float(t), float(v)) for t, v in series["values"]]
        delta, sampled = v1 - v0, t1 - t0
        average = sampled / (len(series["values"]) - 1)
        to_start, to_end = t0 - (app.t1 - window), app.t1 - t1
        if delta > 0 and v0 >= 0:  # a counter cannot be extrapolated below zero
            to_start = min(to_start, sampled * v0 / delta)
        extended = sampled
        for gap in (to_start, to_end):
            extended += gap if gap < 1.1 * average else average / 2
        total += delta * extended / sampled / window
    return total


def _by(rows: Rows, *labels: str) -> dict[Any, float]:
    key: Callable[[dict[str, str]], Any] = (
        (lambda m: m[labels[0]]) if len(labels) == 1 else (lambda m: tuple(m[x] for x in labels))
    )
    out = {key(m): v for m, v in rows}
    assert len(out) == len(rows), rows
    return out


def _approx(expected: dict[Any, float]) -> Any:
    return pytest.approx(expected, rel=1e-9, abs=1e-12)


def _exact_checks(app: App, title: str, res: dict[str, Rows], run: dict[str, str | None]) -> None:
    """Figures known from the phase's requests (see the module docstring for why rates are
    exact here)."""
    ops = app.requests()
    root = run.get("root")
    stub, prices = app.api("stub"), app.api("prices")
    if title == "Request rate":
        assert _by(res["A"], N.OPERATION) == _approx({o: app.per_second(n) for o, n in ops.items()})
    elif title == "Error %":
        errors = app.errors()
        assert _by(res["A"], N.OPERATION) == _approx(
            {o: 100 * errors.get(o, 0) / n for o, n in ops.items()}
        )
    elif title.startswith("Latency p"):
        assert set(_by(res["A"], N.OPERATION)) == set(ops)
    elif title == "Top 10 slowest operations (p95, last hour)":
        assert set(_by(res["A"], N.OPERATION)) == set(ops)  # ten operations: all of them
    elif title == "Top 10 most failing operations":
        # the recording rule's 5 m window holds both (identical) phases: the same ratio
        errors = app.errors()
        assert _by(res["A"], N.OPERATION) == _approx(
            {o: 100 * n / ops[o] for o, n in errors.items()}
        )
    elif title == "Root operations / s":
        (rate,) = [v for _, v in res["A"]]
        assert rate == pytest.approx(app.per_second(ROOTS[str(root)]), rel=1e-9)
    elif title == "Mean root duration":
        # A duration sum may not meet the "cannot have started from zero" condition (a phase
        # can be much slower than the other), so compute both rates from the raw samples as
        # Prometheus extrapolates them.
        sel = f'{{job="{JOB}",root_operation="{root}"}}'
        expected = _prometheus_rate(app, N.ROOT_DURATION.prom + sel) / _prometheus_rate(
            app, N.ROOTS.prom + sel
        )
        (mean,) = [v for _, v in res["A"]]
        assert mean == pytest.approx(expected, rel=1e-9)
    elif title == "Critical-path share per operation":
        shares = _by(res["A"], N.OPERATION)
        assert set(shares) == {app.op(o) for o in CRITICAL[str(root)]}
        assert sum(shares.values()) == pytest.approx(100.0, abs=1e-6)
    elif title == "Self time vs critical path":
        for ref in ("A", "B"):
            assert set(_by(res[ref], N.OPERATION)) == {app.op(o) for o in CRITICAL[str(root)]}
    elif title == "Top contributors":
        assert set(_by(res["A"], N.OPERATION)) == {app.op(o) for o in CRITICAL[str(root)]}
        assert sum(v for _, v in res["C"]) == pytest.approx(100.0, abs=1e-6)
    elif title == "Hit ratio per cache":
        assert _by(res["A"], N.CACHE) == _approx({serve_panels.CACHE: 0.5})  # 2 hits, 2 misses
    elif title == "Lookups / s":
        assert _by(res["A"], N.CACHE, N.RESULT) == _approx(
            {(serve_panels.CACHE, r): app.per_second(2) for r in (N.RESULT_HIT, "miss")}
        )
    elif title == "API calls / s":
        assert _by(res["A"], N.API, N.MODEL) == _approx({
            (stub, N.UNKNOWN_MODEL): app.per_second(14),
            (prices, N.UNKNOWN_MODEL): app.per_second(2),
            ("openai", "gpt-4o"): app.per_second(2),
        })  # fmt: skip
    elif title == "API error %":
        # an API call fails on a 5xx or 429 (the 404s are answers): 4 of the stub's 14
        assert _by(res["A"], N.API, N.MODEL) == _approx({
            (stub, N.UNKNOWN_MODEL): 100 * 4 / 14, (prices, N.UNKNOWN_MODEL): 0.0,
            ("openai", "gpt-4o"): 0.0,
        })  # fmt: skip
    elif title == "API latency":
        for ref in ("A", "B", "C"):
            assert set(_by(res[ref], N.API)) == {stub, prices, "openai"}
    elif title == "Tokens / s by type":
        assert _by(res["A"], N.API, N.MODEL, N.TOKEN_TYPE) == _approx(
            {("openai", "gpt-4o", t): app.per_second(n) for t, n in TOKENS.items()}
        )
    elif title == "Cost per hour":
        assert _by(res["A"], N.API, N.MODEL) == _approx(
            {("openai", "gpt-4o"): 3600 * app.per_second(COST)}
        )
    elif title.startswith("Projected cost per day"):
        rows = res["A"]
        assert [m.get(N.API) for m, _ in rows] == ["openai"] and rows[0][1] > 0


def test_measure_only_panels_name_panels_that_exist_and_say_why() -> None:
    titles = {(key, p["title"]): p["description"] for _, key, p in (c.values for c in CASES)}
    docs = (REPO / "docs" / "dashboards.md").read_text(encoding="utf-8")
    for where, reason in D.MEASURE_ONLY_PANELS.items():
        assert where in titles and where not in D.FAULT_ONLY_PANELS, where
        assert "measure()" in reason and "measure()" in titles[where], where
        assert f"| {where[1]} |" in docs, f"docs/dashboards.md does not list {where}"


# Recording rules that cannot hold data for this app, and why: a day's or an hour-old history
# (a seconds-old Prometheus has none) and items (measure() only).
RULES_WITHOUT_DATA = {
    N.REC_OPERATION_P95_MEAN_1D.name: "averages the p95 over the day that ended an hour ago",
    N.REC_OPERATION_P95_STDDEV_1D.name: "the same day's standard deviation",
    "otelperf:api_cost_usd:projected_today": "reads yesterday's spend",
    N.REC_OPERATION_ITEMS.name: "items are counted by measure() calls only",
    N.REC_OPERATION_ITEMS_PER_BUSY_SECOND.name: "items are counted by measure() calls only",
}
# Written only in the first five minutes of a UTC day (and what reads them), so empty or not
# depending on when the test runs.
TIME_OF_DAY_RULES = {"otelperf:api_cost_usd:day_start", "otelperf:api_cost_usd:spent_today"}


def test_recording_rules_cover_the_instrumented_operations(app: App) -> None:
    """Every recording rule the alerts and panels build on holds series for the app's spans:
    routes, HTTP client calls per host:port, the GenAI provider, the cache."""
    doc = yaml.safe_load((REPO / "alert_rules" / "recording.yml").read_text(encoding="utf-8"))
    records = [r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r]
    assert set(RULES_WITHOUT_DATA) | TIME_OF_DAY_RULES <= set(records)
    instrumented = set(app.requests())
    for record in (r for r in records if r not in TIME_OF_DAY_RULES):
        rows = _finite(app.stack.query(f'{record}{{job="{JOB}"}}', app.t1)["data"]["result"])
        if record in RULES_WITHOUT_DATA:
            assert not rows, f"{record} has data: drop it from RULES_WITHOUT_DATA"
            continue
        assert rows, f"{record}: no series for the auto-instrumented app"
        ops = {m[N.OPERATION] for m, _ in rows if N.OPERATION in m}
        assert ops <= instrumented | {app.op(o) for c in CRITICAL.values() for o in c}, record
        if N.OPERATION in rows[0][0] and "error" not in record:
            assert {ITEMS, "GET " + app.api("stub")} <= ops, (record, ops)
