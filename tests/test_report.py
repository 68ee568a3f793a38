"""The report's pure parts: quantiles (cross-checked with promtool), totals from hand-written
exposition text, the warning and recommendation rules at their thresholds, the JSON contract,
CSV, text width and colours (on a real pseudo-terminal), and the demo's live summary."""

from __future__ import annotations

import io
import json
import math
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import _names as N
from otelperf.emit import prices
from otelperf.report import (
    DEFAULT_RESOURCE_LIMITS,
    LiveSummary,
    Report,
    Source,
    build_report,
    families_from_text,
    histogram_quantile,
    operations,
    resource_limits,
    totals_from_families,
)
from otelperf.report.sources.prometheus import parse_time, parse_window, window_seconds
from tests.conftest import require_binary

INF = math.inf


# --- histogram_quantile -------------------------------------------------------------------------

CASES: list[tuple[float, list[tuple[float, float]]]] = [
    (0.5, [(0.025, 0), (0.05, 6), (0.1, 6), (0.25, 8), (INF, 8)]),
    (0.95, [(0.025, 0), (0.05, 6), (0.1, 6), (0.25, 8), (INF, 8)]),
    (0.99, [(0.025, 0), (0.05, 6), (0.1, 6), (0.25, 8), (INF, 8)]),
    (0.3, [(1, 3), (2, 7), (4, 10), (INF, 10)]),  # lowest bucket starts at 0
    (0.9, [(1, 3), (2, 7), (4, 9), (INF, 10)]),  # rank in +Inf: the highest finite bound
    (0.2, [(-1, 2), (0, 4), (1, 8), (INF, 8)]),  # lowest bound <= 0 is returned as is
    (0.75, [(0.1, 1), (0.2, 3), (0.5, 3), (1, 3), (INF, 3)]),
    (0.123, [(0.001, 17), (0.01, 170), (0.1, 1000), (INF, 1001)]),
]


def test_quantiles_by_hand():
    b = CASES[0][1]
    assert histogram_quantile(0.5, b) == 0.025 + 0.025 * (4 / 6)
    assert histogram_quantile(0.95, b) == pytest.approx(0.1 + 0.15 * (1.6 / 2), rel=1e-15)
    assert histogram_quantile(0.3, CASES[3][1]) == 1.0  # rank 3 = the whole first bucket
    assert histogram_quantile(0.9, CASES[4][1]) == 4.0
    assert histogram_quantile(0.2, CASES[5][1]) == -1.0
    assert histogram_quantile(0.5, CASES[5][1]) == 0.0  # a bucket above: interpolated
    assert math.isnan(histogram_quantile(0.5, [(1, 0), (INF, 0)]))  # no observations
    assert math.isnan(histogram_quantile(0.5, [(1, 3), (2, 5)]))  # no +Inf bucket
    assert math.isnan(histogram_quantile(math.nan, b))
    assert histogram_quantile(-0.1, b) == -INF and histogram_quantile(1.1, b) == INF
    # Counts that dip (a scrape between bucket updates) are raised, as Prometheus does.
    assert histogram_quantile(0.5, [(1, 4), (2, 3), (INF, 8)]) == histogram_quantile(
        0.5, [(1, 4), (2, 4), (INF, 8)]
    )


def test_quantiles_are_bit_identical_to_prometheus(tmp_path: Path):
    """promtool evaluates histogram_quantile() on the same buckets; values compared exactly."""
    promtool = require_binary("promtool")
    series, tests = [], []
    for n, (q, buckets) in enumerate(CASES):
        for le, count in buckets:
            le_text = "+Inf" if le == INF else repr(float(le))
            series.append(f"      - series: 'h{n}_bucket{{le=\"{le_text}\"}}'\n"
                          f"        values: '{count:g}'")  # fmt: skip
        tests.append(
            f"      - expr: histogram_quantile({q!r}, h{n}_bucket)\n        eval_time: 0m\n"
            f"        exp_samples:\n          - labels: '{{}}'\n"
            f"            value: {histogram_quantile(q, buckets)!r}"
        )
    (tmp_path / "rules.yml").write_text("groups: []\n")
    (tmp_path / "test.yml").write_text(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n"
        "    input_series:\n" + "\n".join(series) + "\n    promql_expr_test:\n"
        + "\n".join(tests) + "\n"
    )  # fmt: skip
    p = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


