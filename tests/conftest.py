"""Shared fixtures: fresh otelperf pipelines and the rule for integration binaries."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import otelperf

INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager"


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
