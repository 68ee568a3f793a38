"""Shared fixtures: fresh otelperf pipelines and the rule for integration binaries."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import otelperf

INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager prometheus-pushgateway"


def require_binary(name: str) -> str:
    """Path of a system binary the test needs; fails under CI=true, skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found on PATH (install it: {INSTALL_HINT})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def telemetry() -> Iterator[otelperf.Telemetry]:
    """A configured otelperf on a private registry and private providers, serving on a free port,
    with the opt-in per-operation CPU tracking on (everything on)."""
    t = otelperf.configure(
        service_name="test-service",
        prometheus_port=0,
        registry=CollectorRegistry(),
        set_global=False,
        track_cpu=True,
    )
    try:
        yield t
    finally:
        t.shutdown()


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy (an OSError counts as not yet);
    fail naming ``what`` and the last answer when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")
