"""``otelperf report --url``: a known workload, scraped over a real socket, checked figure by
figure in text, JSON and CSV; and every kind of bad input (one line, exit 2, no traceback).

The workload (also used by test_report_prometheus.py):

* ``checkout`` (measure): 8 calls, 6 sleeping 60 ms and 2 sleeping 150 ms; 2 fast ones raise
  ValueError.  Buckets (0.05, 0.1] x6 and (0.1, 0.25] x2, so the quantiles are exact:
  p50 = 0.05 + 0.05 * 4/6, p95 = 0.1 + 0.15 * 1.6/2 = 0.22, p99 = 0.1 + 0.15 * 1.92/2 = 0.244.
  Sleeps only need to land inside their bucket (60 ms has 40 ms of slack, 150 ms has 100 ms):
  wall time decides the bucket, never the figure.
* ``ingest`` (measure): 2 calls sleeping 60 ms, 10 items and 4096 bytes each.
* ``handle_order``: a span tree with explicit start/end times through the OTel SDK tracer, run
  four times, so the processor's critical path and self time are exact (ms):
  download [0,30], parse [30,55], enrich [55,92] with fetch_price [57,80] and [60,90] in
  parallel, store [92,98], root [0,100].
  Critical path: root 2, download 30, parse 25, enrich 7, fetch_price 30, store 6.
  Self time:     root 2, download 30, parse 25, enrich 4, fetch_price 53, store 6.
* caches: sessions 7 hits / 3 misses (70 %), catalog 1 hit / 3 misses (25 %).
* APIs: openai gpt-4o priced 2.5 / 10 USD per million tokens: 3 calls of 1000 in / 200 out
  and 1 failed call of 500 in (cost 4 * ... = 0.01475); gpt-4o-mini priced 0.15 / 0.6: 4 calls
  of 2000 in / 100 out (0.00144); geocoder (no model) 2 calls at 0.001 USD given.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from opentelemetry import trace
from prometheus_client import CollectorRegistry

import otelperf
from otelperf._names import DEFAULT_DURATION_BUCKETS
from otelperf.cli import main
from otelperf.emit import prices
from tests.conftest import free_port

MS = 1_000_000


def _tree(tracer: trace.Tracer, base: int) -> None:
    def span(name: str, start: int, end: int, parent: trace.Span | None) -> trace.Span:
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        s = tracer.start_span(name, context=ctx, start_time=base + start * MS)
        s.end(end_time=base + end * MS) if end >= 0 else None
        return s

    root = tracer.start_span("handle_order", start_time=base)
    span("download", 0, 30, root)
    span("parse", 30, 55, root)
    enrich = tracer.start_span(
        "enrich", context=trace.set_span_in_context(root), start_time=base + 55 * MS
    )
    span("fetch_price", 57, 80, enrich)
    span("fetch_price", 60, 90, enrich)
    enrich.end(end_time=base + 92 * MS)
    span("store", 92, 98, root)
    root.end(end_time=base + 100 * MS)


def run_workload(telemetry: otelperf.Telemetry) -> None:
    """The known workload above, recorded into ``telemetry`` (about 0.8 s of sleeps)."""
    for i in range(8):
        try:
            with otelperf.measure("checkout"):
                time.sleep(0.15 if i >= 6 else 0.06)
                if i in (1, 3):
                    raise ValueError("card declined")
        except ValueError:
            pass
    for _ in range(2):
        with otelperf.measure("ingest") as op:
            time.sleep(0.06)
            op.add_items(10)
            op.add_bytes(4096)
    tracer = telemetry.tracer_provider.get_tracer("report-test")
    for _ in range(4):  # 0.4 s of root time: between ingest's 0.12 s and checkout's 0.66 s
        _tree(tracer, time.time_ns())
    for hit in [True] * 7 + [False] * 3:
        otelperf.record_cache("sessions", hit=hit)
    for hit in (True, False, False, False):
        otelperf.record_cache("catalog", hit=hit)
    otelperf.set_api_price("openai", "gpt-4o", input_per_million_usd=2.5,
                           output_per_million_usd=10.0)  # fmt: skip
    otelperf.set_api_price("openai", "gpt-4o-mini", input_per_million_usd=0.15,
                           output_per_million_usd=0.6)  # fmt: skip
    for _ in range(3):
        otelperf.record_api_call("openai", model="gpt-4o", input_tokens=1000, output_tokens=200)
    otelperf.record_api_call("openai", model="gpt-4o", input_tokens=500, error=True)
    for _ in range(4):
        otelperf.record_api_call("openai", model="gpt-4o-mini", input_tokens=2000,
                                 output_tokens=100)  # fmt: skip
    for _ in range(2):
        otelperf.record_api_call("geocoder", cost_usd=0.001)


# --- the expected figures (for one run of the workload) --------------------------------------

P50 = 0.05 + 0.05 * (4 / 6)


def _plain(op: str, calls: int, p50: float, p95: float, p99: float) -> dict[str, Any]:
    return {"operation": op, "calls": calls, "errors": 0, "error_ratio": 0.0, "p50_seconds": p50,
            "p95_seconds": p95, "p99_seconds": p99, "items": 0, "bytes": 0}  # fmt: skip


# Since issue 12 every span has a duration histogram: the tree's plain spans are operations
# too (exact: their times are given), between the measured ones by total time.
OPERATIONS: list[dict[str, Any]] = [
    {"operation": "checkout", "calls": 8, "errors": 2, "error_ratio": 0.25, "p50_seconds": P50,
     "p95_seconds": 0.22, "p99_seconds": 0.244, "items": 0, "bytes": 0},
    _plain("handle_order", 4, 0.075, 0.0975, 0.0995),
    _plain("fetch_price", 8, 0.025, 0.0475, 0.0495),
    _plain("enrich", 4, 0.0375, 0.04875, 0.04975),
    {"operation": "ingest", "calls": 2, "errors": 0, "error_ratio": 0.0, "p50_seconds": 0.075,
     "p95_seconds": 0.0975, "p99_seconds": 0.0995, "items": 20, "bytes": 8192},
    _plain("download", 4, 0.0375, 0.04875, 0.04975),
    _plain("parse", 4, 0.0175, 0.02425, 0.02485),
    _plain("store", 4, 0.0075, 0.00975, 0.00995),
]  # fmt: skip
MEASURED = {"checkout", "ingest"}  # the rest are plain spans: no CPU figure (not measured)
TREE = [  # (operation, share, self_share) under handle_order, in report order
    ("fetch_price", 0.30, 0.53),
    ("download", 0.30, 0.30),
    ("parse", 0.25, 0.25),
    ("enrich", 0.07, 0.04),
    ("store", 0.06, 0.06),
    ("handle_order", 0.02, 0.02),
]
BOTTLENECKS: list[dict[str, Any]] = [
    {"root_operation": "checkout", "operation": "checkout", "share": 1, "self_share": 1},
    *({"root_operation": "handle_order", "operation": o, "share": s, "self_share": ss}
      for o, s, ss in TREE),
    {"root_operation": "ingest", "operation": "ingest", "share": 1, "self_share": 1},
]  # fmt: skip
CACHES = [
    {"cache": "catalog", "hits": 1, "misses": 3, "hit_ratio": 0.25},
    {"cache": "sessions", "hits": 7, "misses": 3, "hit_ratio": 0.7},
]
APIS = [
    {"api": "openai", "model": "gpt-4o", "calls": 4, "errors": 1, "input_tokens": 3500,
     "output_tokens": 600, "cost_usd": 0.01475},
    {"api": "geocoder", "model": "unknown", "calls": 2, "errors": 0, "input_tokens": 0,
     "output_tokens": 0, "cost_usd": 0.002},
    {"api": "openai", "model": "gpt-4o-mini", "calls": 4, "errors": 0, "input_tokens": 8000,
     "output_tokens": 400, "cost_usd": 0.00144},
]  # fmt: skip
WARNINGS = [
    {"kind": "bottleneck", "subject": "handle_order > fetch_price", "value": 0.3,
     "threshold": 0.2, "message": "fetch_price takes 30.0 % of handle_order's critical path "
     "(53.0 % on its own, without its children)"},
    {"kind": "bottleneck", "subject": "handle_order > download", "value": 0.3, "threshold": 0.2,
     "message": "download takes 30.0 % of handle_order's critical path (30.0 % on its own, "
     "without its children)"},
    {"kind": "bottleneck", "subject": "handle_order > parse", "value": 0.25, "threshold": 0.2,
     "message": "parse takes 25.0 % of handle_order's critical path (25.0 % on its own, "
     "without its children)"},
    {"kind": "error_ratio", "subject": "checkout", "value": 0.25, "threshold": 0.05,
     "message": "checkout fails 25.0 % of calls (2 of 8; mostly ValueError)"},
    {"kind": "cache_hit_ratio", "subject": "catalog", "value": 0.25, "threshold": 0.6,
     "message": "cache catalog hits 25.0 % of lookups (1 hits, 3 misses)"},
]  # fmt: skip
RECOMMENDATION_KINDS = [  # (kind, subject); messages checked below where they are exact
    # CPU is tracked, but these SDK spans have no CPU figure: unknown, never "waits".
    ("cpu_unknown", "handle_order > fetch_price"),
    ("cpu_unknown", "handle_order > download"),
    ("cpu_unknown", "handle_order > parse"),
    ("errors", "checkout"),
    ("throughput", "ingest"),
    ("cache", "catalog"),
    ("api_cost", "openai gpt-4o"),
]
API_COST_MESSAGE = (
    "openai model gpt-4o costs $0.01475, 81.1 % of the API bill, $0.0036875 per call, 85.4 % of "
    "tokens are input: send simple requests to a cheaper model, cache responses to repeated "
    "prompts, and trim long prompts."
)


def scaled(rows: list[dict[str, Any]], k: float) -> list[dict[str, Any]]:
    """Rows with every count multiplied by ``k`` (ratios and quantiles unchanged)."""
    counts = {"calls", "errors", "items", "bytes", "hits", "misses", "input_tokens",
              "output_tokens", "cost_usd"}  # fmt: skip
    return [{key: v * k if key in counts else v for key, v in r.items()} for r in rows]


def close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 relative: the only error is float rounding of ns -> s sums."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def assert_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [sorted(r) for r in got] == [sorted(r) for r in want], (got, want)
    for g, w in zip(got, want, strict=True):
        for k in w:
            assert close(g[k], w[k]), (k, g, w)


def assert_endpoints(doc: dict[str, Any], k: int = 1) -> None:
    """The endpoints of the workload run ``k`` times: its three roots, longest total first.

    checkout and ingest are measure() roots, so their duration histogram gives every figure.
    handle_order's SDK spans get their histogram from the processor, which records every span.
    """
    eps = doc["endpoints"]
    assert [e["operation"] for e in eps] == ["checkout", "handle_order", "ingest"]
    seconds = doc["source"]["data_seconds"]
    assert seconds is not None and seconds > 0
    checkout, handle, ingest = (dict(e) for e in eps)
    for e in (checkout, handle, ingest):
        assert close(e.pop("rate_per_second"), e["calls"] / seconds)
    # Wall time: the mean of sleeps of 60 ms (x6) and 150 ms (x2), or of 60 ms, plus overhead.
    assert 0.0825 <= checkout.pop("mean_seconds") < 0.0825 + 0.05
    assert 0.06 <= ingest.pop("mean_seconds") < 0.06 + 0.05
    op = {o["operation"]: o for o in OPERATIONS}
    quantiles = ("p50_seconds", "p95_seconds", "p99_seconds")
    assert_rows([checkout, ingest], [
        {"operation": "checkout", "calls": 8 * k, "errors": 2 * k, "error_ratio": 0.25,
         **{q: op["checkout"][q] for q in quantiles}, "top_bottleneck": None,
         "top_bottleneck_share": None},
        {"operation": "ingest", "calls": 2 * k, "errors": 0, "error_ratio": 0.0,
         **{q: op["ingest"][q] for q in quantiles}, "top_bottleneck": None,
         "top_bottleneck_share": None},
    ])  # fmt: skip
    # 4 roots of exactly 100 ms, all in the (0.05, 0.1] bucket.
    figures = {"errors": 0, "error_ratio": 0.0, "p50_seconds": 0.075, "p95_seconds": 0.0975,
               "p99_seconds": 0.0995}  # fmt: skip
    assert_rows([handle], [
        {"operation": "handle_order", "calls": 4 * k, **figures, "mean_seconds": 0.1,
         "top_bottleneck": "fetch_price", "top_bottleneck_share": 0.3},
    ])  # fmt: skip


def pop_items_rate(rows: list[dict[str, Any]], seconds: float | None) -> None:
    """Take ``items_per_second`` out of each operations row (issue 16): items over the
    figures' seconds (exactly, when the source's ``data_seconds`` is known; else only a
    positive rate), None for an operation without items."""
    for r in rows:
        rate = r.pop("items_per_second")
        if not r["items"]:
            assert rate is None, r
        elif seconds is not None:
            assert rate == r["items"] / seconds, (r, seconds)
        else:
            assert rate is not None and rate > 0, r


def assert_report_dict(doc: dict[str, Any], k: int = 1) -> None:
    """The JSON contract of the workload run ``k`` times (figures exact but wall-time ones)."""
    assert set(doc) == {"source", "endpoints", "operations", "bottlenecks", "caches", "apis",
                        "resources", "warnings", "recommendations"}  # fmt: skip
    assert_endpoints(doc, k)
    ops = doc["operations"]
    # cpu_ratio: sleeping code, so thread CPU is a sliver of wall time (wall time: a range).
    for r in ops:
        ratio = r.pop("cpu_ratio")
        if r["operation"] in MEASURED:
            assert ratio is not None and 0 <= ratio < 0.2
        else:
            assert ratio is None
    assert_histograms(ops, k)
    pop_items_rate(ops, doc["source"]["data_seconds"])
    assert_rows(ops, scaled(OPERATIONS, k))
    assert_rows(doc["bottlenecks"], BOTTLENECKS)
    assert_rows(doc["caches"], scaled(CACHES, k))
    assert_rows(doc["apis"], scaled(APIS, k))
    # Resource warnings depend on the host's load at that moment: checked apart.
    warnings = [w for w in doc["warnings"] if w["kind"] != "resource"]
    want_warnings = [dict(w) for w in WARNINGS]
    if k != 1:
        want_warnings[3]["message"] = f"checkout fails 25.0 % of calls ({2 * k} of {8 * k}; " \
                                      "mostly ValueError)"  # fmt: skip
        want_warnings[4]["message"] = f"cache catalog hits 25.0 % of lookups ({k} hits, " \
                                      f"{3 * k} misses)"  # fmt: skip
    assert_rows(warnings, want_warnings)
    recs = [r for r in doc["recommendations"] if r["kind"] != "resource"]
    assert [(r["kind"], r["subject"]) for r in recs] == RECOMMENDATION_KINDS
    assert recs[0]["message"] == (
        "fetch_price takes 30.0 % of handle_order; it has no CPU figure (async code, whose CPU "
        "cannot be attributed across awaits, or a span not recorded by measure()), so whether "
        "it computes or waits is unknown: measure its synchronous part with measure() to "
        "record its CPU time, or profile it (py-spy dump while it runs): a CPU-bound stage "
        "needs profiling (py-spy, cProfile), a waiting one parallel calls, caching or batching."
    )
    assert recs[4]["message"].startswith("ingest handles ")  # rate: wall time
    if k == 1:
        assert recs[6]["message"] == API_COST_MESSAGE
    res = doc["resources"]
    for name in ("system_cpu_utilization", "system_memory_utilization"):
        (entry,) = res[name]
        assert entry["labels"] == {} and 0 <= entry["value"] <= 1
    assert res["system_cpu_utilization"][0]["threshold"] == 0.8


# Cumulative bucket counts of one workload run (the sleeps land inside these buckets), and the
# bounds on each duration sum that those buckets imply (wall time: a range, not a figure).
# The tree's plain spans have given times (4 trees a run), so their sums are exact.
BUCKETS = {"checkout": {0.1: 6, 0.25: 8}, "ingest": {0.1: 2}, "handle_order": {0.1: 4},
           "download": {0.05: 4}, "parse": {0.025: 4}, "enrich": {0.05: 4},
           "fetch_price": {0.025: 4, 0.05: 8}, "store": {0.01: 4}}  # fmt: skip
_EXACT = {"handle_order": 0.4, "download": 0.12, "parse": 0.1, "enrich": 0.148,
          "fetch_price": 4 * (0.023 + 0.030), "store": 0.024}  # fmt: skip
SUM_RANGE = {"checkout": (6 * 0.06 + 2 * 0.15, 6 * 0.1 + 2 * 0.25), "ingest": (0.12, 0.2),
             **{op: (x - 1e-9, x + 1e-9) for op, x in _EXACT.items()}}  # fmt: skip


def assert_histograms(ops: list[dict[str, Any]], k: int) -> None:
    """The JSON's ``buckets`` and ``sum_seconds`` (popped from ``ops``) for ``k`` runs."""
    for r in ops:
        want, running = [], 0
        for le in DEFAULT_DURATION_BUCKETS:
            running = BUCKETS[r["operation"]].get(le, running)
            want.append([int(le) if le.is_integer() else le, running * k])
        want.append(["+Inf", running * k])
        assert r.pop("buckets") == want
        low, high = SUM_RANGE[r["operation"]]
        assert low * k <= r.pop("sum_seconds") <= high * k