# --- totals and rules from hand-written exposition text -----------------------------------------

D = "otelperf_operation_duration_seconds"  # "D" below: the only capital D in the text
EXPOSITION = textwrap.dedent("""\
    # TYPE D histogram
    D_bucket{operation="resize",outcome="success",error_type="",le="0.1"} 2
    D_bucket{operation="resize",outcome="success",error_type="",le="1"} 10
    D_bucket{operation="resize",outcome="success",error_type="",le="+Inf"} 10
    D_count{operation="resize",outcome="success",error_type=""} 10
    D_sum{operation="resize",outcome="success",error_type=""} 4
    D_bucket{operation="resize",outcome="error",error_type="OSError",le="0.1"} 1
    D_bucket{operation="resize",outcome="error",error_type="OSError",le="1"} 1
    D_bucket{operation="resize",outcome="error",error_type="OSError",le="+Inf"} 1
    D_count{operation="resize",outcome="error",error_type="OSError"} 1
    D_sum{operation="resize",outcome="error",error_type="OSError"} 0
    D_bucket{operation="fetch",outcome="success",error_type="",le="0.1"} 0
    D_bucket{operation="fetch",outcome="success",error_type="",le="1"} 20
    D_bucket{operation="fetch",outcome="success",error_type="",le="+Inf"} 20
    D_count{operation="fetch",outcome="success",error_type=""} 20
    D_sum{operation="fetch",outcome="success",error_type=""} 8
    D_bucket{operation="fetch",outcome="error",error_type="Timeout",le="0.1"} 0
    D_bucket{operation="fetch",outcome="error",error_type="Timeout",le="1"} 1
    D_bucket{operation="fetch",outcome="error",error_type="Timeout",le="+Inf"} 1
    D_count{operation="fetch",outcome="error",error_type="Timeout"} 1
    D_sum{operation="fetch",outcome="error",error_type="Timeout"} 0
    # TYPE otelperf_operation_items_total counter
    otelperf_operation_items_total{operation="resize"} 40000
    # TYPE otelperf_operation_cpu_seconds_total counter
    otelperf_operation_cpu_seconds_total{operation="resize"} 3
    otelperf_operation_cpu_seconds_total{operation="fetch"} 1
    # TYPE otelperf_root_duration_seconds_total counter
    otelperf_root_duration_seconds_total{root_operation="job"} 10
    # TYPE otelperf_roots_total counter
    otelperf_roots_total{root_operation="job"} 5
    # TYPE otelperf_critical_path_seconds_total counter
    otelperf_critical_path_seconds_total{root_operation="job",operation="job"} 1
    otelperf_critical_path_seconds_total{root_operation="job",operation="resize"} 4
    otelperf_critical_path_seconds_total{root_operation="job",operation="fetch"} 3
    otelperf_critical_path_seconds_total{root_operation="job",operation="upload"} 2
    # TYPE otelperf_self_seconds_total counter
    otelperf_self_seconds_total{root_operation="job",operation="job"} 1
    otelperf_self_seconds_total{root_operation="job",operation="resize"} 4
    otelperf_self_seconds_total{root_operation="job",operation="fetch"} 5
    otelperf_self_seconds_total{root_operation="job",operation="upload"} 2
    # TYPE otelperf_cache_requests_total counter
    otelperf_cache_requests_total{cache="thumbs",result="hit"} 6
    otelperf_cache_requests_total{cache="thumbs",result="miss"} 4
    # TYPE otelperf_api_calls_total counter
    otelperf_api_calls_total{api="vision",model="big",outcome="success"} 1
    otelperf_api_calls_total{api="vision",model="small",outcome="success"} 3
    # TYPE otelperf_api_cost_usd_total counter
    otelperf_api_cost_usd_total{api="vision",model="big"} 0.4
    otelperf_api_cost_usd_total{api="vision",model="small"} 0.6
    # TYPE system_cpu_utilization gauge
    system_cpu_utilization 0.95
    # TYPE system_filesystem_utilization gauge
    system_filesystem_utilization{system_filesystem_mountpoint="/"} 0.5
    system_filesystem_utilization{system_filesystem_mountpoint="/data"} 0.97
    # TYPE process_resident_memory_bytes gauge
    process_resident_memory_bytes 2.147483648e+09
    """).replace("D", D)  # fmt: skip


