"""Zero-code start: ``opentelemetry-instrument uvicorn app:app`` with otelperf installed.

Each OTEL_METRICS_EXPORTER value runs the FastAPI app as a subprocess; the app also calls
configure() in its code (it must attach: no warning, no second server), except in the pure
zero-code run.  An OTLP run posts to a local HTTP receiver the test holds; console prints.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.conftest import free_port, wait_for
from tests.scrape import get, matching, scrape, value
from tests.test_workers import BIN, ROOT

pytestmark = pytest.mark.slow


class _Receiver(BaseHTTPRequestHandler):
    posts: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Receiver.posts.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def otlp_receiver() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()


class Run:
    def __init__(self, log: Path, metrics: str, sent: int) -> None:
        self.log, self.metrics, self.sent = log, metrics, sent

    def text(self) -> str:
        return self.log.read_text()


def run_app(
    tmp: Path, exporter: str, configure_in_code: bool, extra: dict[str, str] | None = None,
    gunicorn_workers: int = 0,
) -> Iterator[Run]:  # fmt: skip
    port, mport = free_port(), free_port()
    env = dict(
        os.environ, PYTHONPATH=str(ROOT), OTEL_SERVICE_NAME="zero-code",
        OTEL_METRICS_EXPORTER=exporter, OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(mport), OTEL_METRIC_EXPORT_INTERVAL="300",
        WORKERS_APP_CONFIGURE="1" if configure_in_code else "0", **(extra or {}),
    )  # fmt: skip
    log = tmp / f"{exporter}-{configure_in_code}.log"
    cmd = [str(BIN / "uvicorn"), "--port", str(port), "tests.apps.workers_fastapi:app"]
    if gunicorn_workers:
        cmd = [str(BIN / "gunicorn"), "-w", str(gunicorn_workers), "-b", f"127.0.0.1:{port}",
               "tests.apps.workers_flask:app"]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "opentelemetry-instrument"), *cmd], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/work"
        wait_for(lambda: get(url)[0] == 200, what=f"app ({log.read_text()[-2000:]})")
        for _ in range(9):
            assert get(url)[0] == 200
        yield Run(log, f"http://127.0.0.1:{mport}/metrics", 10)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def assert_otelperf_served(run: Run, n: int | None = None) -> dict[Any, float]:
    n = n or run.sent
    want = (float(n), float(3 * n))

    def figures() -> tuple[float, float | None]:
        s = scrape(run.metrics)
        roots = sum(matching(s, "otelperf_roots_total").values())
        return roots, value(s, "otelperf_operation_items_total", operation="handle")

    wait_for(lambda: figures() == want, what=f"otelperf sums {want}")
    s = scrape(run.metrics)
    assert matching(s, "target_info", service_name="zero-code")
    code, _, body = get(run.metrics.replace("/metrics", "/health"))
    assert code == 200 and b'"status"' in body
    text = run.text()
    # configure() in code attached to the zero-code set-up: no warning, no second server
    assert "otelperf:" not in text, text
    assert "Address already in use" not in text, text
    # opentelemetry-distro's configurator is installed too: skipped for otelperf's, silently
    assert "Configuration of" not in text, text
    return s


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zero-code")


def test_prometheus_exporter_shares_otelperfs_one_server(tmp: Path) -> None:
    for run in run_app(tmp, "prometheus", configure_in_code=True):
        s = assert_otelperf_served(run)
        # the OTel instrumentation's HTTP metrics come out of the same (otelperf's) server
        assert sum(matching(s, "http_server_duration_milliseconds_count").values()) == 10


def test_pure_zero_code_no_configure_in_the_app(tmp: Path) -> None:
    for run in run_app(tmp, "prometheus", configure_in_code=False):
        assert_otelperf_served(run)


def test_otlp_exporter_keeps_exporting_beside_metrics(tmp: Path, otlp_receiver: int) -> None:
    extra = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
             "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_receiver}"}  # fmt: skip
    for run in run_app(tmp, "otlp", configure_in_code=True, extra=extra):
        assert_otelperf_served(run)
        wait_for(
            lambda: any(p == "/v1/metrics" and b"otelperf.operation.items" in b
                        for p, b in list(_Receiver.posts)),
            what="an OTLP metrics export with otelperf's metrics",
        )  # fmt: skip


def test_otlp_exporter_to_a_closed_port_breaks_nothing(tmp: Path) -> None:
    extra = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
             "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"}  # fmt: skip
    for run in run_app(tmp, "otlp", configure_in_code=True, extra=extra):
        assert_otelperf_served(run)


def test_console_exporter_keeps_printing(tmp: Path) -> None:
    for run in run_app(tmp, "console", configure_in_code=True):
        assert_otelperf_served(run)
        printed = run.text
        wait_for(lambda t=printed: "otelperf.operation.items" in t(), what="console export")


def test_none_exporter(tmp: Path) -> None:
    for run in run_app(tmp, "none", configure_in_code=True):
        assert_otelperf_served(run)


def test_gunicorn_under_opentelemetry_instrument(tmp: Path) -> None:
    # sitecustomize configures otelperf in the master before it forks its workers: like
    # --preload, the children count their own work and it reaches the master's /metrics.
    for run in run_app(tmp, "prometheus", configure_in_code=False, gunicorn_workers=2):
        assert_otelperf_served(run)


def test_another_configurator_with_its_prometheus_server(tmp: Path) -> None:
    # opentelemetry-distro's configurator chosen explicitly: its Prometheus exporter serves the
    # registry; otelperf attaches without a second server and the app's configure() does not
    # crash on the port (it did before: both servers read OTEL_EXPORTER_PROMETHEUS_PORT).
    extra = {
        "OTEL_PYTHON_CONFIGURATOR": "configurator",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
    }
    for run in run_app(tmp, "prometheus", configure_in_code=True, extra=extra):

        def items(r: Run = run) -> float:
            # the SDK's reader adds otel_scope_* labels: sum over them
            return sum(matching(scrape(r.metrics), "otelperf_operation_items_total").values())

        wait_for(lambda: items() == 30.0, what="otelperf's metrics on the SDK's server")
        s = scrape(run.metrics)
        assert sum(matching(s, "otelperf_roots_total").values()) == 10
        assert "Address already in use" not in run.text()
        # a skip against otelperf is still told
        assert ("Configuration of otelperf not loaded because configurator is set by "
                "OTEL_PYTHON_CONFIGURATOR") in run.text()  # fmt: skip