@pytest.fixture(scope="module")
def loaded() -> Iterator[otelperf.Telemetry]:
    t = otelperf.configure(service_name="report-test", prometheus_port=0,
                           registry=CollectorRegistry(), set_global=False,
                           track_cpu=True)  # fmt: skip
    try:
        run_workload(t)
        yield t
    finally:
        t.shutdown()
        prices.clear_prices()


def cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


# --- the three formats over a real scrape ------------------------------------------------------


def test_json_over_a_real_scrape_is_the_contract_figure_by_figure(loaded, capsys):
    code, out, err = cli("--url", loaded.metrics_url, "--format", "json", capsys=capsys)
    assert (code, err) == (0, "")
    assert (
        out.endswith("}\n") and out == json.dumps(json.loads(out), sort_keys=True, indent=2) + "\n"
    )
    doc = json.loads(out)
    # data_seconds: the process's uptime at the scrape (from process_start_time_seconds).
    source = dict(doc["source"])
    uptime = source.pop("data_seconds")
    assert abs(uptime - (time.time() - psutil.Process().create_time())) < 2
    assert source == {"kind": "url", "target": loaded.metrics_url, "window": None,
                             "job": None, "at": None, "window_seconds": None}  # fmt: skip
    assert_report_dict(doc)


def test_in_process_report_is_the_same_structure(loaded):
    doc = loaded.report().to_dict()
    assert doc["source"]["kind"] == "process"
    assert_report_dict(doc)


