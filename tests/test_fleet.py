"""A fleet: two hosts, each scraped by its own Prometheus in agent mode that remote-writes to one
central Prometheus, which evaluates the generated rules (docs/scaling.md, deploy/fleet/).

Everything runs for real: two otelperf services (tests/apps/fleet_host.py, a known workload
each), two ``prometheus --enable-feature=agent`` started from deploy/fleet/agent-host-*.yml and
a ``prometheus --web.enable-remote-write-receiver`` from deploy/fleet/central.yml loading
alert_rules/*.yml as `otelperf rules` writes them.  The test only changes what a test must:
targets, ports, the remote_write URL, intervals (scrape, evaluation, remote_write's batch
deadline), the rule files' absolute path, and no Alertmanager (alert states are read from the
API).

Exact totals need exact windows.  Prometheus 2 extrapolates ``increase()`` to the window's
edges unless a sample sits on each edge, and it never counts a series' first value
(test_report_prometheus.py).  One host's scrapes can be caught on both edges; two agents scrape
at unrelated phases, so here they scrape every 50 ms and 51 ms: their phases slide past each
other by a millisecond per scrape, and every few seconds both scrape in the same millisecond.
The window runs from such an instant T0 after the first run of the workload to one T1 after the
second, so over it the central Prometheus holds exactly one run of each host.  (Real fleets
scrape every 15 s or so and ask for hours: there the extrapolation is a rounding error,
docs/scaling.md.)
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from otelperf import _names as N
from tests.apps.fleet_host import COST_USD, WORKLOADS, Workload
from tests.conftest import free_port, require_binary
from tests.test_dashboards import generated, variables

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
FLEET = REPO / "deploy" / "fleet"
HOSTS = ("host-a", "host-b")
# Coprime scrape intervals (ms): the two agents' phases slide past each other every 50 * 51 ms,
# and most of those times both scrape in the same millisecond, wherever their phases start.
SCRAPE_MS = {"host-a": 50, "host-b": 51}
COUNT = N.OPERATION_DURATION.prom + "_count"


def agent_config(host: str) -> dict[str, Any]:
    """deploy/fleet's agent config of ``host`` as committed."""
    doc: dict[str, Any] = yaml.safe_load((FLEET / f"agent-{host}.yml").read_text())
    return doc


JOB = agent_config("host-a")["scrape_configs"][0]["job_name"]


def _get(url: str, timeout: float = 10) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except urllib.error.HTTPError as exc:  # 400 / 422: the answer says why
        return json.load(exc)


