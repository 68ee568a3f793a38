"""Pre-fork servers: real gunicorn and uvicorn processes share one /metrics and /health.

Each service is started once per module (fixtures), on free ports, with the app's port given
the way deployments give it (OTEL_EXPORTER_PROMETHEUS_PORT).  Requests go over sockets; the
scrapes must show exact sums over every worker, through recycles and a killed serving worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from otelperf.expose import workers
from otelperf.expose.workers import SharedService, service_dir
from tests.conftest import free_port, wait_for
from tests.scrape import get, matching, scrape, value

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
N = 60

pytestmark = pytest.mark.slow


class Service:
    """A server process group started by a test, with its app and metrics ports."""

    def __init__(self, argv: list[str], app_port: int, metrics_port: int, warmup: int = 0) -> None:
        self.app_port, self.metrics_port = app_port, metrics_port
        self.metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        self.dir = service_dir("127.0.0.1", metrics_port)
        env = dict(os.environ, OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
                   PYTHONPATH=str(ROOT), OTEL_TRACES_EXPORTER="none",
                   WORKERS_APP_WARMUP=str(warmup))  # fmt: skip
        # operations counted: requests answered (the readiness probe's included), plus the
        # app's import-time warm-up in the one process that imports it first
        self.sent = warmup
        self.log = open(f"/tmp/otelperf-test-workers-{metrics_port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: self.request() and get(self.metrics)[0] == 200, what="service ready")

    def request(self) -> int:
        # A worker reaching --max-requests drops connections it accepted but did not handle
        # (reset, nothing counted): send again; only answered requests count.
        for _ in range(5):
            try:
                url = f"http://127.0.0.1:{self.app_port}/work"
                with urllib.request.urlopen(url, timeout=10) as r:
                    pid = int(json.loads(r.read())["pid"])
            except (ConnectionResetError, urllib.error.URLError) as exc:
                error = exc
                continue
            self.sent += 1
            return pid
        raise error

    def requests(self, n: int) -> set[int]:
        return {self.request() for _ in range(n)}

    def health(self) -> dict[str, Any]:
        code, _, body = get(f"http://127.0.0.1:{self.metrics_port}/health")
        assert code == 200, body
        return dict(json.loads(body))

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def totals(url: str) -> tuple[float | None, float | None, float | None]:
    # While a recycled serving worker's successor takes the port (about a second), a scrape
    # fails, as a Prometheus scrape would: the next one answers.
    s = wait_for(lambda: scrape(url), timeout=10, what="a scrape")
    return (
        # the root is "handle" in Flask, FastAPI's server span ("GET /work") under FastAPI
        sum(matching(s, "otelperf_roots_total").values()) or None,
        value(s, "otelperf_operation_items_total", operation="handle"),
        value(s, "otelperf_operation_duration_seconds_count", operation="handle",
              outcome="success"),
    )  # fmt: skip


def exact(svc: Service) -> None:
    """Writers snapshot every second: poll until every worker's counts are in, then hold."""
    n = svc.sent
    want = (float(n), float(3 * n), float(n))
    wait_for(lambda: totals(svc.metrics) == want, what=f"sums {want}")
    time.sleep(workers.INTERVAL * 1.5)  # a later snapshot must not add anything
    assert totals(svc.metrics) == want


