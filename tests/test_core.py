"""otelperf._core: the one warn-once, the one fork registry, the self-metrics counters, sinks."""

from __future__ import annotations

import gc
import logging
import os
import sys

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry

from otelperf import _names as N
from otelperf._core import fork, sdk_compat, sinks
from otelperf._core.selfmetrics import Counters, Tally
from otelperf._core.warn import Once
from otelperf.derive.processor import BottleneckSpanProcessor
from otelperf.expose.server import prometheus_reader
from tests.scrape import read_registry, value


def test_once_warns_once_per_key(caplog: pytest.LogCaptureFixture) -> None:
    once = Once()
    with caplog.at_level(logging.WARNING, logger="otelperf"):
        for _ in range(3):
            once.warn("a", "otelperf: %s", "first")
        once.warn("b", "otelperf: other")
    assert [r.getMessage() for r in caplog.records] == ["otelperf: first", "otelperf: other"]
    once.clear()
    assert once.first("a")


def test_fork_registry_holds_methods_weakly_and_forgets() -> None:
    calls: list[str] = []

    class Part:
        def reset(self) -> None:
            calls.append("reset")

    part = Part()
    gc.collect()  # objects of earlier tests (pipelines register a reset) go first
    before = fork.registered()
    fork.on_fork(part.reset)
    assert fork.registered() == before + 1
    fork.forget(part.reset)
    assert fork.registered() == before
    fork.on_fork(part.reset)
    del part
    gc.collect()
    assert fork.registered() == before  # a dead object is no longer called
    assert calls == []


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork()")
def test_fork_registry_runs_resets_in_the_child() -> None:
    class Part:
        reset_in: int | None = None

        def reset(self) -> None:
            self.reset_in = os.getpid()

    part = Part()
    fork.on_fork(part.reset)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(w, b"1" if part.reset_in == os.getpid() else b"0")
        os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(r)
    assert part.reset_in is None  # not in the parent
    fork.forget(part.reset)


def test_a_shut_down_processor_leaves_the_fork_registry() -> None:
    before = fork.registered()
    p = BottleneckSpanProcessor(meter_provider=MeterProvider())
    assert fork.registered() == before + 1
    p.shutdown()
    assert fork.registered() == before


def test_counters_read_the_current_source() -> None:
    reg = CollectorRegistry()
    mp = MeterProvider(metric_readers=[prometheus_reader(reg)])

    class Part:
        errors, overflows = Tally(N.COMPONENT), Tally(N.COMPONENT)

    counters = Counters(mp.get_meter("test"))
    assert value(read_registry(reg), N.INTERNAL_ERRORS.prom, component="x") is None
    counters.current = Part()
    Part.errors.add("x", 2)
    Part.overflows.add("y")
    samples = read_registry(reg)
    assert value(samples, N.INTERNAL_ERRORS.prom, component="x") == 2
    assert value(samples, N.CARDINALITY_OVERFLOW.prom, component="y") == 1
    mp.shutdown()


def test_sinks_prefer_the_configured_processor_then_the_newest() -> None:
    mp = MeterProvider()
    first = BottleneckSpanProcessor(meter_provider=mp)
    second = BottleneckSpanProcessor(meter_provider=mp)
    try:
        assert sinks.active() is second
        sinks.set_configured(first)
        assert sinks.active() is first
        first.shutdown()
        assert sinks.active() is second
    finally:
        sinks.set_configured(None)
        first.shutdown()
        second.shutdown()


def test_sdk_fields_probe_holds_for_the_installed_sdk() -> None:
    assert sdk_compat.DIRECT_FIELDS
    assert sdk_compat.SDK_SPAN is not None and sdk_compat.READABLE_SPAN is not None
