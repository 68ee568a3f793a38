"""``otelperf report --prometheus``: the known workload of test_report_cli.py, scraped every
second by a real Prometheus started here, checked figure by figure in JSON, text and CSV.

Exact figures from increase() need the window to start and end exactly on scrapes:
Prometheus 2 extrapolates a range to its boundaries unless the first and last samples sit on
them, and it never counts a series' first value.  So the workload runs twice: once before the
scrape T0 (every series exists from then on), once between T0 and the scrape T1; the report is
asked for ``--at T1 --window (T1 - T0)ms`` and must show exactly one run of the workload.
"""

from __future__ import annotations

import csv
import io
import json
import math
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import otelperf
from otelperf.cli import main
from otelperf.emit import prices
from otelperf.errors import UserError
from otelperf.report.model import format_duration
from otelperf.report.rendering import fmt_rate
from otelperf.report.sources.prometheus import PrometheusClient, queries, timeline_from_prometheus
from otelperf.report.sources.series import SERIES
from tests.conftest import free_port, require_binary
from tests.test_report_cli import (
    BOTTLENECKS,
    CACHES,
    OPERATIONS,
    WARNINGS,
    assert_endpoint_rows,
    assert_one_line_error,
    assert_report_dict,
    assert_rows,
    pop_items_rate,
    row,
    run_cli,
    run_workload,
    section,
)

JOB = "otelperf-report-test"
pytestmark = pytest.mark.integration


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _wait(what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen[bytes],
          log: Path) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited ({proc.returncode}) waiting for {what}:\n"
                        + log.read_text()[-3000:])  # fmt: skip
        try:
            got = check()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}:\n" + log.read_text()[-3000:])


