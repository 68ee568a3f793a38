"""Process and host metrics: real scrapes, exact deltas, failing probes, fork, cardinality."""

from __future__ import annotations

import gc
import json
import mmap
import os
import threading
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

import prometheus_client
import psutil
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.registry import Collector

import otelperf
from otelperf import _names as N
from otelperf.expose import probes as probe_module
from otelperf.expose import resources
from otelperf.expose.probes import CpuSampler, Probes, filesystems
from otelperf.expose.resources import ResourceMonitor
from otelperf.expose.server import MetricsServer, prometheus_reader
from tests.scrape import get, matching, read_registry, scrape, value

HOST = (N.HOST_CPU_UTILIZATION, N.HOST_MEMORY_UTILIZATION, N.HOST_FILESYSTEM_UTILIZATION)
ERRORS = N.INTERNAL_ERRORS.prom


def boom(*args: object) -> Any:
    raise OSError("probe down")


class Served:
    """A ResourceMonitor on its own provider and registry, behind a real MetricsServer."""

    def __init__(self, probes: Probes | None = None, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.provider = MeterProvider(metric_readers=[prometheus_reader(self.registry)])
        self.monitor = ResourceMonitor(self.provider, self.registry, probes=probes)
        self.server = MetricsServer("127.0.0.1", 0, self.registry, health=self.monitor.health)

    def close(self) -> None:
        self.server.close()
        self.monitor.close()
        self.provider.shutdown()


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served()
    yield s
    s.close()


# -- on the configured endpoint -------------------------------------------------------------------


def test_scrape_shows_host_and_process_metrics(telemetry: otelperf.Telemetry) -> None:
    samples = scrape(telemetry.metrics_url)
    names = {name for name, _ in samples}
    for metric in (*HOST, *N.PROCESS_METRICS):
        assert metric.series[0] in names, metric.prom
    for metric in (N.HOST_CPU_UTILIZATION, N.HOST_MEMORY_UTILIZATION):
        v = value(samples, metric.prom)
        assert v is not None and 0.0 <= v <= 1.0
    # Exactly the real filesystems, one series each, with the same figure psutil gives.
    fs = matching(samples, N.HOST_FILESYSTEM_UTILIZATION.prom)
    expected = filesystems(Probes(), lambda key, exc: None)
    assert {dict(k[1])[N.MOUNTPOINT] for k in fs} == set(expected)
    for mountpoint, ratio in expected.items():
        assert value(samples, N.HOST_FILESYSTEM_UTILIZATION.prom, **{N.MOUNTPOINT: mountpoint}) == (
            pytest.approx(ratio, abs=0.01)
        )
    rss = value(samples, N.PROC_RESIDENT_MEMORY.prom)
    assert rss == pytest.approx(probe_module.current_rss(), rel=0.2)


def test_no_per_cpu_or_per_pid_series(telemetry: otelperf.Telemetry) -> None:
    samples = scrape(telemetry.metrics_url)
    documented = {m.prom: set(m.labels) for m in (*HOST, *N.PROCESS_METRICS)}
    for name, labels in samples:
        base = name.removesuffix("_total") + ("_total" if name.endswith("_total") else "")
        if base in documented:
            assert {k for k, _ in labels} <= documented[base], name
        assert not {k for k, _ in labels} & {"cpu", "pid", "process_pid", "state"}, name
    assert len(matching(samples, N.HOST_CPU_UTILIZATION.prom)) == 1
    assert len(matching(samples, N.HOST_MEMORY_UTILIZATION.prom)) == 1


def test_thread_count_follows_threads(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url
    before = value(scrape(url), N.PROC_THREADS.prom)
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait) for _ in range(5)]
    for t in threads:
        t.start()
    try:
        during = value(scrape(url), N.PROC_THREADS.prom)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert before is not None and during == before + 5


