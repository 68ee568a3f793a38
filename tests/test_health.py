"""/health: the pure judgement with exact documents, and the endpoint over a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import otelperf
from otelperf.config import resolve
from otelperf.errors import ConfigError
from otelperf.expose.health import HealthThresholds, Readings, evaluate
from otelperf.expose.probes import Probes, filesystems
from otelperf.parsing import parse_bytes
from tests.scrape import get

T = HealthThresholds()  # 0.8 CPU, 0.8 memory, 0.9 disk, no process limit


def test_healthy_document_exact() -> None:
    code, doc = evaluate(Readings(0.25, 0.5, {"/": 0.5, "/data": 0.125}, 1000), T)
    assert code == 200
    assert doc == {
        "status": "healthy",
        "reasons": [],
        "checks": {
            "cpu": {"status": "ok", "utilization": 0.25, "threshold": 0.8},
            "memory": {"status": "ok", "utilization": 0.5, "threshold": 0.8},
            "disk": {"status": "ok", "threshold": 0.9, "mountpoints": {"/": 0.5, "/data": 0.125}},
            "process_memory": {"status": "ok", "rss_bytes": 1000, "limit_bytes": None},
        },
    }


def test_at_threshold_is_still_ok() -> None:
    code, doc = evaluate(Readings(0.8, 0.8, {"/": 0.9}, 100), HealthThresholds(
        process_memory_limit=100))  # fmt: skip
    assert (code, doc["status"], doc["reasons"]) == (200, "healthy", [])


@pytest.mark.parametrize(
    ("readings", "check", "reason"),
    [
        (Readings(0.81, 0.1, {}, 1), "cpu", "host CPU utilization 0.810 > 0.800"),
        (Readings(0.1, 0.95, {}, 1), "memory", "host memory utilization 0.950 > 0.800"),
        (Readings(0.1, 0.1, {"/": 0.2, "/var": 0.97}, 1), "disk",
         "filesystem /var utilization 0.970 > 0.900"),
    ],
)  # fmt: skip
def test_each_host_threshold_degrades_with_its_reason(
    readings: Readings, check: str, reason: str
) -> None:
    code, doc = evaluate(readings, T)
    assert code == 200
    assert doc["status"] == "degraded"
    assert doc["reasons"] == [reason]
    assert {k: v["status"] for k, v in doc["checks"].items()} == {
        "cpu": "ok", "memory": "ok", "disk": "ok", "process_memory": "ok", check: "degraded",
    }  # fmt: skip


def test_process_memory_over_limit_is_unhealthy_503_with_all_reasons() -> None:
    t = HealthThresholds(process_memory_limit=512 * 2**20)
    code, doc = evaluate(Readings(0.99, 0.1, {"/": 0.1}, 600 * 2**20), t)
    assert code == 503
    assert doc["status"] == "unhealthy"
    assert doc["checks"]["process_memory"] == {
        "status": "unhealthy", "rss_bytes": 629145600, "limit_bytes": 536870912,
    }  # fmt: skip
    assert doc["reasons"] == [
        "host CPU utilization 0.990 > 0.800",
        "process resident memory 629145600 bytes > limit 536870912 bytes",
    ]


def test_failed_probe_is_degraded_and_says_why() -> None:
    r = Readings(None, 0.1, {"/": 0.1}, None, errors={
        "cpu": "OSError: probe down", "process_memory": "NoSuchProcess: gone"})  # fmt: skip
    code, doc = evaluate(r, T)
    assert (code, doc["status"]) == (200, "degraded")
    assert doc["checks"]["cpu"] == {"status": "error", "error": "OSError: probe down",
                                    "threshold": 0.8}  # fmt: skip
    assert doc["checks"]["process_memory"]["status"] == "error"
    assert doc["reasons"] == [
        "host CPU utilization unavailable: OSError: probe down",
        "process memory unavailable: NoSuchProcess: gone",
    ]


# -- the endpoint ---------------------------------------------------------------------------------


def health_url(t: otelperf.Telemetry) -> str:
    assert t.metrics_url is not None
    return t.metrics_url.removesuffix("/metrics") + "/health"


@pytest.fixture
def lenient() -> Iterator[otelperf.Telemetry]:
    """Thresholds no reading can exceed (ratios are at most 1): always healthy."""
    t = otelperf.configure(
        prometheus_port=0, registry=CollectorRegistry(), set_global=False,
        health_cpu_threshold=1.0, health_memory_threshold=1.0, health_disk_threshold=1.0,
    )  # fmt: skip
    yield t
    t.shutdown()


def test_get_health_healthy(lenient: otelperf.Telemetry) -> None:
    status, headers, body = get(health_url(lenient))
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["status"] == "healthy" and doc["reasons"] == []
    assert set(doc["checks"]) == {"cpu", "memory", "disk", "process_memory"}
    assert 0.0 <= doc["checks"]["cpu"]["utilization"] <= 1.0
    assert 0.0 < doc["checks"]["memory"]["utilization"] < 1.0
    assert set(doc["checks"]["disk"]["mountpoints"]) == set(
        filesystems(Probes(), lambda key, exc: None)
    )
    assert doc["checks"]["process_memory"]["rss_bytes"] > 1_000_000


def test_disk_threshold_zero_degrades_every_used_filesystem() -> None:
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                           health_cpu_threshold=1.0, health_memory_threshold=1.0,
                           health_disk_threshold=0.0)  # fmt: skip
    try:
        status, _, body = get(health_url(t))
    finally:
        t.shutdown()
    doc = json.loads(body)
    used = {m for m, v in doc["checks"]["disk"]["mountpoints"].items() if v > 0}
    assert used, doc  # the test host has at least one filesystem with data on it
    assert status == 200 and doc["status"] == "degraded"
    assert doc["checks"]["disk"]["status"] == "degraded"
    assert [r.split()[1] for r in doc["reasons"]] == sorted(used)


def test_process_memory_limit_from_environment_gives_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELPERF_PROCESS_MEMORY_LIMIT", "1Mi")
    t = otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False)
    try:
        status, _, body = get(health_url(t))
        head = _request(health_url(t), "HEAD")
    finally:
        t.shutdown()
    doc = json.loads(body)
    assert status == 503
    assert doc["status"] == "unhealthy"
    assert doc["checks"]["process_memory"]["limit_bytes"] == 1048576
    assert head == (503, b"")


def _request(url: str, method: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_head_404_405(lenient: otelperf.Telemetry) -> None:
    url = health_url(lenient)
    assert _request(url, "HEAD") == (200, b"")
    assert _request(url, "POST")[0] == 405
    assert _request(url, "DELETE")[0] == 405
    assert _request(url.replace("/health", "/healthz"), "GET")[0] == 404
    assert _request(url.replace("/health", "/"), "GET")[0] == 404
    assert get(url.replace("/health", "/metrics"))[0] == 200


# -- settings -------------------------------------------------------------------------------------


def test_threshold_defaults_and_environment() -> None:
    s = resolve(env={})
    assert (s.health_cpu_threshold, s.health_memory_threshold, s.health_disk_threshold,
            s.process_memory_limit) == (0.8, 0.8, 0.9, None)  # fmt: skip
    s = resolve(env={"OTELPERF_HEALTH_CPU_THRESHOLD": "0.5", "OTELPERF_HEALTH_MEMORY_THRESHOLD":
                     "0.6", "OTELPERF_HEALTH_DISK_THRESHOLD": "0.7",
                     "OTELPERF_PROCESS_MEMORY_LIMIT": "2G"})  # fmt: skip
    assert (s.health_cpu_threshold, s.health_memory_threshold, s.health_disk_threshold,
            s.process_memory_limit) == (0.5, 0.6, 0.7, 2_000_000_000)  # fmt: skip
    # Arguments beat variables.
    env = {"OTELPERF_HEALTH_CPU_THRESHOLD": "0.5", "OTELPERF_PROCESS_MEMORY_LIMIT": "1"}
    s = resolve(health_cpu_threshold=0.9, process_memory_limit=1024, env=env)
    assert (s.health_cpu_threshold, s.process_memory_limit) == (0.9, 1024)


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({}, {"OTELPERF_HEALTH_CPU_THRESHOLD": "80"},
         "OTELPERF_HEALTH_CPU_THRESHOLD='80' is out of range"),
        ({}, {"OTELPERF_HEALTH_DISK_THRESHOLD": "full"},
         "OTELPERF_HEALTH_DISK_THRESHOLD='full' is not a number"),
        ({"health_memory_threshold": -0.1}, {}, "health_memory_threshold=-0.1 is out of range"),
        ({}, {"OTELPERF_PROCESS_MEMORY_LIMIT": "lots"},
         "OTELPERF_PROCESS_MEMORY_LIMIT='lots' is not a size in bytes"),
        ({"process_memory_limit": 0}, {}, "process_memory_limit=0 is out of range"),
        ({"process_memory_limit": "5Q"}, {}, "process_memory_limit='5Q' is not a size"),
    ],
)  # fmt: skip
def test_bad_settings_name_their_source(
    kwargs: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(env=env, **kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(
    ("text", "n"),
    [("1", 1), ("1024", 1024), ("2k", 2000), ("2Ki", 2048), ("512Mi", 536870912),
     ("1.5GiB", 1610612736), ("3 G", 3_000_000_000), ("7b", 7)],
)  # fmt: skip
def test_parse_bytes(text: str, n: int) -> None:
    assert parse_bytes(text, "x") == n


def test_telemetry_health_without_a_server() -> None:
    t = otelperf.configure(registry=CollectorRegistry(), set_global=False, start_server=False,
                           process_memory_limit=1)  # fmt: skip
    try:
        assert t.metrics_url is None
        code, doc = t.health()
        assert (code, doc["status"]) == (503, "unhealthy")
        assert doc["checks"]["process_memory"]["limit_bytes"] == 1
    finally:
        t.shutdown()


def test_telemetry_health_when_disabled() -> None:
    t = otelperf.configure(registry=CollectorRegistry(), set_global=False, disabled=True)
    try:
        code, doc = t.health()
        assert (code, doc["status"], doc["checks"]) == (200, "healthy", {})
    finally:
        t.shutdown()


def test_a_bug_in_the_check_still_answers_and_is_counted() -> None:
    from opentelemetry.sdk.metrics import MeterProvider

    from otelperf.expose.resources import ResourceMonitor

    bad_rss = Probes(rss=lambda: "lots")  # type: ignore[arg-type,return-value]
    monitor = ResourceMonitor(MeterProvider(), CollectorRegistry(),
                              HealthThresholds(process_memory_limit=1), bad_rss)  # fmt: skip
    try:
        code, doc = monitor.health()
        assert (code, doc["status"], doc["checks"]) == (200, "degraded", {})
        assert doc["reasons"] == [
            "health check failed: TypeError: '>' not supported between instances of 'str' and 'int'"
        ]
        assert monitor.errors.get("resources") == 1
    finally:
        monitor.close()