def section(text: str, title: str) -> str:
    """The part of the text report from the section titled ``title...`` to the next blank line."""
    start = text.index("\n" + title) + 1
    end = text.find("\n\n", start)
    return text[start:] if end < 0 else text[start:end]


def row(text: str, first: str) -> list[str]:
    """The cells of the table line starting with ``first`` (split on runs of 2+ spaces)."""
    for line in text.splitlines():
        if line.startswith(first + " "):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no line starting with {first!r} in:\n{text}")


def assert_endpoint_rows(out: str) -> None:
    """The Endpoints table of the workload, before Operations (rates: wall time, checked in
    JSON; handle_order's figures depend on whether its spans have a histogram, see
    assert_endpoints)."""
    assert out.index("\nEndpoints (") < out.index("\nOperations (")
    eps = section(out, "Endpoints")
    assert eps.splitlines()[1].split() == ["endpoint", "calls", "rate", "err", "%", "p50", "p95",
                                           "p99", "bottleneck", "%"]  # fmt: skip
    assert [line.split()[0] for line in eps.splitlines()[3:]] == ["checkout", "handle_order",
                                                                  "ingest"]  # fmt: skip
    checkout, ingest = row(eps, "checkout"), row(eps, "ingest")
    assert checkout[:2] + checkout[3:] == ["checkout", "8", "25.0", "83.3", "220", "244", "-", "-"]
    assert ingest[:2] + ingest[3:] == ["ingest", "2", "0.0", "75.0", "97.5", "99.5", "-", "-"]
    handle = row(eps, "handle_order")
    assert handle[:2] == ["handle_order", "4"] and handle[-2:] == ["fetch_price", "30.0"]
    assert handle[3:7] in (["-", "-", "-", "-"], ["0.0", "75.0", "97.5", "99.5"])


