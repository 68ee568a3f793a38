"""Batch jobs: ``otelperf run`` and the exit report and push, against a real
prometheus-pushgateway and a real OTLP/HTTP receiver, in real subprocesses.

tests/apps/batch_job.py does known work: 3 "load" calls of 100 items, 7 "transform" calls of
which 2 fail; each test reads back exactly that.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, require_binary, wait_for

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
JOB = ROOT / "tests" / "apps" / "batch_job.py"
HOST = os.uname().nodename


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("prometheus-pushgateway")
    port = free_port()
    log = tmp_path_factory.mktemp("pushgateway") / "log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{url}/-/ready").startswith("OK"), what="the Pushgateway")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())


def pushed(gateway: str, job: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples the gateway holds for ``job``: (name, sorted labels) -> value; an empty
    label is no label, as for Prometheus (the gateway fills a family's label set)."""
    out = {}
    for family in text_string_to_metric_families(_get(f"{gateway}/metrics")):
        for s in family.samples:
            if s.labels.get("job") == job:
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if v != ""))
                out[(s.name, labels)] = s.value
    return out


def sample(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    want = tuple(sorted(labels.items()))
    return samples.get((name, want))


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), OTEL_EXPORTER_PROMETHEUS_PORT="0",
                    OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
                    OTEL_LOGS_EXPORTER="none")  # fmt: skip
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN / "otelperf"), "run", *args], capture_output=True, text=True,
        env=full_env, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


def assert_job_figures(samples: dict[Any, float], job: str) -> None:
    base = {"job": job, "instance": HOST}
    count = "otelperf_operation_duration_seconds_count"
    assert sample(samples, count, **base, operation="load", outcome="success") == 3
    assert sample(samples, count, **base, operation="transform", outcome="success") == 5
    assert sample(samples, count, **base, operation="transform", outcome="error",
                  error_type="ValueError") == 2  # fmt: skip
    assert sample(samples, "otelperf_operation_items_total", **base, operation="load") == 300