def hand_report(**kw: Any) -> Report:
    return build_report(totals_from_families(families_from_text(EXPOSITION)), **kw)


def test_totals_from_exposition_text():
    t = totals_from_families(families_from_text(EXPOSITION))
    r = t.operations["resize"]
    assert (r.calls, r.errors, r.duration_sum, r.items, r.cpu_seconds) == (11, 1, 4, 40000, 3)
    assert r.buckets == {0.1: 3, 1.0: 11, INF: 11} and r.error_types == {"OSError": 1}
    assert t.operations["fetch"].bytes == 0 and t.operations["fetch"].error_types == {"Timeout": 1}
    assert t.root_duration == {"job": 10}
    assert t.self_time[("job", "fetch")] == 5
    assert t.cache_requests == {("thumbs", "hit"): 6, ("thumbs", "miss"): 4}
    assert t.resources["system_filesystem_utilization"] == [
        ({"system_filesystem_mountpoint": "/"}, 0.5),
        ({"system_filesystem_mountpoint": "/data"}, 0.97),
    ]
    assert set(operations(families_from_text(EXPOSITION))) == {"resize", "fetch"}


def test_rules_on_hand_written_figures():
    rep = hand_report()
    d = rep.to_dict()
    assert [o["operation"] for o in d["operations"]] == ["fetch", "resize"]  # by total time
    fetch, resize = d["operations"]
    assert fetch == {"operation": "fetch", "calls": 21, "errors": 1, "error_ratio": 1 / 21,
                     "p50_seconds": 0.1 + 0.9 * (10.5 / 21),
                     "p95_seconds": 0.1 + 0.9 * (19.95 / 21),
                     "p99_seconds": 0.1 + 0.9 * (20.79 / 21), "items": 0, "bytes": 0,
                     "cpu_ratio": 1 / 8, "sum_seconds": 8, "items_per_second": None,
                     "buckets": [[0.1, 0], [1, 21], ["+Inf", 21]]}  # fmt: skip
    assert resize["cpu_ratio"] == 0.75 and resize["error_ratio"] == 1 / 11
    assert (resize["buckets"], resize["sum_seconds"]) == ([[0.1, 3], [1, 11], ["+Inf", 11]], 4)
    assert d["bottlenecks"] == [
        {"root_operation": "job", "operation": "resize", "share": 0.4, "self_share": 0.4},
        {"root_operation": "job", "operation": "fetch", "share": 0.3, "self_share": 0.5},
        {"root_operation": "job", "operation": "upload", "share": 0.2, "self_share": 0.2},
        {"root_operation": "job", "operation": "job", "share": 0.1, "self_share": 0.1},
    ]
    assert d["caches"] == [{"cache": "thumbs", "hits": 6, "misses": 4, "hit_ratio": 0.6}]
    assert d["apis"] == [
        {"api": "vision", "model": "small", "calls": 3, "errors": 0, "input_tokens": 0,
         "output_tokens": 0, "cost_usd": 0.6},
        {"api": "vision", "model": "big", "calls": 1, "errors": 0, "input_tokens": 0,
         "output_tokens": 0, "cost_usd": 0.4},
    ]  # fmt: skip
    # upload at exactly 20 %, fetch's 1/21 < 5 %, a 60 % hit ratio: on the line, no warning.
    assert [(w["kind"], w["subject"]) for w in d["warnings"]] == [
        ("bottleneck", "job > resize"),
        ("bottleneck", "job > fetch"),
        ("error_ratio", "resize"),
        ("resource", "system_cpu_utilization"),
        ("resource", "system_filesystem_utilization{system_filesystem_mountpoint=/data}"),
    ]
    assert d["warnings"][3] == {
        "kind": "resource", "subject": "system_cpu_utilization", "value": 0.95,
        "threshold": 0.8, "message": "system_cpu_utilization is 95.0 %, over the 80.0 % health "
        "threshold",
    }  # fmt: skip
    recs = {(r["kind"], r["subject"]): r["message"] for r in d["recommendations"]}
    assert list(recs) == [
        ("cpu_bound", "job > resize"),
        ("waiting", "job > fetch"),
        ("errors", "resize"),
        ("api_cost", "vision small"),
        ("resource", "system_cpu_utilization"),
        ("resource", "system_filesystem_utilization{system_filesystem_mountpoint=/data}"),
    ]
    assert recs[("cpu_bound", "job > resize")] == (
        "resize is CPU-bound (75.0 % of its wall time on CPU) and takes 40.0 % of job: profile "
        "it (py-spy, cProfile) and optimise the hot loop, or move it off the request path (a "
        "worker or queue; a process pool if it holds the GIL)."
    )
    assert recs[("waiting", "job > fetch")].startswith(
        "fetch takes 30.0 % of job and mostly waits (only 12.5 % of its wall time on CPU): run "
        "independent calls in parallel"
    )
    assert recs[("api_cost", "vision small")] == (
        "vision model small costs $0.6, 60.0 % of the API bill, $0.2 per call: send simple "
        "requests to a cheaper model, cache responses to repeated prompts, and trim long prompts."
    )
    # resize: 40000 items in 4 s = 10000/s, over throughput_min_items_per_second: no advice.
    assert not any(k == "throughput" for k, _ in recs)


