"""``otelperf compare --prometheus`` against a real Prometheus holding planted changes.

Three hours of otelperf's duration histogram at one-minute resolution, written as OpenMetrics
and turned into TSDB blocks by ``promtool tsdb create-blocks-from openmetrics``; a real
``prometheus`` serves them.  Traffic is realistic: Poisson calls per minute, log-normal
latencies binned into otelperf's default buckets, Bernoulli errors.  Hour 1 (``P1``) and hour 2
(``P2``) come from the same distributions; hour 3 (``P3``) holds the planted changes:

=========  ===========================  ============================
operation  P1, P2                       P3
=========  ===========================  ============================
checkout   20/min, median 80 ms         1.3x slower               -> regressed
payment    20/min, 1 % errors           5 % errors                -> regressed
catalog    20/min, median 20 ms         unchanged                 -> unchanged
export     0.3/min (~18 calls an hour)  10x slower                -> insufficient_data
search     20/min, median 200 ms        0.7x (faster)             -> improved
=========  ===========================  ============================

Each period's edges sit on samples, so ``increase()`` is exact and the calls are checked
against the generator's own counts.
"""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from otelperf._names import DEFAULT_DURATION_BUCKETS
from otelperf.cli import main
from tests.conftest import free_port, require_binary

pytestmark = pytest.mark.integration

JOB = "shop"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, on a minute
HOUR = 3600
BOUNDS = (*DEFAULT_DURATION_BUCKETS, math.inf)
P1, P2, P3 = (f"{T0 + i * HOUR}..{T0 + (i + 1) * HOUR}" for i in range(3))


@dataclass(frozen=True)
class Plan:
    rate: float  # calls per minute
    median: float  # seconds
    error_ratio: float
    slowdown: float = 1.0  # P3's latency factor
    error_ratio_p3: float | None = None


PLANS = {
    "checkout": Plan(20, 0.08, 0.005, slowdown=1.3),
    "payment": Plan(20, 0.05, 0.01, error_ratio_p3=0.05),
    "catalog": Plan(20, 0.02, 0.002),
    "export": Plan(0.3, 1.0, 0.0, slowdown=10.0),
    "search": Plan(20, 0.2, 0.003, slowdown=0.7),
}
SIGMA = 0.6  # log-normal spread: p95 / median = exp(1.645 * 0.6) = 2.7


@dataclass
class Series:
    """Cumulative figures of one (operation, outcome) histogram."""

    buckets: list[int] = field(default_factory=lambda: [0] * len(BOUNDS))
    count: int = 0
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[next(i for i, le in enumerate(BOUNDS) if seconds <= le)] += 1
        self.count += 1
        self.total += seconds


def poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the small per-minute rates here.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def generate(path: Path) -> dict[str, list[int]]:
    """Write the OpenMetrics file; return each operation's calls per period (P1, P2, P3)."""
    rng = random.Random(15)
    series: dict[tuple[str, str], Series] = {
        (op, outcome): Series() for op in PLANS for outcome in ("success", "error")
    }
    snapshots: list[tuple[int, dict[tuple[str, str], tuple[list[int], int, float]]]] = []
    calls = {op: [0, 0, 0] for op in PLANS}
    for minute in range(-5, 3 * 60 + 1):  # five minutes before P1 so every series exists at T0
        ts = T0 + 60 * minute
        if minute > -5:  # the calls of the minute that ends at ts
            period = (minute - 1) // 60
            for op, plan in PLANS.items():
                factor = plan.slowdown if period == 2 else 1.0
                err = (
                    plan.error_ratio_p3 if period == 2 and plan.error_ratio_p3 else plan.error_ratio
                )
                for _ in range(poisson(rng, plan.rate)):
                    outcome = "error" if rng.random() < err else "success"
                    seconds = rng.lognormvariate(math.log(plan.median * factor), SIGMA)
                    series[op, outcome].observe(seconds)
                    if period >= 0:
                        calls[op][period] += 1
        snapshots.append((ts, {k: (list(s.buckets), s.count, s.total) for k, s in series.items()}))
    name = "otelperf_operation_duration_seconds"
    lines = [f"# TYPE {name} histogram"]
    for op, outcome in series:
        labels = f'job="{JOB}",instance="shop-1:9464",operation="{op}",outcome="{outcome}"'
        if outcome == "error":
            labels += ',error_type="TimeoutError"'
        for ts, snap in snapshots:
            per, count, total = snap[op, outcome]
            running = 0
            for le, n in zip(BOUNDS, per, strict=True):
                running += n
                le_text = "+Inf" if math.isinf(le) else repr(le)
                lines.append(f'{name}_bucket{{{labels},le="{le_text}"}} {running} {ts}')
            lines.append(f"{name}_count{{{labels}}} {count} {ts}")
            lines.append(f"{name}_sum{{{labels}}} {total!r} {ts}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return calls


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real Prometheus serving the planted history; the generator's call counts."""
    promtool, prometheus = require_binary("promtool"), require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("compare-history")
    calls = generate(tmp / "history.om")
    data = tmp / "data"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                    str(tmp / "history.om"), str(data)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    (tmp / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    log = tmp / "prometheus.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [prometheus, f"--config.file={tmp / 'prometheus.yml'}",
             f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=100y",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus not ready:\n" + log.read_text()
            time.sleep(0.2)
        yield {"url": url, "calls": calls}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def compare(h: dict[str, Any], capsys: pytest.CaptureFixture[str], baseline: str,
            candidate: str, *args: str) -> tuple[int, str]:  # fmt: skip
    code = main(["compare", "--prometheus", h["url"], "--job", JOB, "--baseline", baseline,
                 "--candidate", candidate, *args])  # fmt: skip
    out, err = capsys.readouterr()
    assert err == "", err
    return code, out


def verdicts(doc: dict[str, Any]) -> dict[str, str]:
    return {o["operation"]: o["verdict"] for o in doc["operations"]}


def test_planted_changes_get_their_verdicts_and_exit_1(history, capsys):
    code, out = compare(history, capsys, P1, P3, "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert verdicts(doc) == {"checkout": "regressed", "payment": "regressed",
                             "search": "improved", "catalog": "unchanged",
                             "export": "insufficient_data"}  # fmt: skip
    ops = {o["operation"]: o for o in doc["operations"]}
    # Exact calls: the periods start and end on samples, so increase() is the difference.
    for op, (c1, _c2, c3) in history["calls"].items():
        assert (ops[op]["calls_baseline"], ops[op]["calls_candidate"]) == (c1, c3), op
    assert ops["checkout"]["reasons"] == ["slower"]
    assert 1.2 < ops["checkout"]["mean_ratio"] < 1.4  # planted 1.3
    assert ops["payment"]["reasons"] == ["more_errors"] and ops["payment"]["error_test"] == "z"
    assert 0.005 < ops["payment"]["error_ratio_baseline"] < 0.02
    assert 0.035 < ops["payment"]["error_ratio_candidate"] < 0.065
    assert ops["search"]["reasons"] == ["faster"] and 0.6 < ops["search"]["mean_ratio"] < 0.8
    assert ops["export"]["latency_p_value"] is None  # not tested
    # Four operations tested, two tests each: the Holm family.
    assert doc["settings"] == {"alpha": 0.05, "min_effect": 0.1, "min_calls": 30,
                               "correction": "holm", "tests": 8}  # fmt: skip
    assert doc["baseline"] == {"kind": "prometheus", "target": history["url"], "job": JOB,
                               "start": T0, "end": T0 + HOUR}  # fmt: skip
    assert doc["summary"] == {"regressed": 2, "improved": 1, "unchanged": 1,
                              "insufficient_data": 1}  # fmt: skip


def test_two_healthy_hours_are_unchanged_and_exit_0(history, capsys):
    code, out = compare(history, capsys, P1, P2, "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert verdicts(doc) == {"checkout": "unchanged", "payment": "unchanged",
                             "search": "unchanged", "catalog": "unchanged",
                             "export": "insufficient_data"}  # fmt: skip


def test_swapped_periods_swap_the_verdicts(history, capsys):
    # RFC 3339 this time: the same instants.
    iso = "2026-01-01T00:00:00Z..2026-01-01T01:00:00Z"
    code, out = compare(history, capsys, P3, iso, "--format", "json")
    assert code == 1
    assert verdicts(json.loads(out)) == {
        "search": "regressed", "checkout": "improved", "payment": "improved",
        "catalog": "unchanged", "export": "insufficient_data",
    }  # fmt: skip


def test_text_and_csv(history, capsys, tmp_path):
    code, out = compare(history, capsys, P1, P3)
    assert code == 1 and "\033[" not in out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    table = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()}
    assert table["checkout"][1] == "regressed" and table["export"][1] == "insufficient_data"
    assert "checkout: slower;" in out and "payment: more_errors;" in out
    code, out = compare(history, capsys, P1, P3, "--format", "csv", "--out", str(tmp_path))
    assert code == 1 and out == f"wrote {tmp_path / 'operations.csv'} (operations)\n"
    rows = (tmp_path / "operations.csv").read_text().splitlines()
    assert rows[0].startswith("operation,verdict,reasons,calls_baseline,calls_candidate,")
    assert [r.split(",")[:2] for r in rows[1:]] == [
        ["checkout", "regressed"], ["payment", "regressed"], ["search", "improved"],
        ["catalog", "unchanged"], ["export", "insufficient_data"],
    ]  # fmt: skip


def test_a_stricter_effect_or_alpha_changes_the_verdicts(history, capsys):
    # 1.3x slower is no 50 % change; a 5x error ratio still is.
    code, out = compare(history, capsys, P1, P3, "--format", "json", "--min-effect", "0.5")
    assert code == 1
    assert verdicts(json.loads(out))["checkout"] == "unchanged"
    assert verdicts(json.loads(out))["payment"] == "regressed"
    # Demanding more calls than an hour holds: nothing can be judged, nothing regressed.
    code, out = compare(history, capsys, P1, P3, "--format", "json", "--min-calls", "5000")
    assert code == 0
    assert set(verdicts(json.loads(out)).values()) == {"insufficient_data"}


def test_a_range_without_data_and_an_unknown_job_are_errors(history, capsys):
    code = main(["compare", "--prometheus", history["url"], "--job", "nope",
                 "--baseline", P1, "--candidate", P3])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("otelperf compare: error: --baseline: Prometheus at ")
    assert "no otelperf operation calls for job='nope' between 2026-01-01T00:00:00+00:00 and " \
           "2026-01-01T01:00:00+00:00" in err  # fmt: skip