def test_text_tables_figure_by_figure_fit_80_columns_and_have_no_colour_in_a_pipe(loaded, capsys):
    code, out, err = cli("--url", loaded.metrics_url, capsys=capsys)
    assert (code, err) == (0, "")
    assert "\033[" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    title = " ".join(out.split("\n\n")[0].splitlines())  # wrapped to the width
    assert title == f"otelperf report — {loaded.metrics_url}: totals since the process started"
    assert_endpoint_rows(out)
    ops = section(out, "Operations")
    # operation, calls, err %, p50, p95, p99 (ms), items, items/s, bytes, cpu % (items/s and
    # cpu %: wall time, items/s checked exactly in JSON)
    assert ops.splitlines()[1].split() == ["operation", "calls", "err", "%", "p50", "p95", "p99",
                                           "items", "items/s", "bytes", "cpu", "%"]  # fmt: skip
    assert row(ops, "checkout")[:9] == ["checkout", "8", "25.0", "83.3", "220", "244", "-", "-",
                                        "-"]  # fmt: skip
    ingest = row(ops, "ingest")
    assert ingest[:7] + ingest[8:9] == ["ingest", "2", "0.0", "75.0", "97.5", "99.5", "20",
                                        "8.0KiB"]  # fmt: skip
    assert float(ingest[7]) > 0
    assert row(out, "handle_order > fetch_price") == ["handle_order > fetch_price", "30.0", "53.0"]
    assert row(out, "handle_order > enrich") == ["handle_order > enrich", "7.0", "4.0"]
    assert row(out, "checkout > checkout") == ["checkout > checkout", "100.0", "100.0"]
    assert row(out, "catalog") == ["catalog", "1", "3", "25.0"]
    assert row(out, "sessions") == ["sessions", "7", "3", "70.0"]
    assert row(out, "openai gpt-4o-mini") == ["openai gpt-4o-mini", "4", "0", "8.0k", "400",
                                              "0.00144"]  # fmt: skip
    assert row(out, "geocoder unknown") == ["geocoder unknown", "2", "0", "0", "0", "0.002"]
    assert row(out, "openai gpt-4o") == ["openai gpt-4o", "4", "1", "3.5k", "600", "0.01475"]
    warnings = out.split("\nWarnings\n")[1].split("\n\n")[0]
    assert "! checkout fails 25.0 % of calls (2 of 8; mostly ValueError)" in warnings
    assert "! cache catalog hits 25.0 % of lookups (1 hits, 3 misses)" in warnings
    assert warnings.count("critical path") == 3
    recs = out.split("\nRecommendations\n")[1]
    assert recs.count("\n- ") + recs.startswith("- ") >= 7