def test_throughput_cache_and_memory_limit_rules():
    text = EXPOSITION.replace('items_total{operation="resize"} 40000',
                              'items_total{operation="resize"} 400')  # fmt: skip
    text = text.replace('result="miss"} 4', 'result="miss"} 5')
    t = totals_from_families(families_from_text(text))
    limits = {**DEFAULT_RESOURCE_LIMITS, N.PROC_RESIDENT_MEMORY.prom: 2**30}
    d = build_report(t, resource_limits=limits).to_dict()
    recs = {(r["kind"], r["subject"]): r["message"] for r in d["recommendations"]}
    assert recs[("throughput", "resize")].startswith(
        "resize handles 100 items per second while it runs (10.0 ms per item)"
    )
    assert recs[("cache", "thumbs")].startswith("cache thumbs misses 45.5 % of lookups")
    warn = {(w["kind"], w["subject"]): w for w in d["warnings"]}
    assert warn[("cache_hit_ratio", "thumbs")]["value"] == 6 / 11
    assert warn[("resource", "process_resident_memory_bytes")]["message"] == (
        "process_resident_memory_bytes is 2048.0 MiB, over the 1024.0 MiB health threshold"
    )


def test_resource_limits_follow_the_health_settings():
    from otelperf.config import resolve

    s = resolve(env={"OTELPERF_HEALTH_CPU_THRESHOLD": "0.5",
                     "OTELPERF_PROCESS_MEMORY_LIMIT": "1Gi"})  # fmt: skip
    limits = resource_limits(s)
    assert limits[N.HOST_CPU_UTILIZATION.prom] == 0.5
    assert limits[N.HOST_FILESYSTEM_UTILIZATION.prom] == 0.9
    assert limits[N.PROC_RESIDENT_MEMORY.prom] == 2**30


def test_top_and_empty_figures():
    rep = hand_report(top=1)
    assert [o.operation for o in rep.operations] == ["fetch"]
    assert [(b.root_operation, b.operation) for b in rep.bottlenecks] == [("job", "resize")]
    assert len(rep.warnings) == 5  # findings are over all rows
    empty = build_report(totals_from_families([]))
    d = empty.to_dict()
    assert (d["operations"], d["bottlenecks"], d["warnings"], d["recommendations"]) == (
        [], [], [], [])  # fmt: skip
    assert "(none recorded)" in empty.to_text()


# --- rendering ---------------------------------------------------------------------------------