def test_open_fds_follow_open_files(telemetry: otelperf.Telemetry) -> None:
    # Read through the registry, not over HTTP: a scrape's own sockets, and those an earlier
    # test's server threads are still closing, move the count between two reads (seen: 2 runs
    # in 15 off by one).  Those are other threads' doing, so a few tries are allowed; a probe
    # that does not follow the process's files fails every one.
    def open_fds() -> float | None:
        return value(read_registry(telemetry.registry), N.PROC_OPEN_FDS.prom)

    seen = []
    for _ in range(5):
        before = open_fds()
        fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(7)]
        try:
            during = open_fds()
        finally:
            for fd in fds:
                os.close(fd)
        seen.append((before, during))
        if before is not None and during == before + 7:
            return
    raise AssertionError(f"process_open_fds did not follow 7 opened files: {seen}")


def test_gc_collections_count_each_collection(telemetry: otelperf.Telemetry) -> None:
    url = telemetry.metrics_url
    gc.disable()  # no automatic collection may land between the two scrapes
    try:
        before = value(scrape(url), N.GC_COLLECTIONS.prom, generation="2")
        gc.collect()
        gc.collect()
        after = value(scrape(url), N.GC_COLLECTIONS.prom, generation="2")
    finally:
        gc.enable()
    assert before is not None and after == before + 2


def test_shutdown_takes_process_collectors_off_a_private_registry() -> None:
    reg = CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=reg, set_global=False)
    assert b"process_cpu_seconds_total " in generate_latest(reg)
    t.shutdown()
    assert b"process_cpu_seconds_total" not in generate_latest(reg)
    assert b"python_gc_collections_total" not in generate_latest(reg)


def test_registry_with_its_own_process_collector_keeps_one_copy() -> None:
    reg = CollectorRegistry()
    ProcessCollector(registry=reg)
    t = otelperf.configure(prometheus_port=0, registry=reg, set_global=False)
    try:
        _, _, body = get(t.metrics_url)
        lines = body.decode().splitlines()
        assert sum(line.startswith("process_cpu_seconds_total ") for line in lines) == 1
        # The GC and platform collectors it lacked were still added.
        assert sum(line.startswith("python_info{") for line in lines) == 1
    finally:
        t.shutdown()


def test_global_registry_is_not_given_a_second_copy() -> None:
    reg = prometheus_client.REGISTRY
    before = len(reg._collector_to_names)
    monitor = ResourceMonitor(MeterProvider(), reg)
    try:
        assert len(reg._collector_to_names) == before
        lines = generate_latest(reg).decode().splitlines()
        assert sum(line.startswith("process_cpu_seconds_total ") for line in lines) == 1
    finally:
        monitor.close()


# -- CPU sampling (exact, from given cpu_times readings) ------------------------------------------

Times = namedtuple("Times", "user nice system idle iowait guest guest_nice")


class Clock:
    """cpu_times() readings handed out in order (the last one repeats)."""

    def __init__(self, *readings: Times) -> None:
        self.readings = list(readings)

    def __call__(self) -> Times:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


def test_cpu_sampler_window_math() -> None:
    ncpu = psutil.cpu_count() or 1
    clock = Clock(
        Times(10, 0, 10, 70, 10, 0, 0),  # at start: busy 20 of 100 since boot
        Times(10, 0, 10, 70, 10, 0, 0),  # no time passed: keep the since-boot figure
        Times(40, 0, 20, 100, 20, 0, 0),  # +40 busy, +40 idle/iowait -> 0.5
        Times(40.001, 0, 20, 100, 20, 0, 0),  # window below min: repeat 0.5
        Times(70, 0, 20, 100, 20, 20, 0),  # +30 user of which 20 guest: +10 busy of +10 -> 1.0
    )
    s = CpuSampler(clock, min_window=1.0 / ncpu)  # min window: 1 CPU-second in total
    assert s.read() == pytest.approx(0.2)
    assert s.read() == pytest.approx(0.5)
    assert s.read() == pytest.approx(0.5)
    assert s.read() == pytest.approx(1.0)


