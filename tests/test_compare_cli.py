"""``otelperf compare BASELINE.json CANDIDATE.json`` on reports of two real runs of a workload,
and every kind of bad input (one line on stderr, exit 2, no traceback).

Each run configures otelperf on a free port, runs the workload through ``measure()``, and
writes ``otelperf report --url ... --format json --top 0`` of its own /metrics.  Sleeps are
long enough to land in their bucket on a busy machine, so the runs are short: 12 calls an
operation, compared with ``--min-calls 10``:

* ``query``: sleeps 55 ms (bucket (0.05, 0.1], 45 ms of slack); the second run's slower
  variant sleeps 130 ms (bucket (0.1, 0.25]) -> ``regressed``;
* ``render``: sleeps 55 ms in both runs -> ``unchanged``;
* ``warmup``: 3 calls -> ``insufficient_data``.

Wall time decides the bucket, never a figure the test checks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import otelperf
from otelperf._names import DEFAULT_DURATION_BUCKETS
from otelperf.cli import main
from otelperf.report.compare.command import add_arguments
from otelperf.report.compare.model import OPERATION_KEYS

N = 12  # calls of query and render per run
MIN = ("--min-calls", "10")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process, as a user (or CI) runs it."""
    return subprocess.run(
        [sys.executable, "-m", "otelperf.cli", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def run_and_report(path: Path, query_sleep: float) -> None:
    """One run of the workload, then ``otelperf report`` of its /metrics into ``path``."""
    t = otelperf.configure(service_name="compare-test", prometheus_port=0,
                           registry=CollectorRegistry(), set_global=False)  # fmt: skip
    try:
        for _ in range(N):
            with otelperf.measure("query"):
                time.sleep(query_sleep)
            with otelperf.measure("render"):
                time.sleep(0.055)
        for _ in range(3):
            with otelperf.measure("warmup"):
                pass
        assert t.metrics_url is not None
        p = cli("report", "--url", t.metrics_url, "--format", "json", "--top", "0")
        assert (p.returncode, p.stderr) == (0, "")
        path.write_text(p.stdout)
    finally:
        t.shutdown()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two real runs: ``before`` and ``after`` (query 55 ms -> 130 ms)."""
    tmp = tmp_path_factory.mktemp("compare-reports")
    paths = {"before": tmp / "before.json", "after": tmp / "after.json"}
    run_and_report(paths["before"], 0.055)
    run_and_report(paths["after"], 0.13)
    return {k: str(v) for k, v in paths.items()}


def cumulative(index_of_all: int, n: int) -> list[list[Any]]:
    """The report's buckets with all ``n`` calls in bucket ``index_of_all``."""
    out: list[list[Any]] = []
    for i, le in enumerate(DEFAULT_DURATION_BUCKETS):
        out.append([int(le) if le.is_integer() else le, n if i >= index_of_all else 0])
    return [*out, ["+Inf", n]]


def compare(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    out, err = capsys.readouterr()
    return code, out, err


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["operation"]: o for o in doc["operations"]}


def test_the_reports_carry_exact_bucket_counts(reports):
    before = by_name(json.loads(Path(reports["before"]).read_text()))
    after = by_name(json.loads(Path(reports["after"]).read_text()))
    # 55 ms: bucket index 9 (0.05, 0.1]; 130 ms: index 10 (0.1, 0.25].
    assert before["query"]["buckets"] == cumulative(9, N)
    assert after["query"]["buckets"] == cumulative(10, N)
    assert before["render"]["buckets"] == after["render"]["buckets"] == cumulative(9, N)
    assert N * 0.055 <= before["query"]["sum_seconds"] <= N * 0.1
    assert N * 0.13 <= after["query"]["sum_seconds"] <= N * 0.25


def test_slower_run_regressed_and_exits_1(reports, capsys):
    code, out, err = compare(capsys, reports["before"], reports["after"], *MIN, "--format", "json")
    assert (code, err) == (1, "")
    assert out == json.dumps(json.loads(out), sort_keys=True, indent=2) + "\n"
    doc = json.loads(out)
    assert set(doc) == {"baseline", "candidate", "settings", "summary", "operations"}
    ops = by_name(doc)
    assert {k: o["verdict"] for k, o in ops.items()} == {
        "query": "regressed", "render": "unchanged", "warmup": "insufficient_data"
    }  # fmt: skip
    q = ops["query"]
    assert (q["calls_baseline"], q["calls_candidate"], q["reasons"]) == (N, N, ["slower"])
    # Every baseline call in a lower bucket than every candidate call: U = n1 n2 = 144, and
    # with two tie groups of 12: var = 144/12 * (25 - 2 * (12^3 - 12) / (24 * 23)).
    z = (144 - 72 - 0.5) / math.sqrt(12 * (25 - 2 * (12**3 - 12) / (24 * 23)))
    assert (q["latency_u"], q["latency_prob_slower"]) == (144, 1)
    assert math.isclose(q["latency_z"], z, rel_tol=1e-12)
    assert math.isclose(q["latency_p_adjusted"], 4 * math.erfc(z / math.sqrt(2)), rel_tol=1e-9)
    assert q["mean_ratio"] >= 1.3  # 130 ms or more against 100 ms or less
    # histogram_quantile halfway into the bucket holding every call
    assert math.isclose(q["p50_seconds_baseline"], 0.075)
    assert math.isclose(q["p50_seconds_candidate"], 0.175)
    r = ops["render"]
    assert (r["latency_u"], r["latency_p_value"], r["reasons"]) == (72, 1, [])
    assert (r["error_test"], r["error_p_value"]) == ("fisher", 1)
    w = ops["warmup"]
    assert (w["calls_baseline"], w["calls_candidate"], w["latency_p_value"]) == (3, 3, None)
    assert doc["baseline"]["kind"] == "file" and doc["baseline"]["path"] == reports["before"]
    assert doc["baseline"]["report_source"]["kind"] == "url"
    assert doc["settings"]["tests"] == 4 and doc["settings"]["min_calls"] == 10


def test_the_gate_as_ci_runs_it(reports):
    p = cli("compare", reports["before"], reports["after"], *MIN)
    assert p.returncode == 1 and p.stderr == ""
    lines = p.stdout.splitlines()
    assert lines[0].startswith("otelperf compare — baseline: ")
    assert any(line.split()[:2] == ["query", "regressed"] for line in lines)
    assert p.stdout.endswith("1 regressed, 1 unchanged, 1 insufficient_data.\n")
    # The other way round it got faster: improved, exit 0.
    p = cli("compare", reports["after"], reports["before"], *MIN, "--format", "csv")
    assert p.returncode == 0
    assert [r.split(",")[:3] for r in p.stdout.splitlines()[1:]] == [
        ["query", "improved", "faster"], ["render", "unchanged", ""],
        ["warmup", "insufficient_data", ""],
    ]  # fmt: skip
    # A report against itself: nothing changed.
    p = cli("compare", reports["before"], reports["before"], *MIN, "--format", "json")
    assert p.returncode == 0
    assert json.loads(p.stdout)["summary"] == {"regressed": 0, "improved": 0, "unchanged": 2,
                                               "insufficient_data": 1}  # fmt: skip


# --- bad input: one line, exit 2 -----------------------------------------------------------------


def assert_error(capsys: pytest.CaptureFixture[str], args: list[str], *fragments: str) -> None:
    code = main(["compare", *args])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), (out, err)
    assert err.count("\n") == 1 and err.startswith("otelperf compare: error: "), err
    for f in fragments:
        assert f in err, err


def test_bad_files(reports, capsys, tmp_path):
    good = reports["before"]
    missing = str(tmp_path / "nope.json")
    assert_error(capsys, [missing, good], f"BASELINE {missing}: cannot read it (No such file")
    notjson = tmp_path / "x.json"
    notjson.write_text("{oops")
    assert_error(capsys, [good, str(notjson)], f"CANDIDATE {notjson} is not JSON")
    nan = tmp_path / "nan.json"
    nan.write_text('{"operations": [{"operation": "a", "calls": NaN}]}')
    assert_error(capsys, [good, str(nan)], f"CANDIDATE {nan} is not JSON (NaN is not a JSON")
    for doc in ([], {"a": 1}, {"operations": {}}):
        path = tmp_path / "other.json"
        path.write_text(json.dumps(doc))
        want = f"CANDIDATE {path} is not an `otelperf report --format json` file"
        assert_error(capsys, [good, str(path)], want)
    report = json.loads(Path(good).read_text())
    old = tmp_path / "old.json"
    for op in report["operations"]:
        del op["buckets"]
    old.write_text(json.dumps(report))
    assert_error(capsys, [str(old), good],
                 f"BASELINE {old}: operations[0] (", ") has no bucket counts")  # fmt: skip
    # A compare output is no report.
    out = tmp_path / "cmp.json"
    out.write_text(cli("compare", good, good, "--format", "json").stdout)
    assert_error(capsys, [str(out), good], 'operations[0] (\'query\'): "calls" and "errors"')
    report = json.loads(Path(good).read_text())
    report["operations"][0]["buckets"][3] = [0.0001, 0]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(report))
    assert_error(capsys, [good, str(bad)], "le increasing", "got [0.0001, 0]")


