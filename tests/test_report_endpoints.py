"""The report's endpoints (root operations) and what it says about them, and about operations
whose CPU time is unknown: hand-written figures for the rules, a real registry for the CPU
advice with CPU tracking off and on."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import otelperf
from otelperf.report import Totals, build_report, from_registry
from otelperf.report.model import OperationFigures, format_duration, whole
from otelperf.thresholds import Thresholds
from tests.test_report_cli import row, section

INF = math.inf


def _op(name: str, calls: float, errors: float, buckets: dict[float, float],
        duration_sum: float) -> OperationFigures:  # fmt: skip
    return OperationFigures(name, calls=calls, errors=errors, buckets=buckets,
                            duration_sum=duration_sum)  # fmt: skip


def test_endpoints_from_the_histogram_and_from_the_root_counters():
    t = Totals(
        operations={
            # 10 calls: 8 in (0.1, 0.25], 2 in (5, 10]; 3 errors.
            "GET /items/{item_id}": _op(
                "GET /items/{item_id}", 10, 3, {0.1: 0, 0.25: 8, 5.0: 8, 10.0: 10, INF: 10}, 16.0
            ),
            "SELECT items": _op("SELECT items", 10, 0, {0.1: 10, INF: 10}, 0.5),
        },
        roots={"GET /items/{item_id}": 10, "nightly": 2},
        root_duration={"GET /items/{item_id}": 16.0, "nightly": 30.0},
        critical_path={
            ("GET /items/{item_id}", "SELECT items"): 0.5,
            ("GET /items/{item_id}", "GET /items/{item_id}"): 15.5,
            ("nightly", "nightly"): 6.0,
            ("nightly", "load"): 24.0,
        },
        seconds=20.0,
    )
    rep = build_report(t)
    d = rep.to_dict()
    # Longest total first: nightly 30 s, then the route's 16 s.
    assert d["endpoints"] == [
        {"operation": "nightly", "calls": 2, "errors": None, "error_ratio": None,
         "rate_per_second": 0.1, "p50_seconds": None, "p95_seconds": None, "p99_seconds": None,
         "mean_seconds": 15, "top_bottleneck": "load", "top_bottleneck_share": 0.8},
        {"operation": "GET /items/{item_id}", "calls": 10, "errors": 3, "error_ratio": 0.3,
         "rate_per_second": 0.5, "p50_seconds": 0.1 + 0.15 * 5 / 8,
         "p95_seconds": 5 + 5 * 1.5 / 2, "p99_seconds": 5 + 5 * 1.9 / 2, "mean_seconds": 1.6,
         "top_bottleneck": "SELECT items", "top_bottleneck_share": 0.5 / 16},
    ]  # fmt: skip
    # The route is an operation too: one error warning and one slow warning, not two each.
    kinds = [(w.kind, w.subject) for w in rep.warnings]
    assert kinds == [("bottleneck", "nightly > load"), ("error_ratio", "GET /items/{item_id}"),
                     ("slow_p95", "GET /items/{item_id}")]  # fmt: skip
    slow = rep.warnings[2]
    assert (slow.value, slow.threshold) == (8.75, 5.0)
    assert (
        slow.message
        == "endpoint GET /items/{item_id} takes 8.75 s at p95, over the 5.00 s threshold"
    )
    recs = {(r.kind, r.subject): r.message for r in rep.recommendations}
    assert recs[("slow", "GET /items/{item_id}")].startswith(
        "GET /items/{item_id} takes 8.75 s at p95: start with SELECT items, 3.1 % of its "
        "critical path (Where the time goes)"
    )
    # The CSV holds the same row, in the contract's key order, null as an empty cell.
    lines = rep.to_csv("endpoints").splitlines()
    assert lines[0] == ("operation,calls,errors,error_ratio,rate_per_second,p50_seconds,"
                        "p95_seconds,p99_seconds,mean_seconds,top_bottleneck,"
                        "top_bottleneck_share")  # fmt: skip
    assert lines[1] == "nightly,2,,,0.1,,,,15,load,0.8"
    # A stricter threshold from a rules config moves the warning; on the line does not warn.
    on_line = build_report(t, thresholds=Thresholds(operation_slow_p95_seconds=8.75))
    assert "slow_p95" not in {w.kind for w in on_line.warnings}
    text = rep.to_text()
    assert text.index("\nEndpoints (") < text.index("\nOperations (")
    eps = section(text, "Endpoints")
    # Two name columns fit 80 columns: the route is shortened from the left, like operations.
    assert row(eps, "…ms/{item_id}") == ["…ms/{item_id}", "10", "0.5", "30.0", "194", "8750",
                                         "9750", "SELECT items", "3.1"]  # fmt: skip
    assert row(eps, "nightly") == ["nightly", "2", "0.1", "-", "-", "-", "-", "load", "80.0"]


def test_an_endpoint_without_an_operation_row_is_judged_on_its_own():
    # Only roots: rows exist, no histogram, so nothing to judge errors or latency by.
    t = Totals(roots={"job": 4}, root_duration={"job": 2.0})
    rep = build_report(t)
    assert [e.operation for e in rep.endpoints] == ["job"]
    assert rep.endpoints[0].rate_per_second is None  # no uptime known
    assert rep.warnings == ()
    assert row(section(rep.to_text(), "Endpoints"), "job") == ["job", "4"] + ["-"] * 7


def test_top_limits_endpoints_and_counts_are_whole():
    t = Totals(roots={f"r{i}": 1.0 + i for i in range(5)},
               root_duration={f"r{i}": 1.0 + i for i in range(5)})  # fmt: skip
    assert [e.operation for e in build_report(t, top=2).endpoints] == ["r4", "r3"]
    t = Totals(roots={"r": 211.5}, root_duration={"r": 21.15}, seconds=10.0)
    (e,) = build_report(t).endpoints
    assert (e.calls, e.rate_per_second) == (212.0, 21.15)  # the rate from the unrounded count
    assert e.mean_seconds == pytest.approx(0.1, rel=1e-12)
    assert (whole(0.5), whole(1.49), whole(2.5)) == (1.0, 1.0, 3.0)  # halves up, not to even
    assert format_duration(3600 + 61) == "1h1m1s" and format_duration(59.5) == "1m"


# --- CPU: unknown is said to be unknown, "waits" only when CPU says so ------------------------


def _crunch(seconds: float) -> None:
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1


def _workload() -> None:
    """A root with a CPU-bound stage and a sleeping one, about half of it each."""
    for _ in range(2):
        with otelperf.measure("batch"):
            with otelperf.measure("crunch"):
                _crunch(0.06)
            with otelperf.measure("pause"):
                time.sleep(0.06)


@pytest.fixture(params=[False, True], ids=["cpu-off", "cpu-on"])
def cpu_report(request: pytest.FixtureRequest) -> Iterator[tuple[bool, dict[str, str]]]:
    t = otelperf.configure(service_name="report-cpu", prometheus_port=0, start_server=False,
                           registry=CollectorRegistry(), set_global=False,
                           track_cpu=request.param)  # fmt: skip
    try:
        _workload()
        # Loose thresholds: on a busy machine the loop's wall time (not its CPU time) grows.
        loose = Thresholds(cpu_bound_ratio=0.2, bottleneck_stage_share=0.1)
        rep = from_registry(t.registry, thresholds=loose)
        # Resource advice depends on the host's load at that moment: not this test's subject.
        recs = {f"{r.kind} {r.subject}": r.message for r in rep.recommendations
                if r.kind != "resource"}  # fmt: skip
        yield request.param, recs
    finally:
        t.shutdown()


def test_cpu_advice_with_cpu_tracking_off_and_on(cpu_report):
    tracked, recs = cpu_report
    if not tracked:
        # crunch is CPU-bound, pause sleeps; nothing tells them apart: unknown, and how to find
        # out, for both, and neither "waits".
        assert sorted(recs) == ["cpu_unknown batch > crunch", "cpu_unknown batch > pause"]
        for stage, msg in (("crunch", recs["cpu_unknown batch > crunch"]),
                           ("pause", recs["cpu_unknown batch > pause"])):  # fmt: skip
            assert msg.startswith(f"{stage} takes ") and msg.endswith(
                " of batch; whether it computes or waits is unknown: CPU tracking is off (no "
                "operation has a CPU figure). Set OTELPERF_TRACK_CPU=true (or "
                "configure(track_cpu=True)) to record the thread CPU time of measure()d "
                "operations and run the report again: a CPU-bound stage needs profiling "
                "(py-spy, cProfile), a waiting one parallel calls, caching or batching."
            ), msg
    else:
        assert sorted(recs) == ["cpu_bound batch > crunch", "waiting batch > pause"]
        assert recs["cpu_bound batch > crunch"].startswith("crunch is CPU-bound (")
        assert " of batch and mostly waits (only " in recs["waiting batch > pause"]