def test_two_samplers_keep_their_own_window() -> None:
    now = [Times(0, 0, 0, 0, 0, 0, 0)]
    a = CpuSampler(lambda: now[0], min_window=0.0)  # the scrape's
    b = CpuSampler(lambda: now[0], min_window=0.0)  # /health's
    now[0] = Times(10, 0, 0, 0, 0, 0, 0)  # 10 busy
    assert a.read() == pytest.approx(1.0)
    now[0] = Times(10, 0, 0, 10, 0, 0, 0)  # then 10 idle
    assert a.read() == pytest.approx(0.0)
    assert b.read() == pytest.approx(0.5)  # its window spans both: a's reads did not move it


# -- filesystems ----------------------------------------------------------------------------------

Part = namedtuple("Part", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")


def test_filesystems_one_series_per_device_at_its_shortest_mount() -> None:
    parts = [
        Part("/dev/a", "/srv/bind", "ext4", "rw"),
        Part("/dev/a", "/", "ext4", "rw"),
        Part("/dev/b", "/data", "xfs", "rw"),
    ]
    usage = {"/": Usage(100, 30, 60, 0), "/data": Usage(10, 9, 1, 0)}
    probes = Probes(disk_partitions=lambda: parts, disk_usage=usage.__getitem__)
    assert filesystems(probes, boom) == {"/": 30 / 90, "/data": 0.9}


def test_filesystems_capped_and_unreadable_mounts_skipped() -> None:
    parts = [Part(f"/dev/d{i:02}", f"/m{i:02}", "ext4", "rw") for i in range(40)]
    failures: list[str] = []

    def usage(mountpoint: str) -> Usage:
        if mountpoint == "/m03":
            raise PermissionError(mountpoint)
        return Usage(10, 5, 5, 50)

    probes = Probes(disk_partitions=lambda: parts, disk_usage=usage)
    out = filesystems(probes, lambda key, exc: failures.append(key))
    assert len(out) == probe_module.MAX_MOUNTPOINTS
    assert "/m03" not in out and "/m32" in out and "/m33" not in out
    assert failures == ["probe"] + ["overflow"] * (40 - 1 - probe_module.MAX_MOUNTPOINTS)


# -- failures never reach the scrape --------------------------------------------------------------


def test_failing_probes_are_skipped_and_counted() -> None:
    s = Served(Probes(virtual_memory=boom, num_threads=boom, disk_partitions=boom))
    try:
        first = scrape(s.server.url)
        assert value(first, N.HOST_MEMORY_UTILIZATION.prom) is None
        assert value(first, N.PROC_THREADS.prom) is None
        assert matching(first, N.HOST_FILESYSTEM_UTILIZATION.prom) == {}
        cpu = value(first, N.HOST_CPU_UTILIZATION.prom)
        assert cpu is not None and 0.0 <= cpu <= 1.0  # the working probe still reports
        assert value(first, N.PROC_CPU.prom) is not None
        # The gauges run before the counter in one collection: this scrape counts its own three.
        assert value(first, ERRORS, component="resources") == 3
        assert value(scrape(s.server.url), ERRORS, component="resources") == 6
    finally:
        s.close()


def test_mount_overflow_counted_as_cardinality_overflow() -> None:
    parts = [Part(f"/dev/d{i:02}", f"/m{i:02}", "ext4", "rw") for i in range(35)]
    s = Served(Probes(disk_partitions=lambda: parts, disk_usage=lambda m: Usage(4, 1, 3, 25)))
    try:
        samples = scrape(s.server.url)
        assert len(matching(samples, N.HOST_FILESYSTEM_UTILIZATION.prom)) == 32
        assert value(samples, N.CARDINALITY_OVERFLOW.prom, component="resources") == 3
        assert value(samples, ERRORS, component="resources") is None
    finally:
        s.close()


class Broken(Collector):
    def collect(self) -> Iterator[Any]:
        raise RuntimeError("collector down")


def test_failing_collector_is_skipped_and_counted(served: Served) -> None:
    served.registry.register(resources._Guarded(Broken(), served.monitor.errors))
    samples = scrape(served.server.url)
    assert value(samples, N.PROC_CPU.prom) is not None
    assert value(samples, ERRORS, component="resources") == 1


def test_closed_monitor_reports_nothing(served: Served) -> None:
    served.monitor.close()
    samples = scrape(served.server.url)
    for metric in (*HOST, N.PROC_THREADS, N.PROC_CPU):
        assert matching(samples, metric.series[0]) == {}, metric.prom


# -- fork -----------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_readings_after_fork_are_the_childs(served: Served) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait) for _ in range(4)]
    for t in threads:
        t.start()
    parent_proc = probe_module.process()  # cached before the fork on purpose
    parent_threads = served.monitor.probes.num_threads()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: only the forking thread was copied
        try:
            # at-fork hooks (OTel SDK executors) may start a thread in the child, so the truth
            # is the child's own task list, read around the reading.
            tasks_before = len(os.listdir("/proc/self/task"))
            obs = list(served.monitor._observe_threads(None))  # type: ignore[arg-type]
            tasks_after = len(os.listdir("/proc/self/task"))
            doc = {
                "pid": os.getpid(),
                "process_pid": probe_module.process().pid,
                "threads": [o.value for o in obs],
                "tasks": [tasks_before, tasks_after],
                "rss": probe_module.current_rss(),
                "health": served.monitor.health()[1]["checks"]["process_memory"]["status"],
                "cpu": [o.value for o in served.monitor._observe_cpu(None)],  # type: ignore[arg-type]
            }
            os.write(write_fd, json.dumps(doc).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        doc = json.loads(f.read())
    os.waitpid(pid, 0)
    stop.set()
    for t in threads:
        t.join()
    assert doc["pid"] == pid != os.getpid()
    assert doc["process_pid"] == pid
    low, high = sorted(doc["tasks"])
    assert len(doc["threads"]) == 1 and low <= doc["threads"][0] <= high, doc
    assert parent_threads >= 6 > high  # main + server + 4 waiting threads; the child has fewer
    assert probe_module.process() is parent_proc  # the parent keeps its cached Process
    assert doc["rss"] > 0
    assert doc["health"] == "ok"  # /health's probes work in the child (no inherited locks)
    assert len(doc["cpu"]) == 1 and 0.0 <= doc["cpu"][0] <= 1.0


def test_current_rss_agrees_with_psutil_and_follows_allocation() -> None:
    before = probe_module.current_rss()
    assert abs(before - psutil.Process().memory_info().rss) <= 64 * 4096
    # Fresh pages from the kernel, each touched: a malloc'd bytearray may reuse pages an earlier
    # test freed but the allocator kept resident (glibc raises its mmap threshold after a big
    # free), and then RSS does not move at all.
    block = mmap.mmap(-1, 32 * 2**20)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    grown = probe_module.current_rss() - before
    block.close()
    assert 31 * 2**20 <= grown <= 40 * 2**20


def test_reconfigure_on_the_same_meter_provider_keeps_reporting() -> None:
    # The SDK drops a second instrument of the same name, so the second configure() must reuse
    # the first one's instruments; failure counts carry over (counters stay monotonic).
    reg = CollectorRegistry()
    mp = MeterProvider(metric_readers=[prometheus_reader(reg)])
    try:
        seen = []
        for round_ in range(2):
            t = otelperf.configure(prometheus_port=0, registry=reg, meter_provider=mp,
                                   set_global=False)  # fmt: skip
            try:
                assert t._resources is not None
                t._resources.probes = Probes(num_threads=boom)
                samples = scrape(t.metrics_url)
                assert value(samples, N.HOST_MEMORY_UTILIZATION.prom) is not None, round_
                assert value(samples, N.PROC_CPU.prom) is not None, round_
                seen.append(value(samples, ERRORS, component="resources"))
            finally:
                t.shutdown()
        assert seen == [1, 2]
    finally:
        mp.shutdown()