def test_run_pushes_the_final_metrics_and_reports(gateway: str, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = run("--push-gateway", gateway, "--job", "batch-ok", "--report", "json",
               "--report-file", str(report), "--", str(JOB), "ok")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "job argv=['ok'] mode=ok" in done.stdout
    assert_job_figures(pushed(gateway, "batch-ok"), "batch-ok")
    doc = json.loads(report.read_text())
    ops = {o["operation"]: o for o in doc["operations"]}
    assert (ops["load"]["calls"], ops["load"]["items"], ops["load"]["errors"]) == (3, 300, 0)
    assert (ops["transform"]["calls"], ops["transform"]["errors"]) == (7, 2)


def test_an_html_report_draws_throughput_over_the_run(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    done = run("--report", "html", "--report-file", str(page), "--", str(JOB), "ok")
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    # the recorder sampled at set-up and at the end: one line per operation that moved
    lines = re.findall(r'<polyline class="line" data-series="(\w+)" data-points="(\d+)"', html)
    assert {name for name, _ in lines} == {"load", "transform"}
    assert all(int(n) >= 2 for _, n in lines)
    assert "No timeline" not in html
    assert "http://" not in html and "https://" not in html  # viewable offline


def test_the_text_report_goes_to_stderr_by_default(tmp_path: Path) -> None:
    done = run("--", str(JOB), "ok")
    assert done.returncode == 0, done.stderr
    assert "otelperf report" in done.stderr and "otelperf report" not in done.stdout
    operations = done.stderr[done.stderr.index("\nOperations") :].split("\n\n")[0]
    rows = {line.split()[0]: line.split() for line in operations.splitlines()[3:]}
    assert rows["load"][1] == "3" and rows["transform"][1] == "7"
    assert "300" in rows["load"]  # the items column


def test_the_exit_status_is_the_programs(gateway: str) -> None:
    failed = run("--push-gateway", gateway, "--job", "batch-fail", "--report", "none", "--",
                 str(JOB), "fail")  # fmt: skip
    assert failed.returncode == 1
    # the traceback Python would print: the program's frames, none of otelperf's or runpy's
    trace = failed.stderr[failed.stderr.index("Traceback") :]
    assert "RuntimeError: the job broke" in trace
    assert "otelperf/run.py" not in trace and "runpy" not in trace
    assert_job_figures(pushed(gateway, "batch-fail"), "batch-fail")
    exited = run("--push-gateway", gateway, "--job", "batch-exit", "--report", "none", "--",
                 str(JOB), "exit3")  # fmt: skip
    assert exited.returncode == 3
    assert_job_figures(pushed(gateway, "batch-exit"), "batch-exit")


def _hang_then(sig: int, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OTEL_EXPORTER_PROMETHEUS_PORT="0",
               OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")  # fmt: skip
    out = tmp_path / "out"
    with open(out, "w") as f:
        proc = subprocess.Popen([str(BIN / "otelperf"), "run", *args, "--", str(JOB), "hang"],
                                stdout=f, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=ROOT)  # fmt: skip
        try:
            wait_for(lambda: "READY" in out.read_text(), what="the job to start waiting")
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_job_still_reports_and_pushes(gateway: str, tmp_path: Path, sig: int) -> None:
    job = f"batch-{signal.Signals(sig).name}"
    report = tmp_path / "report.json"
    done = _hang_then(sig, ["--push-gateway", gateway, "--job", job, "--report", "json",
                            "--report-file", str(report)], tmp_path)  # fmt: skip
    assert done.returncode == 128 + sig, done.stderr
    samples = pushed(gateway, job)
    assert_job_figures(samples, job)
    # the stage the signal interrupted ended and is counted, not as an error
    count = "otelperf_operation_duration_seconds_count"
    assert sample(samples, count, job=job, instance=HOST, operation="wait",
                  outcome="success") == 1  # fmt: skip
    ops = {o["operation"]: o for o in json.loads(report.read_text())["operations"]}
    assert ops["wait"]["calls"] == 1 and ops["wait"]["errors"] == 0


def test_a_gateway_that_is_down_leaves_the_status_alone() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    for mode, status in (("ok", 0), ("exit3", 3)):
        done = run("--push-gateway", down, "--report", "none", "--", str(JOB), mode)
        assert done.returncode == status
        assert (f"otelperf: pushing to the Pushgateway {down} failed after 3 attempts: "
                "[Errno 111] Connection refused") in done.stderr  # fmt: skip
    assert time.monotonic() - started < 30  # retried briefly: two back-offs of 0.25 s and 1 s


def test_a_module_and_an_interpreter_prefix_run_too(gateway: str) -> None:
    done = run("--push-gateway", gateway, "--job", "batch-module", "--report", "none", "--",
               "-m", "tests.apps.batch_job", "ok", "--flag")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "job argv=['ok', '--flag'] mode=ok" in done.stdout
    assert_job_figures(pushed(gateway, "batch-module"), "batch-module")
    done = run("--report", "none", "--", "python3", str(JOB), "exit3")
    assert done.returncode == 3, done.stderr


def test_the_service_name_is_the_default_job(gateway: str) -> None:
    done = run("--push-gateway", gateway, "--report", "none", "--", str(JOB), "ok")
    assert done.returncode == 0, done.stderr
    assert_job_figures(pushed(gateway, "batch_job"), "batch_job")
    done = run("--push-gateway", gateway, "--report", "none", "--", str(JOB), "ok",
               env={"OTEL_SERVICE_NAME": "nightly-etl"})  # fmt: skip
    assert_job_figures(pushed(gateway, "nightly-etl"), "nightly-etl")


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "otelperf run: error: no program to run: give the program after --"),
        (["--", "missing.py"], "otelperf run: error: no such script: 'missing.py'"),
        (["--", "ls"], "otelperf run: error: 'ls' (/usr/bin/ls) is not a Python program"),
        (["--", "-m", "no_such_module_x"], "error: no module named 'no_such_module_x'"),
        (["--", "-c", "print(1)"], "error: '-c' is not supported"),
        (["--report", "html", "--", "x.py"], "error: --report html writes a page: give "
         "--report-file PATH"),
        (["--report-file", "/no/such/dir/r.json", "--", "x.py"],
         "error: --report-file '/no/such/dir/r.json': no such directory '/no/such/dir'"),
        (["--push-gateway", "ftp://x", "--", "x.py"],
         "error: --push-gateway='ftp://x' is not an http:// or https:// URL with a host"),
        (["--job", " ", "--", "x.py"], "error: --job must be a non-empty name"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_errors(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("print('ran')\n")
    done = subprocess.run([str(BIN / "otelperf"), "run", *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr and "ran" not in done.stdout


def test_a_bad_variable_is_named(tmp_path: Path) -> None:
    done = run("--", str(JOB), "ok", env={"OTELPERF_TRACE_TTL_SECONDS": "-1"})
    assert done.returncode == 2
    assert "otelperf run: error: OTELPERF_TRACE_TTL_SECONDS" in done.stderr
    assert "mode=ok" not in done.stdout


# -- from code: configure(push_gateway_url=...) and the OTELPERF_* variables -----------------

CODE = """
import sys, otelperf
otelperf.configure(service_name="coded", prometheus_port=0{args})
with otelperf.measure("step") as op:
    op.add_items(42)
print("READY", flush=True)
if sys.argv[1:] == ["hang"]:
    import time
    with otelperf.measure("wait"):
        time.sleep(120)
"""


def test_configure_pushes_and_reports_at_exit(gateway: str, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code = CODE.format(args=f", push_gateway_url={gateway!r}, push_job='coded-args', "
                            f"report_at_exit='json', report_file={str(report)!r}")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
    assert done.returncode == 0, done.stderr
    samples = pushed(gateway, "coded-args")
    assert sample(samples, "otelperf_operation_items_total", job="coded-args",
                  instance=HOST, operation="step") == 42  # fmt: skip
    ops = {o["operation"]: o for o in json.loads(report.read_text())["operations"]}
    assert ops["step"]["items"] == 42


def test_the_variables_do_the_same_and_sigterm_still_pushes(gateway: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OTELPERF_PUSHGATEWAY_URL=gateway,
               OTELPERF_PUSHGATEWAY_JOB="coded-env", OTELPERF_REPORT="text")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", CODE.format(args=""), "hang"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(0.2)  # into the measured wait
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    samples = pushed(gateway, "coded-env")
    assert sample(samples, "otelperf_operation_items_total", job="coded-env", instance=HOST,
                  operation="step") == 42  # fmt: skip
    assert "otelperf report" in err and "step" in err and "wait" in err


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("OTELPERF_REPORT", "xml", "OTELPERF_REPORT='xml' must be one of text, json, html, none"),
        ("OTELPERF_REPORT", "html", "an HTML report at exit needs a file: set report_file= or "
         "OTELPERF_REPORT_FILE"),
        ("OTELPERF_PUSHGATEWAY_URL", "localhost:9091", "OTELPERF_PUSHGATEWAY_URL="
         "'localhost:9091' is not an http:// or https:// URL with a host"),
    ],
)  # fmt: skip
def test_bad_batch_settings_are_named(variable: str, value: str, message: str) -> None:
    from otelperf.config import resolve
    from otelperf.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        resolve(env={variable: value})
    assert str(err.value) == message


# -- OTLP: the final flush exports --------------------------------------------------------------


class _OtlpReceiver(BaseHTTPRequestHandler):
    requests: ClassVar[list[ExportMetricsServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v1/metrics":
            req = ExportMetricsServiceRequest()
            req.ParseFromString(body)
            _OtlpReceiver.requests.append(req)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def otlp() -> Iterator[str]:
    _OtlpReceiver.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtlpReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def otlp_sums(name: str) -> dict[str, float]:
    """The last exported value of counter ``name`` per operation attribute."""
    out: dict[str, float] = {}
    for req in _OtlpReceiver.requests:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        for p in m.sum.data_points:
                            attrs = {a.key: a.value.string_value for a in p.attributes}
                            out[attrs.get("operation", "")] = p.as_double or p.as_int
    return out


def test_an_otlp_exporter_gets_the_final_metrics(otlp: str) -> None:
    # the export interval is an hour: only the final flush can have sent them
    done = run("--report", "none", "--", str(JOB), "ok", env={
        "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp, "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
    })  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert otlp_sums("otelperf.operation.items") == {"load": 300}


def test_shutdown_flushes_the_applications_own_provider(otlp: str) -> None:
    code = f"""
import otelperf
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint="{otlp}/v1/metrics"),
                                       export_interval_millis=3_600_000)
mp = MeterProvider(metric_readers=[reader])
t = otelperf.configure(prometheus_port=0, meter_provider=mp, set_global=False)
with otelperf.measure("own") as op:
    op.add_items(7)
t.shutdown()
import os; os._exit(0)  # no atexit: only shutdown() can have flushed
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert otlp_sums("otelperf.operation.items") == {"own": 7}


def test_the_final_flush_does_not_duplicate_the_next_scrape() -> None:
    import prometheus_client

    import otelperf

    registry = prometheus_client.CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=registry, set_global=False,
                           start_server=False)  # fmt: skip
    try:
        with otelperf.measure("once") as op:
            op.add_items(1)
        t.finish()
        lines = [
            line for line in prometheus_client.generate_latest(registry).decode().splitlines()
            if line and not line.startswith("#")
        ]  # fmt: skip
        assert len(lines) == len(set(lines))
        assert 'otelperf_operation_items_total{operation="once"} 1.0' in lines
    finally:
        t.shutdown()


# -- the push itself: retries, credentials, the gateway's refusal --------------------------------


class _Refusing(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, str | None]]] = []

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Refusing.seen.append(("PUT", self.path, self.headers.get("Authorization")))
        body = b"pushed metrics are invalid or inconsistent with existing metrics"
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_refused_push_is_tried_three_times_and_names_the_reason() -> None:
    import base64

    from prometheus_client import CollectorRegistry, Counter

    from otelperf.expose.push import PushFailed, push_registry

    _Refusing.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    registry = CollectorRegistry()
    Counter("rows", "rows", registry=registry).inc(5)
    pauses: list[float] = []
    try:
        with pytest.raises(PushFailed) as err:
            push_registry(f"http://etl:s3cret@127.0.0.1:{port}", registry, job="etl/nightly",
                          instance="host-1", sleep=pauses.append)  # fmt: skip
    finally:
        server.shutdown()
    assert str(err.value) == (
        f"pushing to the Pushgateway http://127.0.0.1:{port} failed after 3 attempts: HTTP 400 "
        "Bad Request pushed metrics are invalid or inconsistent with existing metrics"
    )
    assert "s3cret" not in str(err.value)
    assert pauses == [0.25, 1.0]
    auth = "Basic " + base64.b64encode(b"etl:s3cret").decode()
    # a job with "/" goes base64-encoded in the path (the Pushgateway's job@base64 form)
    path = "/metrics/job@base64/ZXRsL25pZ2h0bHk=/instance/host-1"
    assert _Refusing.seen == [("PUT", path, auth)] * 3


def test_basic_auth_from_the_url_on_a_real_gateway(tmp_path: Path) -> None:
    import bcrypt
    from prometheus_client import CollectorRegistry, Counter

    from otelperf.expose.push import PushFailed, push_registry

    binary = require_binary("prometheus-pushgateway")
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  etl: {hashed}\n")
    port = free_port()
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}",
                             f"--web.config.file={tmp_path / 'web.yml'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: _status(f"http://127.0.0.1:{port}/-/ready") == 401, what="the gateway")
        registry = CollectorRegistry()
        Counter("rows", "rows", registry=registry).inc(5)
        push_registry(f"http://etl:s3cret@127.0.0.1:{port}", registry, job="auth", instance="h")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
        req.add_header("Authorization", "Basic ZXRsOnMzY3JldA==")
        with urllib.request.urlopen(req, timeout=5) as r:
            text = r.read().decode()
        assert 'rows_total{instance="h",job="auth"} 5' in text
        with pytest.raises(PushFailed) as err:
            push_registry(f"http://etl:wrong@127.0.0.1:{port}", registry, job="auth",
                          instance="h", sleep=lambda s: None)  # fmt: skip
        assert "HTTP 401 Unauthorized" in str(err.value) and "wrong" not in str(err.value)
    finally:
        proc.terminate()
        proc.wait(10)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_without_opentelemetry_instrumentation_the_programs_configure_attaches(
    gateway: str, tmp_path: Path
) -> None:
    # opentelemetry-instrumentation is optional: without it, `otelperf run` calls configure()
    # from the variables, and the program's own configure() (other arguments) attaches to that
    # set-up instead of raising, as under zero-code start.
    (tmp_path / "job.py").write_text(
        "import otelperf\n"
        "t = otelperf.configure(service_name='in-code', prometheus_port=0)\n"
        "with otelperf.measure('step') as op:\n"
        "    op.add_items(9)\n"
        "import sys\n"
        "print('loaded:', sys.modules.get('opentelemetry.instrumentation.auto_instrumentation')"
        " is not None)\n"
    )
    launcher = (
        "import sys; sys.modules['opentelemetry.instrumentation.auto_instrumentation'] = None\n"
        "from otelperf.cli import main; sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", launcher, "run", "--push-gateway", gateway, "--job", "no-otel-instr",
         "--report", "none", "--", str(tmp_path / "job.py")],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT), OTEL_EXPORTER_PROMETHEUS_PORT="0"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "loaded: False" in done.stdout
    samples = pushed(gateway, "no-otel-instr")
    assert sample(samples, "otelperf_operation_items_total", job="no-otel-instr",
                  instance=HOST, operation="step") == 9  # fmt: skip


@pytest.mark.parametrize(
    "env, want",
    [
        ({"OTELPERF_REPORT_FILE": "run.json"}, ("json", "run.json")),
        ({"OTELPERF_REPORT_FILE": "run.HTML"}, ("html", "run.HTML")),
        ({"OTELPERF_REPORT_FILE": "run.log"}, ("text", "run.log")),
        ({"OTELPERF_REPORT_FILE": "run.json", "OTELPERF_REPORT": "text"}, ("text", "run.json")),
        ({"OTELPERF_REPORT": "json"}, ("json", None)),
        ({}, ("none", None)),
    ],
)  # fmt: skip
def test_a_report_file_alone_asks_for_a_report_in_its_format(
    env: dict[str, str], want: tuple[str, str | None]
) -> None:
    from otelperf.config import resolve

    s = resolve(env=env)
    assert (s.report_at_exit, s.report_file) == want
    assert s.finishes_at_exit is (want[0] != "none")


def test_run_takes_the_report_format_from_the_files_name(tmp_path: Path) -> None:
    report = tmp_path / "nightly.json"
    done = run("--report-file", str(report), "--", str(JOB), "ok")
    assert done.returncode == 0, done.stderr
    ops = {o["operation"]: o for o in json.loads(report.read_text())["operations"]}
    assert (ops["load"]["calls"], ops["load"]["items"]) == (3, 300)
    assert "otelperf report" not in done.stderr  # the file, not stderr