def start_prometheus(tmp: Path, target: str, *flags: str) -> tuple[subprocess.Popen[bytes], str,
                                                                     Path]:  # fmt: skip
    binary = require_binary("prometheus")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    log = tmp / "prometheus.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", *flags],
            stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
            return r.status == 200

    try:
        _wait("Prometheus ready", ready, 30, proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc, url, log


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def first_scrape_after(url: str, t: float, proc: subprocess.Popen[bytes], log: Path) -> int:
    """Timestamp (ms) of the first successful scrape of the job that started after ``t``."""

    def check() -> int | None:
        q = urllib.parse.urlencode({"query": f'up{{job="{JOB}"}}[30s]'})
        doc = _get_json(f"{url}/api/v1/query?{q}")
        for series in doc["data"]["result"]:
            for ts, v in series["values"]:
                if ts > t and v == "1":
                    return round(ts * 1000)
        return None

    return int(_wait(f"a scrape after {t}", check, 20, proc, log))


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Prometheus scraping a loaded otelperf; the window holding exactly one workload run."""
    tmp = tmp_path_factory.mktemp("prometheus")
    t = otelperf.configure(service_name="report-prom-test", prometheus_port=0,
                           registry=CollectorRegistry(), set_global=False,
                           track_cpu=True)  # fmt: skip
    proc = None
    try:
        target = t.metrics_url.split("/")[2]  # type: ignore[union-attr]
        proc, url, log = start_prometheus(tmp, target)
        run_workload(t)
        t0 = first_scrape_after(url, time.time(), proc, log)
        run_workload(t)
        t1 = first_scrape_after(url, time.time(), proc, log)
        yield {"url": url, "at": f"{t1 / 1000:.3f}", "window": f"{t1 - t0}ms", "telemetry": t,
               "proc": proc, "log": log}  # fmt: skip
    finally:
        if proc is not None:
            stop(proc)
        t.shutdown()
        prices.clear_prices()


def report(w: dict[str, Any], capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["report", "--prometheus", w["url"], "--job", JOB, "--window", w["window"],
                 "--at", w["at"], *args])  # fmt: skip
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    return out


def test_json_over_the_window_is_exactly_one_workload_run(window, capsys):
    doc = json.loads(report(window, capsys, "--format", "json"))
    # The window starts on a scrape and the data before it: all of it holds data.
    seconds = float(window["window"].removesuffix("ms")) / 1000
    assert doc["source"] == {"kind": "prometheus", "target": window["url"], "job": JOB,
                             "window": window["window"], "at": float(window["at"]),
                             "window_seconds": seconds, "data_seconds": seconds}  # fmt: skip
    assert_report_dict(doc, k=1)
    # The same endpoint scraped directly shows both runs: totals since start.
    code = main(["report", "--url", window["telemetry"].metrics_url, "--format", "json"])
    doc2 = json.loads(capsys.readouterr().out)
    assert code == 0
    assert_report_dict(doc2, k=2)


def test_text_over_the_window(window, capsys):
    out = report(window, capsys)
    assert max(len(line) for line in out.splitlines()) <= 80 and "\033[" not in out
    assert f"the last {window['window']}, job {JOB}" in " ".join(out.split("\n\n")[0].split())
    assert_endpoint_rows(out)
    ops = section(out, "Operations")
    assert row(ops, "checkout")[:9] == ["checkout", "8", "25.0", "83.3", "220", "244", "-", "-",
                                        "-"]  # fmt: skip
    # items/s (issue 16): the run's 20 items over the window's seconds.
    seconds = float(window["window"].removesuffix("ms")) / 1000
    assert row(ops, "ingest")[:9] == ["ingest", "2", "0.0", "75.0", "97.5", "99.5", "20",
                                      fmt_rate(20 / seconds), "8.0KiB"]  # fmt: skip
    assert row(out, "handle_order > fetch_price") == ["handle_order > fetch_price", "30.0", "53.0"]
    assert row(out, "catalog") == ["catalog", "1", "3", "25.0"]
    assert row(out, "openai gpt-4o") == ["openai gpt-4o", "4", "1", "3.5k", "600", "0.01475"]
    assert "! checkout fails 25.0 % of calls (2 of 8; mostly ValueError)" in out


def test_csv_over_the_window(window, capsys, tmp_path):
    out = report(window, capsys, "--format", "csv")
    ops = [dict(r) for r in csv.DictReader(io.StringIO(out))]
    got = [{k: _num(v) for k, v in r.items() if k != "cpu_ratio"} for r in ops]
    pop_items_rate(got, None)
    assert_rows(got, OPERATIONS)
    report(window, capsys, "--format", "csv", "--out", str(tmp_path))

    def table(name: str) -> list[dict[str, Any]]:
        with open(tmp_path / f"{name}.csv", encoding="utf-8", newline="") as fh:
            return [{k: _num(v) for k, v in r.items()} for r in csv.DictReader(fh)]

    assert_rows(table("bottlenecks"), BOTTLENECKS)
    assert_rows(table("caches"), CACHES)
    assert_rows([w for w in table("warnings") if w["kind"] != "resource"], WARNINGS)


def _num(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return None if v == "" else v


def test_the_windows_timeline_adds_up_to_its_totals(window, capsys, tmp_path):
    """Issue 16: the HTML page's throughput over a window comes from a range query of each
    step's increase().  This window is shorter than two scrape intervals, so it is one step:
    the same increase() as the report's, and the timeline ends on the report's exact totals."""
    client = PrometheusClient(window["url"])
    assert (client.scrape_interval(JOB), client.scrape_interval("no-such-job")) == (1.0, None)
    at = float(window["at"])
    points = timeline_from_prometheus(window["url"], window["window"], JOB, at)
    seconds = float(window["window"].removesuffix("ms")) / 1000
    assert [p.at for p in points] == [round(at - seconds, 3), at]
    assert points[0].calls == {} and points[0].items == {}
    doc = json.loads(report(window, capsys, "--format", "json"))
    calls = {o["operation"]: o["calls"] for o in doc["operations"]}
    assert points[-1].calls == pytest.approx(calls, abs=1e-9)
    assert points[-1].items == pytest.approx({"ingest": 20}, abs=1e-9)
    page = tmp_path / "report.html"
    # one step: its start and its end (rates are drawn as a step per interval)
    out = report(window, capsys, "--format", "html", "--out", str(page))
    assert out == f"wrote {page} (html)\n"
    html = page.read_text(encoding="utf-8")
    assert html.count('<polyline class="line" data-series="checkout" data-points="2"') == 1
    assert 'data-series="ingest" data-points="2"' in html and "No timeline" not in html


def test_queries_sum_across_instances_and_use_the_window():
    q = queries("1h", JOB)
    sel = f'{{job="{JOB}"}}'
    d = "otelperf_operation_duration_seconds"
    assert q["calls"] == f"sum by (operation, outcome, error_type) (increase({d}_count{sel}[1h]))"
    assert q["p0.95"] == (
        f"histogram_quantile(0.95, sum by (le, operation) (increase({d}_bucket{sel}[1h])))"
    )
    assert q["critical_path"] == (
        "sum by (root_operation, operation) "
        f"(increase(otelperf_critical_path_seconds_total{sel}[1h]))"
    )
    assert q["resource:system_cpu_utilization"] == (
        f"max by () (max_over_time(system_cpu_utilization{sel}[1h]))"
    )
    # No job: every job; a job with quotes is escaped, not injected.
    assert "{" not in queries("5m", None)["items"]
    assert 'job="a\\"b"' in queries("5m", 'a"b')["items"]


# --- bad input against real servers -------------------------------------------------------------


def test_unknown_job_is_an_empty_result(window):
    p = run_cli("--prometheus", window["url"], "--job", "nope", "--window", "5m")
    assert_one_line_error(p, f"Prometheus at {window['url']} has no otelperf metrics for "
                          "job='nope' in the 5m before")  # fmt: skip


def test_not_a_prometheus_server(window):
    base = window["telemetry"].metrics_url.rsplit("/", 1)[0]
    p = run_cli("--prometheus", base)
    assert_one_line_error(p, f"--prometheus {base} answered HTTP 404 Not Found on /api/v1/query "
                          "(is it a Prometheus server?)")  # fmt: skip


def test_unreachable_prometheus():
    port = free_port()
    p = run_cli("--prometheus", f"http://127.0.0.1:{port}")
    assert_one_line_error(p, f"cannot reach --prometheus http://127.0.0.1:{port}",
                          "Connection refused")  # fmt: skip


def test_prometheus_error_response(window):
    # A query Prometheus itself refuses: its error, one line.  (This test used a window too long
    # for Prometheus's duration type; since issue 14 the report refuses that itself, before
    # asking, so a malformed query provokes Prometheus's error here.)
    with pytest.raises(UserError) as err:
        PrometheusClient(window["url"]).query("sum(", time.time())
    assert f"Prometheus at {window['url']} rejected a query (bad_data: " in str(err.value)
    assert "\n" not in str(err.value).rstrip("\n")
    p = run_cli("--prometheus", window["url"], "--window", "500000y")
    assert_one_line_error(p, "--window='500000y' is out of range: Prometheus refuses a duration "
                          "over 292y")  # fmt: skip


# --- a window longer than the data, and increase()'s fractions -----------------------------------


def _earliest_sample(url: str, at: float, window: str) -> float:
    """The earliest raw sample time of any counter the report reads, in ``[at - window, at]``."""
    names = "|".join(s.sample for s in SERIES)
    q = urllib.parse.urlencode({"query": f'{{__name__=~"{names}", job="{JOB}"}}[{window}]',
                                "time": f"{at:.3f}"})  # fmt: skip
    doc = _get_json(f"{url}/api/v1/query?{q}")
    return min(float(ts) for s in doc["data"]["result"] for ts, _ in s["values"])


def test_a_window_longer_than_the_data_says_how_much_data_it_holds(window, capsys):
    # Prometheus started seconds ago: "the last 1h" holds a few seconds of data.
    at = float(window["at"])
    doc = json.loads(report({**window, "window": "1h"}, capsys, "--format", "json"))
    src = doc["source"]
    earliest = _earliest_sample(window["url"], at, "1h")
    # Found to within the fine step (a hundredth of 3.6 s, the coarse step for 1h).
    assert src["window_seconds"] == 3600
    assert at - earliest - 0.036 <= src["data_seconds"] <= at - earliest < 120
    # Rates are over the data, not the hour; counts are the whole data (two workload runs).
    checkout = next(e for e in doc["endpoints"] if e["operation"] == "checkout")
    assert checkout["calls"] == 16
    assert checkout["rate_per_second"] == pytest.approx(16 / src["data_seconds"], rel=1e-12)
    out = report({**window, "window": "1h"}, capsys)
    title = " ".join(out.split("\n\n")[0].split())
    covers = format_duration(src["data_seconds"])
    assert title == (f"otelperf report — {window['url']}: the last 1h (data covers {covers}), "
                     f"job {JOB}")  # fmt: skip
    assert covers != "0s" and not covers.endswith(("h", "d"))
    # A window that the data fills says nothing more (the window fixture's exact window).
    out = report(window, capsys)
    assert "data covers" not in out


def test_extrapolated_counts_are_whole_and_ratios_and_rates_keep_their_precision(window, capsys):
    # A window 0.3 s wider than the scrapes at both ends: increase() extrapolates one run's
    # counts by (span + 0.6 s) / span, a fraction for any whole number of 1 s scrapes.
    t1 = round(float(window["at"]) * 1000)
    span = int(window["window"].removesuffix("ms"))
    at, win = (t1 + 300) / 1000, f"{span + 600}ms"
    raw = PrometheusClient(window["url"]).query(queries(win, JOB)["calls"], at)
    calls = sum(v for lab, v in raw if lab["operation"] == "checkout")
    errors = sum(v for lab, v in raw if lab["operation"] == "checkout" and
                 lab["outcome"] == "error")  # fmt: skip
    # Extrapolated (the test is meaningful): at most 8 * 1.6, for scrapes 1 s apart.
    assert calls != int(calls) and 8 < calls <= 12.8 + 1e-9
    shown = math.floor(calls + 0.5)
    doc = json.loads(report({**window, "at": f"{at:.3f}", "window": win}, capsys,
                            "--format", "json"))  # fmt: skip
    op = next(o for o in doc["operations"] if o["operation"] == "checkout")
    ep = next(e for e in doc["endpoints"] if e["operation"] == "checkout")
    for row_ in (op, ep):
        assert type(row_["calls"]) is int and row_["calls"] == shown
        assert type(row_["errors"]) is int and row_["errors"] == math.floor(errors + 0.5)
        assert row_["error_ratio"] == pytest.approx(errors / calls, rel=1e-12)
    assert ep["rate_per_second"] == pytest.approx(calls / ((span + 600) / 1000), rel=1e-12)
    assert ep["rate_per_second"] != pytest.approx(shown / ((span + 600) / 1000), rel=1e-9)
    # Every count in the contract is whole; costs and ratios are not rounded.
    for name, keys in (("operations", ("calls", "errors", "items", "bytes")),
                       ("caches", ("hits", "misses")),
                       ("apis", ("calls", "errors", "input_tokens", "output_tokens"))):  # fmt: skip
        for r in doc[name]:
            assert all(type(r[k]) is int for k in keys), r
    gpt4o = next(a for a in doc["apis"] if a["model"] == "gpt-4o")
    assert gpt4o["cost_usd"] != round(gpt4o["cost_usd"], 5)  # 0.01475 extrapolated, unrounded
    out = report({**window, "at": f"{at:.3f}", "window": win}, capsys)
    assert row(section(out, "Operations"), "checkout")[1] == str(shown)
    assert row(section(out, "Endpoints"), "checkout")[1] == str(shown)
