"""Proof that the dashboards' queries work: the demo, a real Prometheus, every panel's query.

No Grafana server runs here, so the test does what Grafana would: it resolves each template
variable from Prometheus's series API (multi-value variables on "All" become the regex
``(a|b|c)`` Grafana sends), substitutes Grafana's built-in intervals for the dashboards' default
time range, and sends every panel's query to ``/api/v1/query``.  Every query must parse, and
every panel that does not only show faults (``dashboards.FAULT_ONLY_PANELS``) must return at
least one finite value.  The generated recording rules are loaded, so panels reading them are
proven too.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import otelperf.generate.dashboards as D
from otelperf import _names as N
from otelperf import demo
from tests.conftest import free_port, require_binary
from tests.test_dashboards import generated, panels, used_variables, variables

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
JOB = "otelperf-demo"
SCRAPE_SECONDS = 1
MAX_DATA_POINTS = 1000  # roughly what Grafana asks for on a wide panel
NO_VALUE = "(__no_value__)"


def _wait(what: str, check: Any, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what}: process exited with {proc.returncode}:\n{log.read_text()}")
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}:\n{log.read_text()[-3000:]}")


@dataclass
class Stack:
    prometheus: str
    started: float
    resolved: dict[str, dict[str, str | None]] = field(default_factory=dict)

    def get(self, path: str, **params: str) -> dict[str, Any]:
        url = f"{self.prometheus}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                doc: dict[str, Any] = json.load(resp)
        except urllib.error.HTTPError as exc:  # 400 / 422: the query did not parse or run
            doc = json.load(exc)
        return doc

    def query(self, expr: str, at: float | None = None) -> dict[str, Any]:
        at = time.time() if at is None else at
        return self.get("/api/v1/query", query=expr, time=f"{at:.3f}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("dashboard-proof")
    demo_log = tmp / "demo.log"
    with demo_log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "otelperf.cli", "demo", "--port", "0", "--duration", "300",
             "--error-rate", "0.05", "--summary-interval", "3600"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
        )  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = [demo]
    try:
        url = _wait(
            "the demo's /metrics URL",
            lambda: re.search(r"serving (http://\S+)/metrics", demo_log.read_text()),
            30, demo, demo_log,
        ).group(1)  # fmt: skip
        target = url.removeprefix("http://")
        port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML; rule files: the generated ones, as compose loads them
                {
                    "global": {
                        "scrape_interval": f"{SCRAPE_SECONDS}s",
                        "evaluation_interval": f"{SCRAPE_SECONDS}s",
                    },
                    "rule_files": [str(REPO / "alert_rules" / "*.yml")],
                    "scrape_configs": [
                        {"job_name": JOB, "static_configs": [{"targets": [target]}]}
                    ],
                }
            )
        )
        prom_log = tmp / "prometheus.log"
        with prom_log.open("wb") as out:
            prom = subprocess.Popen(
                [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
            )  # fmt: skip
        procs.append(prom)
        s = Stack(f"http://127.0.0.1:{port}", time.time())

        def ready() -> bool:
            with urllib.request.urlopen(f"{s.prometheus}/-/ready", timeout=2) as r:
                return bool(r.status == 200)

        _wait("Prometheus ready", ready, 30, prom, prom_log)

        # Enough scrapes for every rate window ($__rate_interval is a few seconds here) and
        # rule groups that have been evaluated a few times.
        def data_there() -> bool:
            res = s.query(f'count_over_time(up{{job="{JOB}"}}[1m])')["data"]["result"]
            groups = s.get("/api/v1/rules")["data"]["groups"]
            return (
                bool(res)
                and float(res[0]["value"][1]) >= 8
                and bool(groups)
                and all(r["health"] == "ok" for grp in groups for r in grp["rules"])
            )

        _wait("8 scrapes of the demo and healthy rules", data_there, 60, prom, prom_log)
        yield s
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --- what Grafana would send ------------------------------------------------------------------
def _range_seconds() -> int:
    m = re.fullmatch(r"now-(\d+)([smhd])", D.DashboardSettings().time_from)
    assert m, D.DashboardSettings().time_from
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def builtins() -> dict[str, str]:
    """Grafana's interval macros for the default time range and a 1 s scrape interval."""
    range_ms = _range_seconds() * 1000
    scrape_ms = SCRAPE_SECONDS * 1000
    interval_ms = max(scrape_ms, range_ms // MAX_DATA_POINTS)
    rate_ms = max(interval_ms + scrape_ms, 4 * scrape_ms)  # Grafana's $__rate_interval rule
    return {
        "__interval": f"{interval_ms}ms",
        "__interval_ms": str(interval_ms),
        "__rate_interval": f"{rate_ms}ms",
        "__range": f"{range_ms // 1000}s",
        "__range_s": str(range_ms // 1000),
    }


def _regex_escape(value: str) -> str:
    # Grafana escapes regex metacharacters in multi-value variables; inside a PromQL string
    # literal each backslash is doubled again.
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value)


def substitute(text: str, values: dict[str, str | None]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        value = values.get(name)
        assert value is not None, f"variable ${name} has no value"
        return value

    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", one, text)


def resolve(s: Stack, file: str, dashboard: dict[str, Any]) -> dict[str, str | None]:
    """Variable values the way Grafana fills the drop-downs (None: no values exist)."""
    if file in s.resolved:
        return s.resolved[file]
    values: dict[str, str | None] = dict(builtins())
    for v in variables(dashboard):
        if v["type"] == "datasource":
            values[v["name"]] = "prometheus"
            continue
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"])
        assert m, v["query"]
        if any(values.get(u) is None for u in used_variables(m.group(1))):
            values[v["name"]] = None
            continue
        selector = substitute(m.group(1), values)
        doc = s.get("/api/v1/series", **{"match[]": selector, "start": f"{s.started - 60:.0f}"})
        assert doc["status"] == "success", (v["name"], selector, doc)
        found = sorted({series[m.group(2)] for series in doc["data"] if m.group(2) in series})
        if not found:
            values[v["name"]] = None
        elif v["multi"]:
            values[v["name"]] = "(" + "|".join(_regex_escape(x) for x in found) + ")"
        else:
            values[v["name"]] = found[0]
    s.resolved[file] = values
    return values


def _cases() -> list[Any]:
    out = []
    for file, d in generated().items():
        key = next(k for k, _, f in D.DASHBOARDS if f == file)
        for p in panels(d):
            out.append(pytest.param(file, key, p, id=f"{key}:{p['title']}"))
    return out


def _finite(result: list[dict[str, Any]]) -> list[tuple[dict[str, str], float]]:
    rows = [(r["metric"], float(r["value"][1])) for r in result]
    return [(labels, v) for labels, v in rows if math.isfinite(v)]


@pytest.mark.parametrize(("file", "key", "panel"), _cases())
def test_panel_query_runs_and_returns_data(
    stack: Stack, file: str, key: str, panel: dict[str, Any]
) -> None:
    dashboard = generated()[file]
    values = resolve(stack, file, dashboard)
    fault_only = (key, panel["title"]) in D.FAULT_ONLY_PANELS
    results: dict[str, list[tuple[dict[str, str], float]]] = {}
    exprs: dict[str, str] = {}
    missing: set[str] = set()
    for target in panel["targets"]:
        missing |= {u for u in used_variables(target["expr"]) if values.get(u) is None}
        # A variable without values still gets a (matching-nothing) value, so the query is
        # proven to parse even while nothing exposes the metric its drop-down reads.
        expr = substitute(target["expr"], {**values, **{u: NO_VALUE for u in missing}})
        doc = stack.query(expr)
        assert doc["status"] == "success", f"{target['refId']}: {expr}\n{doc.get('error')}"
        results[target["refId"]] = _finite(doc["data"]["result"])
        exprs[target["refId"]] = expr
    if missing:
        queries = {v["name"]: v["query"] for v in variables(dashboard)}
        pytest.fail(
            f"{panel['title']}: variable(s) {sorted(missing)} have no values: "
            + "; ".join(f"{queries[n]} matched no series" for n in sorted(missing))
        )
    if not fault_only:
        empty = sorted(ref for ref, rows in results.items() if not rows)
        assert not empty, f"{panel['title']}: no data from " + "; ".join(
            f"{ref}: {exprs[ref]}" for ref in empty
        )
    _exact_checks(stack, panel["title"], results, exprs)


def _exact_checks(
    stack: Stack,
    title: str,
    results: dict[str, list[tuple[dict[str, str], float]]],
    exprs: dict[str, str],
) -> None:
    """Values known from the demo's structure, so "returns data" is not all that is checked."""
    if title == "Critical-path share per operation":
        assert sum(v for _, v in results["A"]) == pytest.approx(100.0, abs=1e-6)
        assert all(0 <= v <= 100 for _, v in results["A"])
    elif title == "CPU-bound vs waiting":
        cpu = {labels["operation"]: v for labels, v in results["A"]}
        waiting = {labels["operation"]: v for labels, v in results["B"]}
        assert cpu.keys() == waiting.keys()
        for op, v in cpu.items():
            assert 0 <= v <= 100 and v + waiting[op] == pytest.approx(100.0)
        # parse is the demo's synchronous (CPU-measured) step; its share depends on the load
        # of the machine, so only its presence and a non-zero share are known
        assert "parse" in cpu and cpu["parse"] > 0
    elif title == "Error %":
        # operations that never fail read 0 %, not "no data" (the "or 0 * total" branch)
        errors = {labels["operation"]: v for labels, v in results["A"]}
        assert {demo.ROOT, *demo.STAGES} <= set(errors)
        assert errors["parse"] == errors["download"] == errors["enrich"] == 0.0
    elif title == "Request rate":
        rates = {labels["operation"]: v for labels, v in results["A"]}
        assert {demo.ROOT, *demo.STAGES} <= set(rates)
        # every order runs each of these stages once (fetch_price only on a cache miss)
        for stage in ("download", "parse", "enrich", "recommend", "store"):
            assert rates[stage] == pytest.approx(rates[demo.ROOT], rel=0.1), stage
    elif title == "Top 10 most failing operations":
        failing = {labels["operation"] for labels, _ in results["A"]}
        # Since issue 12 every span has outcomes: the demo's LLM call (an api_call() CLIENT
        # span, named "<api> <model>") fails with recommend.
        llm = f"{demo.LLM_API} {demo.LLM_MODEL}"
        assert "store" in failing and failing <= {"store", "recommend", demo.ROOT, llm}
    elif title == "Top contributors":
        ops = {labels["operation"] for labels, _ in results["A"]}
        assert ops == {labels["operation"] for labels, _ in results["C"]}
        assert len(ops) < 10  # so the top ten are all of them, and their shares sum to 100
        assert sum(v for _, v in results["C"]) == pytest.approx(100.0, abs=1e-6)
    elif title == "Hit ratio per cache":
        (labels, ratio), *_ = results["A"]
        assert labels == {"cache": "prices"} and 0 < ratio < 1
    elif title == "API calls / s":
        assert [labels for labels, _ in results["A"]] == [
            {"api": demo.LLM_API, "model": demo.LLM_MODEL}
        ]
    elif title == "Tokens / s by type":
        tokens = {labels["token_type"]: v for labels, v in results["A"]}
        # the demo sends 300..1200 input tokens and receives 40..300 per call
        assert set(tokens) == {"input", "output"} and tokens["input"] > tokens["output"] > 0
    elif title == "Cost per hour":
        # cost and tokens are counted at the same span end and scraped together, so the
        # cost rate is exactly the token rates times the demo's prices
        at = time.time()  # both at the same instant, so over the same samples
        (per_hour,) = [float(r["value"][1]) for r in stack.query(exprs["A"], at)["data"]["result"]]
        window = builtins()["__rate_interval"]
        doc = stack.query(f"sum by (token_type) (rate({N.API_TOKENS.prom}[{window}]))", at)
        tokens = {r["metric"]["token_type"]: float(r["value"][1]) for r in doc["data"]["result"]}
        price_in, price_out = demo.LLM_PRICE
        expected = 3600 * (tokens["input"] * price_in + tokens["output"] * price_out) / 1e6
        assert per_hour == pytest.approx(expected, rel=1e-6)