def test_json_contract_types_and_determinism():
    rep = hand_report()
    text = rep.to_json()
    assert text == rep.to_json() and text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    d = json.loads(text)
    assert set(d) == {"source", "endpoints", "operations", "bottlenecks", "caches", "apis",
                      "resources", "warnings", "recommendations"}  # fmt: skip
    assert set(d["endpoints"][0]) == {"operation", "calls", "errors", "error_ratio",
                                      "rate_per_second", "p50_seconds", "p95_seconds",
                                      "p99_seconds", "mean_seconds", "top_bottleneck",
                                      "top_bottleneck_share"}  # fmt: skip
    assert set(d["operations"][0]) == {"operation", "calls", "errors", "error_ratio",
                                       "p50_seconds", "p95_seconds", "p99_seconds", "items",
                                       "bytes", "cpu_ratio", "sum_seconds",
                                       "buckets", "items_per_second"}  # fmt: skip
    assert isinstance(d["operations"][0]["calls"], int)  # counts are counts
    assert d["resources"]["system_cpu_utilization"] == [
        {"labels": {}, "value": 0.95, "threshold": 0.8}
    ]
    assert d["source"] == {"kind": "process", "target": "", "window": None, "job": None,
                           "at": None, "window_seconds": None, "data_seconds": None}  # fmt: skip


def test_unknown_figures_are_null_in_json_and_empty_in_csv():
    text = EXPOSITION.replace('otelperf_operation_cpu_seconds_total{operation="fetch"} 1\n', "")
    text = text.replace('le="+Inf"} 20', 'le="+Inf"} 0').replace('le="1"} 20', 'le="1"} 0')
    text = text.replace('le="+Inf"} 1\n', 'le="+Inf"} 0\n', 1)
    rep = build_report(totals_from_families(families_from_text(text)))
    fetch = next(o for o in rep.to_dict()["operations"] if o["operation"] == "fetch")
    assert fetch["cpu_ratio"] is None  # async operations have no CPU figure
    csv_text = rep.to_csv("operations")
    line = next(x for x in csv_text.splitlines() if x.startswith("fetch,"))
    assert line.endswith(",0,0,,")  # items, bytes, empty cpu_ratio and items_per_second


def test_text_fits_the_width_and_shortens_long_names_from_the_left():
    long = "myapp.handlers.orders.OrderService.handle_incoming_order_request"
    text = EXPOSITION.replace('"resize"', f'"{long}"')
    rep = build_report(totals_from_families(families_from_text(text)))
    out = rep.to_text(width=80)
    assert max(len(x) for x in out.splitlines()) <= 80, out
    # The distinctive end is kept (the Operations table, with its items/s column since issue
    # 16, fits 80 columns with its headers unpadded and the name at 21 characters).
    assert "\n…coming_order_request     11  " in out
    assert "\033[" not in out
    # Narrower than the numbers need: names stop at 12 characters, the rest is best effort.
    narrow = rep.to_text(width=40)
    assert "\n…der_request       11  " in narrow and "\nfetch     " in narrow


def test_colours_only_when_asked():
    rep = hand_report()
    coloured = rep.to_text(color=True)
    assert "\033[31m" in coloured and "\033[33m" in coloured and "\033[1m" in coloured
    import re

    assert re.sub(r"\033\[[0-9;]*m", "", coloured) == rep.to_text(color=False)


def _serve(text: str) -> Any:
    import http.server
    import threading

    body = text.encode()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _run_on_pty(args: list[str], env: dict[str, str]) -> str:
    main_fd, child_fd = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "otelperf.cli", *args], stdout=child_fd,
                         stderr=subprocess.PIPE, env=env)  # fmt: skip
    os.close(child_fd)
    chunks = []
    while True:
        try:
            data = os.read(main_fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=60)
    os.close(main_fd)
    assert p.returncode == 0, p.stderr.read() if p.stderr else ""
    return b"".join(chunks).decode()


def test_colours_on_a_terminal_not_with_no_color():
    srv = _serve(EXPOSITION)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/metrics"
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        on_tty = _run_on_pty(["report", "--url", url], env)
        assert "\033[31m" in on_tty
        no_color = _run_on_pty(["report", "--url", url], {**env, "NO_COLOR": "1"})
        assert "\033[" not in no_color and "Operations" in no_color
    finally:
        srv.shutdown()
        srv.server_close()


# --- window and time arguments ----------------------------------------------------------------