def gunicorn(app: str, *args: str, warmup: int = 0) -> Callable[[], Iterator[Service]]:
    def fixture() -> Iterator[Service]:
        port, mport = free_port(), free_port()
        svc = Service([str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", *args, app],
                      port, mport, warmup)  # fmt: skip
        yield svc
        svc.stop()

    return fixture


FLASK = "tests.apps.workers_flask:app"
FASTAPI = "tests.apps.workers_fastapi:app"
sync = pytest.fixture(scope="module")(gunicorn(FLASK, "-w", "3", "-k", "sync"))
gthread = pytest.fixture(scope="module")(
    gunicorn(FLASK, "-w", "2", "-k", "gthread", "--threads", "2", "--max-requests", "10")
)
uvicorn_worker = pytest.fixture(scope="module")(
    gunicorn(FASTAPI, "-w", "3", "-k", "uvicorn.workers.UvicornWorker")
)
# the master measures 5 operations at import, before it forks: counted once, not once per child
preload = pytest.fixture(scope="module")(gunicorn(FLASK, "-w", "3", "--preload", warmup=5))


def test_gunicorn_sync_one_endpoint_exact_sums_over_workers(sync: Service) -> None:
    pids = set()
    for _ in range(N // 10):
        pids |= sync.requests(10)
    exact(sync)
    s = scrape(sync.metrics)
    # one series per live worker for process readings; host readings and target_info once
    live = wait_for(lambda: len(sync.health()["workers"]["pids"]) == 3 and sync.health())
    procs = matching(s, "process_resident_memory_bytes")
    assert {dict(k[1])["worker"] for k in procs} == {str(p) for p in live["workers"]["pids"]}
    assert len(matching(s, "system_memory_utilization")) == 1
    assert len(matching(s, "target_info")) == 1
    assert live["status"] in ("healthy", "degraded")
    assert pids <= set(live["workers"]["pids"])


def test_gunicorn_gthread_recycled_workers_neither_lost_nor_reset(gthread: Service) -> None:
    seen: list[float] = []
    pids: set[int] = set()
    for _ in range(5):
        pids |= gthread.requests(10)
        roots = totals(gthread.metrics)[0] or 0.0
        seen.append(roots)
    assert seen == sorted(seen), f"not monotonic: {seen}"
    assert len(pids) > 2, "--max-requests 10 should have recycled workers"
    exact(gthread)
    # exited workers are folded into one file: the directory does not grow with recycles
    wait_for(lambda: len(list(gthread.dir.glob("[0-9]*.json"))) <= 2, what="folded snapshots")


def test_gunicorn_uvicorn_worker_fastapi(uvicorn_worker: Service) -> None:
    uvicorn_worker.requests(N)
    exact(uvicorn_worker)


def test_gunicorn_preload_children_count_their_own_work(preload: Service) -> None:
    pids = preload.requests(N)
    assert preload.proc.pid not in pids  # the master serves /metrics, the children requests
    exact(preload)
    assert preload.proc.pid in preload.health()["workers"]["pids"]


@pytest.fixture(scope="module")
def uvicorn_workers() -> Iterator[Service]:
    port, mport = free_port(), free_port()
    argv = [str(BIN / "uvicorn"), "--port", str(port), "--workers", "3", FASTAPI]
    svc = Service(argv, port, mport)
    yield svc
    svc.stop()


def test_uvicorn_workers(uvicorn_workers: Service) -> None:
    uvicorn_workers.requests(N)
    exact(uvicorn_workers)
    live = wait_for(lambda: len(uvicorn_workers.health()["workers"]["pids"]) == 3)
    assert live


@pytest.fixture(scope="module")
def takeover() -> Iterator[Service]:
    yield from gunicorn(FLASK, "-w", "2", "-k", "sync")()


def _server_pid(svc: Service) -> int:
    return int(json.loads((svc.dir / "server.json").read_text())["ident"][0])


def test_killed_serving_worker_another_takes_over(takeover: Service) -> None:
    takeover.requests(N)
    exact(takeover)
    victim = _server_pid(takeover)
    snap = next(takeover.dir.glob(f"{victim}-*.json"))
    # the serving process writes its snapshot every second while others are alive: wait for
    # one written after the last request, so SIGKILL loses nothing (docs/workers.md: at most
    # the last second is lost)
    since = time.time()
    wait_for(lambda: snap.stat().st_mtime > since, what="serving process's snapshot")
    os.kill(victim, signal.SIGKILL)
    new = wait_for(
        lambda: (get(takeover.metrics)[0] == 200 and _server_pid(takeover) != victim
                 and _server_pid(takeover)),
        timeout=10, what="takeover",
    )  # fmt: skip
    assert new != victim
    exact(takeover)
    takeover.requests(N)
    exact(takeover)


def test_port_held_by_another_program_is_still_a_clear_error() -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        code = "import otelperf; otelperf.configure(service_name='x')"
        env = dict(os.environ, OTEL_EXPORTER_PROMETHEUS_PORT=str(port), PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert out.returncode != 0
    assert f"cannot serve metrics on 127.0.0.1:{port}: Address already in use" in out.stderr


def _registry(n: float) -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("jobs", "Jobs.", registry=reg).inc(n)
    Gauge("busy", "In flight.", registry=reg).set(n)
    return reg


def _fake(path: Path, pid: int, start: int, parent: list[int] | None, n: float) -> None:
    fams = [
        {"name": "jobs", "type": "counter", "help": "Jobs.", "unit": "",
         "samples": [["jobs_total", {}, n]]},
        {"name": "busy", "type": "gauge", "help": "In flight.", "unit": "",
         "samples": [["busy", {}, n]]},
    ]  # fmt: skip
    (path / f"{pid}-{start}.json").write_text(json.dumps({"parent": parent, "families": fams}))


def test_fresh_start_is_clean_a_recycle_keeps_exited_counts(tmp_path: Path) -> None:
    port = free_port()
    d = service_dir("127.0.0.1", port, str(tmp_path))
    d.mkdir(parents=True)
    _fake(d, 4_000_000, 1, None, 7.0)  # a process of an earlier run: nobody alive
    svc = SharedService("127.0.0.1", port, _registry(1.0), root=str(tmp_path))
    try:
        assert not (d / "4000000-1.json").exists()
        assert scrape(svc.url)[("jobs_total", frozenset())] == 1.0
        # a worker that exited while its master (here: this process) still runs
        me = [os.getpid(), workers.start_of(os.getpid())]
        _fake(d, 4_000_001, 1, me, 5.0)
        s = scrape(svc.url)
        assert s[("jobs_total", frozenset())] == 6.0  # exited counters summed...
        assert s[("busy", frozenset())] == 1.0  # ...its gauges are not
        assert scrape(svc.url)[("jobs_total", frozenset())] == 6.0  # folded once
        assert not (d / "4000001-1.json").exists()
        assert (d / "exited.json").exists()
    finally:
        svc.close()


def test_health_covers_every_live_worker(tmp_path: Path) -> None:
    port = free_port()
    d = service_dir("127.0.0.1", port, str(tmp_path))
    svc = SharedService("127.0.0.1", port, _registry(1.0), memory_limit=10**9,
                        root=str(tmp_path))  # fmt: skip
    try:
        assert svc.health()[0] == 200
        # a live worker (here: this test's parent process) over the limit
        other = os.getppid()
        fams = [{"name": "process_resident_memory_bytes", "type": "gauge", "help": "", "unit": "",
                 "samples": [["process_resident_memory_bytes", {}, 2e9]]}]  # fmt: skip
        (d / f"{other}-{workers.start_of(other)}.json").write_text(json.dumps({"families": fams}))
        code, doc = svc.health()
        assert code == 503 and doc["status"] == "unhealthy"
        assert (
            f"worker {other} resident memory 2000000000 bytes > limit 1000000000 bytes"
            in (doc["reasons"])
        )
        assert doc["workers"] == {"live": 2, "pids": sorted([os.getpid(), other])}
        # its process series carry their worker's pid while several processes are alive
        s = scrape(svc.url)
        assert s[("process_resident_memory_bytes", frozenset({("worker", str(other))}))] == 2e9
    finally:
        svc.close()