def test_csv_to_stdout_is_the_operations_table(loaded, capsys):
    code, out, err = cli("--url", loaded.metrics_url, "--format", "csv", capsys=capsys)
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == ("operation,calls,errors,error_ratio,p50_seconds,p95_seconds,"
                                   "p99_seconds,items,bytes,cpu_ratio,"
                                   "items_per_second")  # fmt: skip
    got = [{k: _csv_number(v) for k, v in r.items()} for r in rows]
    for r in got:
        ratio = r.pop("cpu_ratio")
        assert (0 <= ratio < 0.2) if r["operation"] in MEASURED else ratio is None
    pop_items_rate(got, None)
    assert_rows(got, OPERATIONS)


def _csv_number(v: str) -> Any:
    if v == "":
        return None
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def test_csv_out_writes_one_file_per_table(loaded, capsys, tmp_path):
    out_dir = tmp_path / "report"
    code, _out, err = cli("--url", loaded.metrics_url, "--format", "csv", "--out", str(out_dir),
                         capsys=capsys)  # fmt: skip
    assert (code, err) == (0, "")
    names = ["apis", "bottlenecks", "caches", "endpoints", "operations", "recommendations",
             "resources", "warnings"]  # fmt: skip
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{n}.csv" for n in names]

    def table(name: str) -> list[dict[str, Any]]:
        with open(out_dir / f"{name}.csv", encoding="utf-8", newline="") as fh:
            return [{k: _csv_number(v) for k, v in r.items()} for r in csv.DictReader(fh)]

    assert_rows(table("bottlenecks"), BOTTLENECKS)
    assert_rows(table("caches"), CACHES)
    assert_rows(table("apis"), APIS)
    # The CSV holds the JSON's endpoints, cell for cell (null: an empty cell).
    code, out, _err = cli("--url", loaded.metrics_url, "--format", "json", capsys=capsys)
    doc = json.loads(out)
    doc["endpoints"] = table("endpoints")
    for e in doc["endpoints"]:  # the uptime moved on between the two scrapes
        e["rate_per_second"] = e["calls"] / doc["source"]["data_seconds"]
    assert code == 0
    assert_endpoints(doc)
    ops = table("operations")
    for r in ops:
        r.pop("cpu_ratio")
    pop_items_rate(ops, None)
    assert_rows(ops, OPERATIONS)
    warnings = [w for w in table("warnings") if w["kind"] != "resource"]
    assert_rows(warnings, WARNINGS)
    recs = [(r["kind"], r["subject"]) for r in table("recommendations") if r["kind"] != "resource"]
    assert recs == RECOMMENDATION_KINDS
    res = {r["metric"]: r for r in table("resources")}
    assert res["system_cpu_utilization"]["threshold"] == 0.8
    assert res["system_filesystem_utilization"]["labels"].startswith(
        "system_filesystem_mountpoint="
    )


