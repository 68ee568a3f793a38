"""The demo service and the otelperf command line, run as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.scrape import matching, scrape, value

H = "otelperf_operation_duration_seconds"


def otelperf(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otelperf.cli", *args], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_demo_serves_nested_operations_and_prints_a_live_summary():
    proc = subprocess.Popen(
        [sys.executable, "-m", "otelperf.cli", "demo", "--port", "0", "--duration", "6",
         "--summary-interval", "1", "--error-rate", "0.5", "--slow", "download"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OTEL_SERVICE_NAME": "demo-under-test"},
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()
    url = re.search(r"serving (http://\S+/metrics)", first)
    assert url, first
    time.sleep(3)
    s = scrape(url.group(1))
    ops = {dict(k[1])["operation"] for k in matching(s, H + "_count")}
    assert {"handle_order", "download", "parse", "enrich", "fetch_price", "store"} <= ops
    assert value(s, H + "_count", operation="store", outcome="error", error_type="StoreError")
    assert value(s, "otelperf_operation_items_total", operation="parse")
    assert value(s, "otelperf_operation_bytes_total", operation="download")
    assert value(s, "otelperf_operation_cpu_seconds_total", operation="parse")
    assert any(k[0] == "target_info" and ("service_name", "demo-under-test") in k[1] for k in s)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "p95 ms" in out and "handle_order" in out and "stopped after" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--port", "70000"], "--port=70000"),
        (["demo", "--error-rate", "2"], "--error-rate='2'"),
        (["demo", "--slow", "nosuchstage"], "--slow='nosuchstage'"),
        (["demo", "--duration", "soon"], "--duration='soon'"),
    ],
)
def test_demo_bad_arguments_one_line_error_exit_2(args, message):
    r = otelperf(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_demo_port_in_use_is_a_clear_error():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        r = otelperf("demo", "--port", str(port), "--duration", "1")
    assert r.returncode == 2
    assert f"127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr


def test_demo_sigint_stops_cleanly():
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "otelperf.cli", "demo", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped after" in out and "Traceback" not in err