@dataclass
class Host:
    name: str
    proc: subprocess.Popen[str]
    target: str  # host:port of its /metrics

    def run(self) -> None:
        """One more run of the workload; returns once it is recorded."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ran"


@dataclass
class Fleet:
    central: str
    instances: dict[str, str]  # host name -> instance label
    t0: int  # ms: both agents scraped then, after run 1 (the window's start)
    t1: int  # ms: both agents scraped then, after run 2 (the window's end)
    complete: float  # Unix time after which the central Prometheus gets no more samples

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr, "time": f"{time.time() if at is None else at:.3f}"}
        doc = _get(f"{self.central}/api/v1/query?{urllib.parse.urlencode(params)}")
        assert doc["status"] == "success", (expr, doc)
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def get(self, path: str, **params: str) -> Any:
        doc = _get(f"{self.central}{path}?{urllib.parse.urlencode(params)}")
        assert doc["status"] == "success", (path, params, doc)
        return doc["data"]


class Procs:
    """The processes a fixture started, stopped in reverse order, with their logs for failures."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[tuple[str, subprocess.Popen[Any]]] = []
        self.logfiles: list[IO[bytes]] = []

    def start(self, name: str, args: list[str], **kw: Any) -> subprocess.Popen[Any]:
        self.logfiles.append((self.tmp / f"{name}.log").open("wb"))
        kw.setdefault("cwd", self.tmp)
        proc = subprocess.Popen(args, stderr=self.logfiles[-1], **kw)
        self.procs.append((name, proc))
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (exit {p.poll()}):\n{(self.tmp / f'{name}.log').read_text()[-2000:]}"
            for name, p in self.procs
        )

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for name, p in self.procs:
                if p.poll() is not None:
                    pytest.fail(f"{name} exited waiting for {what}\n{self.logs()}")
            try:
                last = check()
            except OSError as exc:
                last = exc
            if last:
                return last
            time.sleep(0.1)
        pytest.fail(f"timed out after {timeout:g} s waiting for {what}: {last!r}\n{self.logs()}")

    def stop(self, proc: subprocess.Popen[Any]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    def stop_all(self) -> None:
        for _, p in reversed(self.procs):
            self.stop(p)
        for f in self.logfiles:
            f.close()


def prometheus(procs: Procs, name: str, config: dict[str, Any], *flags: str) -> str:
    """Start a Prometheus with ``config`` (JSON is YAML) on a free port; its URL once ready."""
    binary = require_binary("prometheus")
    port = free_port()
    path = procs.tmp / f"{name}.yml"
    path.write_text(json.dumps(config))
    procs.start(name, [binary, f"--config.file={path}", f"--web.listen-address=127.0.0.1:{port}",
                       "--log.level=warn", *flags])  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
            return bool(r.status == 200)

    procs.wait(f"{name} ready", ready)
    return url


def central_config(port: int) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((FLEET / "central.yml").read_text())
    # The committed path is relative to deploy/fleet/; the copy lives in a temporary directory.
    assert doc["rule_files"] == ["../../alert_rules/*.yml"]
    doc["rule_files"] = [str(REPO / "alert_rules" / "*.yml")]
    doc["global"] = {"evaluation_interval": "1s", "scrape_interval": "1s"}
    del doc["alerting"]  # no Alertmanager here: alert states are read from /api/v1/alerts
    doc["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    return doc


def agent(procs: Procs, host: str, target: str, central: str) -> None:
    doc = agent_config(host)
    ms = SCRAPE_MS[host]
    doc["global"].update(scrape_interval=f"{ms}ms", scrape_timeout=f"{ms}ms")
    doc["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    doc["remote_write"][0]["url"] = central + "/api/v1/write"
    doc["remote_write"][0]["queue_config"]["batch_send_deadline"] = "100ms"
    prometheus(procs, f"agent-{host}", doc, "--enable-feature=agent",
               f"--storage.agent.path={procs.tmp / ('wal-' + host)}")  # fmt: skip


def sample_times(central: str, selector: str, since_ms: int) -> dict[str, dict[int, float]]:
    """Raw samples (ms -> value) per instance of ``selector`` since ``since_ms``."""
    seconds = max(1, math.ceil(time.time() - since_ms / 1000) + 1)
    params = {"query": f"{selector}[{seconds}s]", "time": f"{time.time():.3f}"}
    doc = _get(f"{central}/api/v1/query?{urllib.parse.urlencode(params)}")
    out: dict[str, dict[int, float]] = {}
    for series in doc["data"]["result"]:
        samples = out.setdefault(series["metric"]["instance"], {})
        for ts, v in series["values"]:
            if round(ts * 1000) >= since_ms:
                samples[round(ts * 1000)] = float(v)
    return out


def scrape_arrived(central: str, ms: int, instances: list[str]) -> bool:
    """Whether the central Prometheus holds every series of each instance's scrape at ``ms``:
    one sample per sample exposed (``scrape_samples_scraped``) plus the scrape's five own
    series (``up``, ``scrape_duration_seconds``, ...), all stamped ``ms``."""
    for i in instances:
        # A raw range selector (no function: timestamp() of anything but a selector gives the
        # evaluation time) over the one millisecond; the alerts' own series are not scraped.
        selector = f'{{job="{JOB}",instance="{i}",__name__!~"ALERTS.*"}}[1ms]'
        params = {"query": selector, "time": f"{ms / 1000:.3f}"}
        doc = _get(f"{central}/api/v1/query?{urllib.parse.urlencode(params)}")
        assert doc["status"] == "success", (selector, doc)
        at_ms = [
            (r["metric"]["__name__"], float(v))
            for r in doc["data"]["result"]
            for ts, v in r["values"]
            if round(ts * 1000) == ms
        ]
        scraped = [v for name, v in at_ms if name == "scrape_samples_scraped"]
        if len(scraped) != 1 or len(at_ms) != scraped[0] + 5:
            return False
    return True


def ok_calls(host: str) -> int:
    return WORKLOADS[host].ok


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    procs = Procs(tmp)
    try:
        port = free_port()
        central = prometheus(procs, "central", central_config(port),
                             f"--storage.tsdb.path={tmp / 'tsdb'}",
                             "--web.enable-remote-write-receiver")  # fmt: skip
        hosts = []
        for name in HOSTS:
            proc = procs.start(name, [sys.executable, "-m", "tests.apps.fleet_host", name],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=REPO)  # fmt: skip
            assert proc.stdout is not None
            url = json.loads(proc.stdout.readline())["metrics_url"]
            hosts.append(Host(name, proc, url.split("/")[2]))
        agents = {}
        for h in hosts:
            agent(procs, h.name, h.target, central)
            agents[h.name] = procs.procs[-1][1]
        instances = {
            h: agent_config(h)["scrape_configs"][0]["relabel_configs"][0]["replacement"]
            for h in HOSTS
        }
        inst = sorted(instances.values())
        # T0: both agents scraped in the same millisecond after run 1 (all of each scrape's
        # samples carry its time).  The ok counts differ per host: compare per instance.
        start_ms = int(time.time() * 1000)

        def meeting(since: int, runs: int) -> int | None:
            selector = f'{COUNT}{{job="{JOB}",operation="ingest",outcome="success"}}'
            found = sample_times(central, selector, since)
            if set(found) != set(inst):
                return None
            by_host = {
                i: {ts for ts, v in found[i].items() if v == runs * ok_calls(h)}
                for h, i in instances.items()
            }
            shared = set.intersection(*by_host.values())
            return min(shared) if shared else None

        t0 = procs.wait("both agents scraping in one millisecond after run 1",
                        lambda: meeting(start_ms, 1), timeout=90)  # fmt: skip
        for h in hosts:
            h.run()
        ran_ms = int(time.time() * 1000) + 1
        t1 = procs.wait("both agents scraping in one millisecond after run 2",
                        lambda: meeting(ran_ms, 2), timeout=90)  # fmt: skip
        # Every series of both scrapes at T0 and T1 has arrived: remote_write sends series in
        # shards, each at its own pace.  A scrape writes one sample per exposed sample
        # (scrape_samples_scraped) plus its five own series (up, scrape_duration_seconds, ...).
        for t in (t0, t1):
            procs.wait(f"every sample scraped at {t} ms at the central Prometheus",
                       lambda t=t: scrape_arrived(central, t, inst))  # fmt: skip
        # Stop the agents: then the central Prometheus gets no more samples, so a rule
        # evaluated from then on saw every sample a query sees later.  SIGKILL, not SIGTERM:
        # a graceful stop may end each scrape loop with staleness markers, which reach the
        # central Prometheus or not depending on timing, and a later instant query then misses
        # that host (seen once under a full test run: one host's API cost gone).  A write the
        # central one had fully received when the agent died is appended within milliseconds:
        # "complete" is a second later.
        for name in HOSTS:
            agents[name].kill()
            agents[name].wait()
        yield Fleet(central, instances, t0, t1, time.time() + 1.0)
    finally:
        procs.stop_all()


# --- what the hosts recorded -------------------------------------------------------------------
def one_run(w: Workload) -> dict[str, float]:
    """The counters one run of ``w`` adds, by a short key."""
    return {
        "ingest.ok": w.ok, "ingest.error": w.errors, "ingest.items": w.items * (w.ok + w.errors),
        "publish.ok": w.publish, "rows.hit": w.hits, "rows.miss": w.misses,
        "geocoder.calls": w.api_calls, "geocoder.cost": w.api_calls * COST_USD,
    }  # fmt: skip


def fleet_run() -> dict[str, float]:
    """One run on every host, summed."""
    runs = [one_run(WORKLOADS[h]) for h in HOSTS]
    return {k: sum(r[k] for r in runs) for k in runs[0]}


def values(rows: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(x, "") for x in labels): float(r["value"][1]) for r in rows}


def window(f: Fleet) -> str:
    return f"{f.t1 - f.t0}ms"


# --- the configs ------------------------------------------------------------------------------
def test_fleet_configs_pass_promtool() -> None:
    promtool = require_binary("promtool")
    for host in HOSTS:
        path = FLEET / f"agent-{host}.yml"
        done = subprocess.run([promtool, "check", "config", "--agent", str(path)],
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    # The central one loads the generated rules through its relative path: promtool checks them.
    done = subprocess.run([promtool, "check", "config", str(FLEET / "central.yml")],
                          capture_output=True, text=True, cwd="/")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 2 rule files found" in done.stdout
    # An agent evaluates no rules and sends no alerts: the central config is no agent config.
    done = subprocess.run([promtool, "check", "config", "--agent", str(FLEET / "central.yml")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode != 0 and "not allowed in agent mode" in done.stdout + done.stderr


def test_agents_differ_only_in_what_names_the_host() -> None:
    a, b = (agent_config(h) for h in HOSTS)
    assert a["global"]["external_labels"] == {"cluster": "example", "host": "host-a"}
    assert b["global"]["external_labels"] == {"cluster": "example", "host": "host-b"}
    jobs = [[c["job_name"] for c in doc["scrape_configs"]] for doc in (a, b)]
    assert jobs == [[JOB], [JOB]]
    for doc in (a, b):
        del doc["global"]["external_labels"]
        del doc["scrape_configs"][0]["relabel_configs"]
    assert a == b


# --- the central Prometheus -------------------------------------------------------------------
def test_central_holds_every_sample_of_both_hosts(fleet: Fleet) -> None:
    at = fleet.t1 / 1000
    # Each series carries the instance from the agent's scrape and the agent's external labels.
    ups = fleet.query(f'up{{job="{JOB}"}}', at)
    assert sorted(r["metric"]["instance"] for r in ups) == sorted(fleet.instances.values())
    for r in ups:
        host = r["metric"]["host"]
        assert r["metric"] == {"__name__": "up", "job": JOB, "instance": fleet.instances[host],
                               "cluster": "example", "host": host}  # fmt: skip
        assert r["value"][1] == "1"
    info = fleet.query(f'target_info{{job="{JOB}"}}', at)
    assert {(r["metric"]["host"], r["metric"]["service_name"]) for r in info} == {
        (h, h) for h in HOSTS
    }
    # Two runs on each host, exactly, under the host's own labels.
    counts = values(fleet.query(f'{COUNT}{{job="{JOB}"}}', at), "host", "operation", "outcome")
    items = values(fleet.query(f'{N.OPERATION_ITEMS.prom}{{job="{JOB}"}}', at), "host",
                   "operation")  # fmt: skip
    cost = values(fleet.query(f'{N.API_COST.prom}{{job="{JOB}"}}', at), "host", "api")
    for h in HOSTS:
        w = one_run(WORKLOADS[h])
        assert counts[(h, "ingest", "success")] == 2 * w["ingest.ok"]
        assert counts[(h, "ingest", "error")] == 2 * w["ingest.error"]
        assert counts[(h, "publish", "success")] == 2 * w["publish.ok"]
        assert items[(h, "ingest")] == 2 * w["ingest.items"]
        assert cost[(h, "geocoder")] == 2 * w["geocoder.cost"]
    assert {k[0] for k in counts} == set(HOSTS)


SIMPLE_RULE = re.compile(
    r"sum by \((?P<by>[\w, ]+)\) \((?:(?P<fn>rate|increase)\()?(?P<metric>otelperf_\w+)"
    r"(?:\{(?P<matchers>[^}]*)\})?(?:\[(?P<range>\w+)\]\))?\)"
)


def per_host(rule: re.Match[str], instance: str) -> str:
    """A per-job rule's expression restricted to one instance."""
    matchers = ",".join(m for m in (rule["matchers"], f'instance="{instance}"') if m)
    inner = f"{rule['metric']}{{{matchers}}}"
    if rule["fn"]:
        inner = f"{rule['fn']}({inner}[{rule['range']}])"
    return f"sum by ({rule['by']}) ({inner})"


def test_rules_evaluate_centrally_over_both_hosts(fleet: Fleet) -> None:
    groups = fleet.get("/api/v1/rules")["groups"]
    want = {g["name"] for f in (REPO / "alert_rules").glob("*.yml")
            for g in yaml.safe_load(f.read_text())["groups"]}  # fmt: skip
    assert {g["name"] for g in groups} == want
    for g in groups:
        for r in g["rules"]:
            assert (r["health"], r.get("lastError", "")) == ("ok", ""), (g["name"], r)
    # An evaluation after the last sample arrived saw all of them: its results are the same
    # query now.  The group evaluates all its rules at one timestamp.
    requests = "otelperf:operation_requests:rate"

    def evaluated_after_complete() -> float | None:
        rows = fleet.query(f'{requests}{{job="{JOB}"}}[10s]')
        stamps = [float(ts) for r in rows for ts, _ in r["values"]]
        later = [ts for ts in stamps if ts > fleet.complete + 0.01]
        return min(later) if later else None

    at = float(
        wait_for_value(evaluated_after_complete, "a rule evaluation after the agents stopped")
    )
    recording = yaml.safe_load((REPO / "alert_rules" / "recording.yml").read_text())
    checked = {}
    for rule in recording["groups"][0]["rules"]:
        m = SIMPLE_RULE.fullmatch(rule["expr"])
        if m is None or not m["by"].startswith("job"):
            continue
        by = [x.strip() for x in m["by"].split(",")]
        recorded = fleet.query(f'{rule["record"]}{{job="{JOB}"}}', at)
        # Aggregated over the hosts: the rule's own labels only, no instance or agent labels.
        for r in recorded:
            assert set(r["metric"]) == {"__name__", *by}, (rule["record"], r["metric"])
        got = values(recorded, *by)
        parts = [values(fleet.query(per_host(m, i), at), *by) for i in fleet.instances.values()]
        want_sum = {k: sum(p.get(k, 0.0) for p in parts) for k in set().union(*parts)}
        assert got.keys() == want_sum.keys(), rule["record"]
        for k, v in got.items():
            assert v == pytest.approx(want_sum[k], rel=1e-12, abs=0), (rule["record"], k)
        checked[rule["record"]] = (got, parts)
    assert set(checked) >= {
        requests, "otelperf:operation_errors:rate", "otelperf:operation_items:rate",
        "otelperf:cache_requests:rate", "otelperf:api_calls:rate", "otelperf:api_cost_usd:sum",
        "otelperf:operation_requests:increase1h", "otelperf:api_cost_usd:rate1h",
    }  # fmt: skip
    # Both hosts count: each host's part of ingest's request rate is there and not zero.
    got, parts = checked[requests]
    assert all(p[(JOB, "ingest")] > 0 for p in parts) and len(parts) == 2
    # The running total of spend is known exactly: two runs on each host.
    assert checked["otelperf:api_cost_usd:sum"][0] == {(JOB,): 2 * fleet_run()["geocoder.cost"]}


def wait_for_value(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def test_error_rate_alert_from_both_hosts_errors(fleet: Fleet) -> None:
    """Every generated alert waits 2 minutes or more (``for``) before it fires, longer than this
    test runs: the central Prometheus is shown to hold the alert pending, which is the rule's
    condition being true there, evaluation after evaluation."""
    name = "OtelperfOperationErrorRateHigh"

    def pending() -> list[dict[str, Any]]:
        alerts = fleet.get("/api/v1/alerts")["alerts"]
        mine = [a for a in alerts if a["labels"]["alertname"] == name]
        return mine if len(mine) == 2 else []

    alerts = wait_for_value(pending, f"{name} pending")
    # (Firing only if this module ran for over 5 minutes: the condition held all along.)
    assert sorted(a["labels"]["severity"] for a in alerts) == ["critical", "warning"]
    assert {a["state"] for a in alerts} <= {"pending", "firing"}
    for a in alerts:
        assert set(a["labels"]) == {"alertname", "job", "operation", "severity"}
        assert (a["labels"]["job"], a["labels"]["operation"]) == (JOB, "ingest")
    # The alert needs 5 errors in 5 minutes: each host had 3 in its second run (the first run
    # is each series' first value, which rate() never counts), so only the job's sum over both
    # hosts reaches it.
    at = time.time()
    errors = f'{COUNT}{{job="{JOB}",operation="ingest",outcome="error"'
    for i in fleet.instances.values():
        (row,) = fleet.query(f'sum(increase({errors},instance="{i}"}}[5m]))', at)
        assert 3 <= float(row["value"][1]) < 5
    (row,) = fleet.query(f'otelperf:operation_errors:rate{{job="{JOB}",operation="ingest"}} * 300',
                         at)  # fmt: skip
    assert float(row["value"][1]) >= 6


# --- the report -------------------------------------------------------------------------------
def test_report_totals_are_exact_across_both_hosts(fleet: Fleet) -> None:
    at = f"{fleet.t1 / 1000:.3f}"
    done = subprocess.run(
        [sys.executable, "-m", "otelperf.cli", "report", "--prometheus", fleet.central,
         "--job", JOB, "--window", window(fleet), "--at", at, "--format", "json"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    doc = json.loads(done.stdout)
    seconds = (fleet.t1 - fleet.t0) / 1000
    assert doc["source"] == {"kind": "prometheus", "target": fleet.central, "job": JOB,
                             "window": window(fleet), "at": float(at), "window_seconds": seconds,
                             "data_seconds": seconds}  # fmt: skip
    want = fleet_run()  # the window holds exactly the second run of each host
    ops = {r["operation"]: r for r in doc["operations"]}
    assert set(ops) == {"ingest", "publish"}
    calls = want["ingest.ok"] + want["ingest.error"]
    assert {k: ops["ingest"][k] for k in ("calls", "errors", "error_ratio", "items")} == {
        "calls": calls, "errors": want["ingest.error"],
        "error_ratio": want["ingest.error"] / calls, "items": want["ingest.items"],
    }  # fmt: skip
    assert {k: ops["publish"][k] for k in ("calls", "errors", "items")} == {
        "calls": want["publish.ok"], "errors": 0, "items": 0,
    }  # fmt: skip
    caches = {r["cache"]: r for r in doc["caches"]}
    assert {k: caches["rows"][k] for k in ("hits", "misses")} == {
        "hits": want["rows.hit"], "misses": want["rows.miss"],
    }  # fmt: skip
    (api,) = doc["apis"]
    assert {k: api[k] for k in ("api", "calls", "errors", "cost_usd")} == {
        "api": "geocoder", "calls": want["geocoder.calls"], "errors": 0,
        "cost_usd": want["geocoder.cost"],
    }  # fmt: skip


# --- the dashboards ---------------------------------------------------------------------------
def grafana_regex(values: list[str]) -> str:
    """A multi-value variable on several values, as Grafana sends it: ``(a|b)``, metacharacters
    escaped (and each backslash doubled inside a PromQL string)."""
    return "(" + "|".join(re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in values) + ")"


def substitute(text: str, chosen: dict[str, str]) -> str:
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: chosen[m.group(1) or m.group(2)], text)


def label_values(fleet: Fleet, query: str, chosen: dict[str, str]) -> list[str]:
    """What Grafana's ``label_values(selector, label)`` lists, from the central Prometheus."""
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
    assert m, query
    found: list[str] = fleet.get(
        f"/api/v1/label/{m.group(2)}/values", **{"match[]": substitute(m.group(1), chosen)},
        start=f"{fleet.t0 / 1000 - 60:.3f}", end=f"{fleet.t1 / 1000:.3f}",
    )  # fmt: skip
    return found


def panel_queries(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            walk(p.get("panels", []))
            if p.get("targets"):
                out[p["title"]] = [t["expr"] for t in p["targets"]]

    walk(dashboard["panels"])
    return out


@pytest.mark.parametrize("file", sorted(generated()))
def test_dashboard_job_and_instance_selectors(fleet: Fleet, file: str) -> None:
    dashboard = generated()[file]
    queries = {v["name"]: v["query"] for v in variables(dashboard) if v["type"] == "query"}
    assert label_values(fleet, queries["job"], {}) == [JOB]
    assert label_values(fleet, queries["instance"], {"job": JOB}) == sorted(
        fleet.instances.values()
    )


def test_dashboard_panels_sum_both_hosts(fleet: Fleet) -> None:
    """Panels with both instances chosen show both hosts' sum; with one, that host's figure.
    At T1 over the window (T0, T1] as the rate interval, every rate is exact: one run / window."""
    overview, cache_apis = generated()["overview.json"], generated()["cache-apis.json"]
    at, seconds = fleet.t1 / 1000, (fleet.t1 - fleet.t0) / 1000

    def run(dashboard: dict[str, Any], title: str, hosts: tuple[str, ...]) -> list[list[Any]]:
        chosen = {"job": JOB, "instance": grafana_regex([fleet.instances[h] for h in hosts]),
                  "__rate_interval": window(fleet)}  # fmt: skip
        for v in variables(dashboard):
            if v["type"] == "query" and v["name"] not in chosen:
                found = label_values(fleet, v["query"], chosen)
                assert found, (v["name"], v["query"])
                chosen[v["name"]] = grafana_regex(found)
        return [fleet.query(substitute(q, chosen), at) for q in panel_queries(dashboard)[title]]

    for hosts in (HOSTS, HOSTS[:1], HOSTS[1:]):
        runs = [one_run(WORKLOADS[h]) for h in hosts]
        want = {k: sum(r[k] for r in runs) for k in runs[0]}
        (rate,) = run(overview, "Request rate", hosts)
        assert values(rate, "operation") == pytest.approx({
            ("ingest",): (want["ingest.ok"] + want["ingest.error"]) / seconds,
            ("publish",): want["publish.ok"] / seconds,
        }, rel=1e-12)  # fmt: skip
        (errors,) = run(overview, "Error %", hosts)
        assert values(errors, "operation") == pytest.approx({
            ("ingest",): 100 * want["ingest.error"] / (want["ingest.ok"] + want["ingest.error"]),
            ("publish",): 0.0,
        }, rel=1e-12)  # fmt: skip
        (items,) = run(overview, "Items / s", hosts)
        assert values(items, "operation")[("ingest",)] == pytest.approx(
            want["ingest.items"] / seconds, rel=1e-12
        )
        (lookups,) = run(cache_apis, "Lookups / s", hosts)
        assert values(lookups, "cache", "result") == pytest.approx({
            ("rows", "hit"): want["rows.hit"] / seconds,
            ("rows", "miss"): want["rows.miss"] / seconds,
        }, rel=1e-12)  # fmt: skip
        (cost,) = run(cache_apis, "Cost per hour", hosts)
        assert values(cost, "api") == pytest.approx(
            {("geocoder",): 3600 * want["geocoder.cost"] / seconds}, rel=1e-12
        )