def test_windows_and_times():
    assert parse_window("1h30m") == "1h30m" and window_seconds("1h30m") == 5400
    assert window_seconds("1500ms") == 1.5 and window_seconds("1d2h") == 93600
    for bad in ("", "1x", "h", "0s", "-5m", "1.5h"):
        with pytest.raises(Exception, match="--window="):
            parse_window(bad)
    assert parse_time("1700000000.5") == 1700000000.5
    assert parse_time("2023-11-14T22:13:20Z") == 1700000000.0
    with pytest.raises(Exception, match="--at="):
        parse_time("noon")


def test_source_descriptions():
    assert Source("prometheus", "http://p:9090", "1h", "api").describe() == (
        "http://p:9090: the last 1h, job api"
    )
    assert Source("prometheus", "http://p:9090", "1h").describe().endswith("all jobs")
    # Less data than the window: said, rounded to the second; a full window says nothing more.
    short = Source("prometheus", "http://p:9090", "1h", "api", window_seconds=3600,
                   data_seconds=75.4)  # fmt: skip
    assert short.describe() == "http://p:9090: the last 1h (data covers 1m15s), job api"
    full = Source("prometheus", "http://p:9090", "1h", "api", window_seconds=3600,
                  data_seconds=3600)  # fmt: skip
    assert full.describe() == "http://p:9090: the last 1h, job api"
    assert Source("process").describe() == "this process: totals since it started"


# --- in process: Telemetry.report() and the demo's live summary ---------------------------------


@pytest.fixture
def telemetry_loaded():
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False)
    try:
        yield t
    finally:
        t.shutdown()
        prices.clear_prices()


def test_live_summary_and_the_demo_use_the_report(telemetry_loaded):
    from otelperf.demo import _Summary

    t = telemetry_loaded
    tracer = t.tracer_provider.get_tracer("t")
    for _ in range(4):
        root = tracer.start_span("request", start_time=0)
        from opentelemetry import trace

        ctx = trace.set_span_in_context(root)
        tracer.start_span("db", context=ctx, start_time=0).end(end_time=750_000)
        root.end(end_time=1_000_000)
    for i in range(4):
        try:
            with otelperf.measure("handle"):
                if i == 0:
                    raise RuntimeError("x")
        except RuntimeError:
            pass
    for hit in (True, True, True, False):
        otelperf.record_cache("sessions", hit=hit)
    live = LiveSummary()
    text = live.render(t)
    lines = text.splitlines()
    assert lines[0].split() == ["operation", "rate/s", "p95", "ms", "err", "%"]
    # Every span has a duration histogram since issue 12: "request" and "db" are rows too.
    rows = {ln.split()[0]: ln.split() for ln in lines[2:] if ln.split()}
    cells = rows["handle"]
    assert float(cells[1]) > 0 and cells[3] == "25.0"
    assert rows["db"][3] == "0.0" and rows["request"][3] == "0.0"
    assert "request: top bottleneck db 75.0 % of its time" in lines
    assert "cache sessions: hit ratio 75.0 %" in lines
    # No new calls: the rate since the previous summary is 0.
    again = {ln.split()[0]: ln.split() for ln in live.render(t).splitlines()[2:] if ln.split()}
    assert again["handle"][1] == "0.0"
    out = io.StringIO()
    _Summary(t, out).tick()
    assert "request: top bottleneck db 75.0 % of its time" in out.getvalue()
    rep = t.report()
    assert rep.to_dict()["caches"] == [{"cache": "sessions", "hits": 3, "misses": 1,
                                        "hit_ratio": 0.75}]  # fmt: skip
    assert "otelperf report — this process: totals since it started" in rep.to_text()


def test_api_tokens_are_the_wholes_of_their_disjoint_parts() -> None:
    """The processor counts token_type parts apart (input without the cached part, output
    without reasoning); the report's input and output columns are the wholes again."""
    from otelperf.report import Totals, build_report

    t = Totals()
    t.api_calls[("openai", "gpt-4o", "success")] = 2.0
    t.api_tokens.update({
        ("openai", "gpt-4o", "input"): 400.0, ("openai", "gpt-4o", "cached_input"): 600.0,
        ("openai", "gpt-4o", "output"): 100.0, ("openai", "gpt-4o", "reasoning"): 200.0,
    })  # fmt: skip
    (api,) = build_report(t).apis
    assert (api.input_tokens, api.output_tokens) == (1000, 300)