def test_bad_arguments(reports, capsys):
    good = reports["before"]
    assert_error(capsys, [good], "give two report files (BASELINE.json CANDIDATE.json) or "
                 "--prometheus URL; got 1 file(s)")  # fmt: skip
    assert_error(capsys, [good, good, "--baseline", "1..2"], "--baseline only applies to")
    assert_error(capsys, [good, good, "--job", "x"], "--job only applies to --prometheus")
    assert_error(capsys, [good, "--prometheus", "http://127.0.0.1:1"], "either report files")
    assert_error(capsys, ["--prometheus", "http://127.0.0.1:1", "--baseline", "1..2"],
                 "--prometheus needs --candidate START..END")  # fmt: skip
    assert_error(capsys, [good, good, "--alpha", "0"], "--alpha='0' must be between 0 and 1")
    assert_error(capsys, [good, good, "--alpha", "x"], "--alpha='x' is not a number")
    assert_error(capsys, [good, good, "--min-effect", "1"], "--min-effect='1' must be below 1")
    assert_error(capsys, [good, good, "--min-effect", "-0.1"], "--min-effect='-0.1' is out")
    assert_error(capsys, [good, good, "--min-calls", "0"], "--min-calls='0' is out of range")
    assert_error(capsys, [good, good, "--out", "d"], "--out is only for --format csv")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("100", "--baseline='100' is not a range START..END"),
        ("100..", "--baseline='100..' needs both START and END"),
        ("abc..200", "--baseline START='abc' is neither Unix seconds nor an RFC 3339 time"),
        ("100..2026-13-01T00:00:00Z", "--baseline END='2026-13-01T00:00:00Z' is neither"),
        ("200..100", "--baseline='200..100': END must be after START"),
        ("2026-01-01T01:00:00Z..2026-01-01T00:00:00Z", "END must be after START"),
        ("-5..100", "--baseline START='-5' is not a valid time"),
    ],
)
def test_malformed_ranges(value, message, capsys):
    # Checked before any request: the server need not exist.
    assert_error(capsys, ["--prometheus", "http://127.0.0.1:1", f"--baseline={value}",
                          "--candidate", "1..2"], message)  # fmt: skip


def test_unreachable_prometheus_without_traceback(tmp_path):
    p = cli("compare", "--prometheus", "http://127.0.0.1:1", "--baseline", "1..2",
            "--candidate", "3..4")  # fmt: skip
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr
    assert p.stderr.startswith("otelperf compare: error: cannot reach --prometheus "
                               "http://127.0.0.1:1")  # fmt: skip
    assert p.stderr.count("\n") == 1
    p = cli("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_docs_name_every_flag_and_json_key():
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    doc = (root / "docs" / "compare.md").read_text()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = set(re.findall(r"--[a-z][a-z-]*", parser.format_usage()))
    assert flags == {"--prometheus", "--job", "--baseline", "--candidate", "--alpha",
                     "--min-effect", "--min-calls", "--format", "--out", "--timeout"}  # fmt: skip
    synopsis = readme.split("otelperf compare (", 1)[1].split("otelperf rules", 1)[0]
    for flag in flags:
        assert flag in synopsis, flag
        assert f"`{flag}" in doc, flag
    for key in (*OPERATION_KEYS, "baseline", "candidate", "settings", "summary", "operations"):
        assert f"`{key}" in doc, key