def test_top_limits_each_table(loaded, capsys):
    _code, out, _ = cli("--url", loaded.metrics_url, "--format", "json", "--top", "1",
                       capsys=capsys)  # fmt: skip
    doc = json.loads(out)
    assert [r["operation"] for r in doc["operations"]] == ["checkout"]
    assert [(b["root_operation"], b["operation"]) for b in doc["bottlenecks"]] == [
        ("checkout", "checkout"),
        ("handle_order", "fetch_price"),
        ("ingest", "ingest"),
    ]
    assert [c["cache"] for c in doc["caches"]] == ["catalog"]
    assert len(doc["warnings"]) >= 5  # findings are over everything, not just the top rows


# --- bad input: one line on stderr, exit 2, no traceback ---------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "otelperf.cli", "report", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": ""},
    )  # fmt: skip


def assert_one_line_error(p: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith("otelperf report: error: ")
    for f in fragments:
        assert f in lines[0], lines[0]


def test_unreachable_url():
    port = free_port()
    p = run_cli("--url", f"http://127.0.0.1:{port}/metrics")
    assert_one_line_error(p, f"cannot reach --url http://127.0.0.1:{port}/metrics",
                          "Connection refused")  # fmt: skip


def test_not_a_url():
    assert_one_line_error(run_cli("--url", "localhost:9464"), "--url='localhost:9464' is not "
                          "an http:// or https:// URL")  # fmt: skip


@pytest.fixture
def static_server() -> Iterator[Any]:
    """A real HTTP server on 127.0.0.1 serving whatever body a test puts in ``.body``."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = server.body  # type: ignore[attr-defined]
            self.send_response(server.status)  # type: ignore[attr-defined]
            self.send_header("Content-Type", server.ctype)  # type: ignore[attr-defined]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *a: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.body, server.status, server.ctype = b"", 200, "text/plain"  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_non_metrics_content(static_server):
    static_server.body = b"<html><body>Welcome to nginx!</body></html>\n"
    url = static_server.url + "/"
    assert_one_line_error(run_cli("--url", url), f"--url {url} did not return Prometheus metrics")


def test_http_error_status(static_server):
    static_server.status, static_server.body = 404, b"not found\n"
    url = static_server.url + "/metric"
    assert_one_line_error(run_cli("--url", url), f"--url {url} answered HTTP 404")


def test_empty_endpoint():
    # otelperf's own /metrics server and reader over a meter provider that recorded nothing
    # (configure() is taken by the module fixture; this is the same server and reader).
    from opentelemetry.sdk.metrics import MeterProvider

    from otelperf.expose.server import MetricsServer, prometheus_reader

    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[prometheus_reader(registry)])
    provider.get_meter("otelperf").create_counter("otelperf.unused")
    server = MetricsServer("127.0.0.1", 0, registry)
    try:
        p = run_cli("--url", server.url)
    finally:
        server.close()
        provider.shutdown()
    assert_one_line_error(p, f"--url {server.url} shows no otelperf metrics")


def test_empty_page(static_server):
    url = static_server.url + "/metrics"
    assert_one_line_error(run_cli("--url", url), "shows no otelperf metrics")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--url", "http://127.0.0.1:1/metrics", "--top", "-1"], "--top=-1 is out of range"),
        (["--url", "http://127.0.0.1:1/metrics", "--job", "api"], "--job only applies to "
         "--prometheus"),
        (["--url", "http://127.0.0.1:1/metrics", "--out", "x"], "--out is only for --format csv"),
        (["--prometheus", "http://127.0.0.1:1", "--window", "1x"], "--window='1x' is not a "
         "Prometheus duration"),
        (["--prometheus", "http://127.0.0.1:1", "--at", "yesterday"], "--at='yesterday' is "
         "neither Unix seconds nor an RFC 3339 time"),
    ],
)  # fmt: skip
def test_bad_arguments_name_the_argument(args, fragment):
    assert_one_line_error(run_cli(*args), fragment)


def test_connection_cut_mid_response():
    # A server that promises 100 bytes, sends 3 and hangs up (a crashing exporter).
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{srv.getsockname()[1]}/metrics"
    try:
        p = run_cli("--url", url)
    finally:
        th.join(timeout=10)
        srv.close()
    assert_one_line_error(p, f"cannot reach --url {url}: IncompleteRead")
