"""The HTML report's timeline: ``TimelineRecorder`` on a real registry (exact cumulative counts,
bounded memory for any run length, its thread, its caught failures counted on /metrics), and
the Prometheus window's timeline (the step and the PromQL; exact totals against a real
Prometheus are in test_report_prometheus.py)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import otelperf
from otelperf.errors import ConfigError
from otelperf.report import from_registry
from otelperf.report.html import rates
from otelperf.report.sources.prometheus import timeline_queries, timeline_step
from otelperf.report.timeline import TimelinePoint, TimelineRecorder
from tests.conftest import wait_for


@pytest.fixture(scope="module")
def telemetry() -> Iterator[otelperf.Telemetry]:
    t = otelperf.configure(service_name="timeline-test", registry=CollectorRegistry(),
                           start_server=False, set_global=False)  # fmt: skip
    try:
        yield t
    finally:
        t.shutdown()


def stage(name: str, calls: int, items: int) -> None:
    for _ in range(calls):
        with otelperf.measure(name) as op:
            op.add_items(items)


def test_points_hold_exact_cumulative_totals(telemetry):
    rec = TimelineRecorder(telemetry.registry, interval=3600)
    first = rec.sample()
    assert first is not None
    base_calls = first.calls.get("tl.load", 0.0)
    stage("tl.load", 3, 7)
    second = rec.sample()
    stage("tl.load", 2, 7)
    stage("tl.save", 4, 0)
    third = rec.sample()
    assert second is not None and third is not None
    assert second.calls["tl.load"] - base_calls == 3 and second.items["tl.load"] == 21
    assert third.calls["tl.load"] - base_calls == 5 and third.items["tl.load"] == 35
    assert third.calls["tl.save"] == 4 and "tl.save" not in third.items  # no items: not listed
    assert rec.points() == [first, second, third] and first.at <= second.at <= third.at
    # The report carries them; the page's rates are differences over time differences.
    report = from_registry(telemetry.registry, timeline=rec.points())
    assert report.timeline == (first, second, third)
    r = rates(report.timeline, "items")["tl.load"]
    # the second interval's step: from the second point to the third, at its rate
    rate = 14 / (third.at - second.at)
    assert r[2:] == [(second.at - first.at, rate), (third.at - first.at, rate)]


def test_memory_is_bounded_for_any_run_length(telemetry):
    rec = TimelineRecorder(telemetry.registry, interval=0.5, max_points=8)
    expected_len, thinned = 0, 0
    last = None
    for _ in range(100):
        last = rec.sample()
        assert len(rec.points()) <= 8
        # What the recorder must do: at the cap, keep every other point, double the interval.
        if expected_len >= 8:
            expected_len, thinned = math.ceil(expected_len / 2), thinned + 1
        expected_len += 1
    points = rec.points()
    assert len(points) == expected_len and thinned == 23
    assert rec.interval == 0.5 * 2**thinned
    assert points[-1] is last  # the newest point survives thinning
    assert [p.at for p in points] == sorted(p.at for p in points)


def test_the_thread_samples_until_stopped(telemetry):
    rec = TimelineRecorder(telemetry.registry, interval=0.02, max_points=240)
    assert rec.start() is rec and rec.start() is rec  # idempotent
    wait_for(lambda: len(rec.points()) >= 4, timeout=10, what="four samples")
    threads = [t for t in threading.enumerate() if t.name == "otelperf-timeline"]
    assert threads and all(t.daemon for t in threads)
    stage("tl.thread", 2, 5)
    rec.stop()
    assert not any(t.is_alive() for t in threads)
    n = len(rec.points())
    assert rec.points()[-1].items["tl.thread"] == 10  # stop() takes the final point
    rec.stop()
    assert len(rec.points()) == n  # a second stop() does nothing


class Broken:
    def collect(self) -> Any:
        raise RuntimeError("registry gone")


def test_failures_never_reach_the_application_and_are_counted(telemetry, caplog):
    meter = telemetry.meter_provider.get_meter("otelperf.timeline-test")
    rec = TimelineRecorder(Broken(), interval=3600, meter=meter)
    assert rec.sample() is None and rec.sample() is None
    rec.start()
    rec.stop()  # start() and stop() sample too: no exception either
    assert rec.points() == [] and rec.errors.get("timeline") == 4
    scrape = generate_latest(telemetry.registry).decode()
    assert 'otelperf_internal_errors_total{component="timeline"} 4.0' in scrape
    assert "otelperf timeline failed" in caplog.text  # logged once, with the traceback


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"interval": 0}, "interval=0 is out of range"),
        ({"interval": "1"}, "interval='1' must be a number"),
        ({"interval": True}, "interval=True must be a number"),
        ({"max_points": 1}, "max_points=1 must be an integer of at least 2"),
        ({"max_points": 2.5}, "max_points=2.5 must be an integer"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        TimelineRecorder(CollectorRegistry(), **kwargs)


def test_rates_between_points():
    pts = [
        TimelinePoint(100.0, {"a": 0.0}, {"a": 0.0}),
        TimelinePoint(102.0, {"a": 4.0}, {"a": 40.0}),
        TimelinePoint(106.0, {"a": 1.0, "b": 8.0}, {"a": 40.0}),  # "a" restarted
    ]
    # a step per interval: (start, rate), (end, rate)
    assert rates(pts, "calls") == {
        "a": [(0.0, 2.0), (2.0, 2.0), (2.0, 0.25), (6.0, 0.25)],
        "b": [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (6.0, 2.0)],
    }
    assert rates(pts, "items") == {"a": [(0.0, 20.0), (2.0, 20.0), (2.0, 0.0), (6.0, 0.0)]}
    assert rates(pts[:1], "calls") == {}


def test_prometheus_timeline_step_and_queries():
    # Steps tiling the window: a sixtieth of it or more, at least two scrape intervals.
    assert timeline_step("1h", 15.0) == (60, 60.0)
    assert timeline_step("10m", 1.0) == (60, 10.0)
    assert timeline_step("30s", 1.0) == (15, 2.0)
    assert timeline_step("25s", 2.0) == (6, 4.167)  # 4.1666 s rounded up to whole ms
    assert timeline_step("2500ms", 1.0) == (1, 2.5)  # shorter: the window as one step
    assert timeline_step("1m", None) == (1, 60.0)  # no target: Prometheus's default 1m assumed
    assert timeline_step("7d", 15.0) == (60, 10080.0)
    q = timeline_queries(2.0, None)
    assert q == {
        "calls": "sum by (operation) (increase(otelperf_operation_duration_seconds_count[2000ms]))",
        "items": "sum by (operation) (increase(otelperf_operation_items_total[2000ms]))",
    }
