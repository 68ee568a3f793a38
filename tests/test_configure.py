"""configure(): settings, idempotency, providers, the HTTP endpoint and bad input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import CollectorRegistry

import otelperf
from otelperf import ConfigError, measure
from otelperf.config import resolve
from tests.scrape import get, scrape, value


def fresh(**kwargs: object) -> otelperf.Telemetry:
    return otelperf.configure(prometheus_port=0, registry=CollectorRegistry(), set_global=False,
                              **kwargs)  # type: ignore[arg-type]  # fmt: skip


def test_defaults_bind_loopback_9464_and_name_service():
    s = resolve(env={})
    assert (s.prometheus_host, s.prometheus_port) == ("127.0.0.1", 9464)
    assert s.service_name == "unknown_service"
    assert not s.disabled and s.max_operations == 1000 and len(s.duration_buckets) >= 14


def test_environment_variables_and_arguments_beat_them():
    env = {
        "OTEL_SERVICE_NAME": "from-env",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%20b",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "0.0.0.0",
        "OTEL_EXPORTER_PROMETHEUS_PORT": "9100",
        "OTEL_SDK_DISABLED": "TRUE",
        "OTELPERF_MAX_OPERATIONS": "50",
        "OTELPERF_DURATION_BUCKETS": "0.1, 1, 10",
    }
    s = resolve(env=env)
    assert s.service_name == "from-env"
    assert dict(s.resource_attributes) == {
        "deployment.environment": "prod", "team": "a b", "service.name": "from-env",
    }  # fmt: skip
    assert (s.prometheus_host, s.prometheus_port, s.disabled) == ("0.0.0.0", 9100, True)
    assert s.max_operations == 50 and s.duration_buckets == (0.1, 1.0, 10.0)
    s = resolve(service_name="arg", prometheus_host="::1", prometheus_port=0, disabled=False,
                max_operations=5, env=env)  # fmt: skip
    assert (s.service_name, s.prometheus_host, s.prometheus_port) == ("arg", "::1", 0)
    assert not s.disabled and s.max_operations == 5
    # service.name in OTEL_RESOURCE_ATTRIBUTES counts when OTEL_SERVICE_NAME is unset
    assert resolve(env={"OTEL_RESOURCE_ATTRIBUTES": "service.name=ra"}).service_name == "ra"


@pytest.mark.parametrize(
    ("kwargs", "env", "pattern"),
    [
        ({"prometheus_port": 70000}, {}, r"prometheus_port=70000"),
        ({"prometheus_port": -1}, {}, r"prometheus_port=-1"),
        ({"prometheus_port": "x"}, {}, r"prometheus_port='x'"),
        ({}, {"OTEL_EXPORTER_PROMETHEUS_PORT": "abc"}, r"OTEL_EXPORTER_PROMETHEUS_PORT='abc'"),
        ({}, {"OTEL_SDK_DISABLED": "maybe"}, r"OTEL_SDK_DISABLED='maybe'"),
        ({}, {"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, r"OTEL_RESOURCE_ATTRIBUTES: 'novalue'"),
        ({}, {"OTELPERF_MAX_OPERATIONS": "0"}, r"OTELPERF_MAX_OPERATIONS=0"),
        ({}, {"OTELPERF_DURATION_BUCKETS": "1,0.5"}, r"OTELPERF_DURATION_BUCKETS.*increasing"),
        ({"duration_buckets": []}, {}, r"duration_buckets is empty"),
        ({"service_name": ""}, {}, r"service_name=''"),
    ],
)
def test_bad_settings_name_argument_or_variable(kwargs, env, pattern):
    with pytest.raises(ConfigError, match=pattern):
        resolve(env=env, **kwargs)


def test_configure_rejects_bad_port_before_doing_anything():
    with pytest.raises(ConfigError, match="70000"):
        otelperf.configure(prometheus_port=70000, registry=CollectorRegistry(), set_global=False)
    assert otelperf.telemetry.current() is None


def test_port_in_use_names_host_and_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{port}"):
            otelperf.configure(prometheus_port=port, registry=CollectorRegistry(),
                               set_global=False)  # fmt: skip
    assert otelperf.telemetry.current() is None
    t = fresh()  # nothing half-configured was left behind
    t.shutdown()


def test_idempotent_same_arguments_error_on_different():
    reg = CollectorRegistry()
    t = otelperf.configure(service_name="a", prometheus_port=0, registry=reg, set_global=False)
    try:
        assert otelperf.configure(service_name="a", prometheus_port=0, registry=reg,
                                  set_global=False) is t  # fmt: skip
        with pytest.raises(ConfigError, match=r"service_name: 'a' -> 'b'.*shutdown"):
            otelperf.configure(service_name="b", prometheus_port=0, registry=reg,
                               set_global=False)  # fmt: skip
    finally:
        t.shutdown()
        t.shutdown()  # twice is safe
    t2 = otelperf.configure(service_name="b", prometheus_port=0, registry=reg, set_global=False)
    t2.shutdown()


def test_metrics_url_target_info_and_formats():
    t = fresh(service_name="checkout", resource_attributes={"deployment.environment": "test"})
    url = t.metrics_url
    try:
        assert url is not None and url.startswith("http://127.0.0.1:")
        with measure("op"):
            pass
        s = scrape(t.metrics_url)
        info = [dict(k[1]) for k in s if k[0] == "target_info"]
        assert len(info) == 1
        assert info[0]["service_name"] == "checkout"
        assert info[0]["deployment_environment"] == "test"

        status, headers, body = get(t.metrics_url)
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert b"otelperf_operation_duration_seconds_bucket" in body
        status, headers, body = get(t.metrics_url, accept="application/openmetrics-text")
        assert status == 200
        assert headers["Content-Type"].startswith("application/openmetrics-text")
        assert body.endswith(b"# EOF\n")
    finally:
        t.shutdown()
    with pytest.raises(OSError):  # the server is really gone
        get(url)


def test_unknown_path_404_and_wrong_method_405():
    import urllib.request

    t = fresh()
    try:
        base = t.metrics_url.rsplit("/", 1)[0]  # type: ignore[union-attr]
        assert get(base + "/nope")[0] == 404
        assert get(base + "/")[0] == 404
        req = urllib.request.Request(t.metrics_url, data=b"x", method="POST")  # type: ignore[arg-type]
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 405 and err.value.headers["Allow"] == "GET, HEAD"
        req = urllib.request.Request(t.metrics_url, method="HEAD")  # type: ignore[arg-type]
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200 and resp.read() == b""
    finally:
        t.shutdown()


def test_ipv6_loopback_when_asked():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        t = fresh(prometheus_host="::1")
    except ConfigError as exc:
        pytest.skip(f"IPv6 loopback unavailable here: {exc}")
    try:
        assert t.metrics_url is not None and t.metrics_url.startswith("http://[::1]:")
        assert get(t.metrics_url)[0] == 200
    finally:
        t.shutdown()


def test_disabled_sdk_measures_nothing_and_serves_nothing():
    t = fresh(disabled=True)
    try:
        assert t.metrics_url is None and not t.enabled

        @measure("quiet")
        def quiet() -> int:
            return 5

        assert quiet() == 5
        with measure("quiet") as op:
            op.add_items(1)
    finally:
        t.shutdown()


def test_start_server_false_exposes_through_registry_only():
    reg = CollectorRegistry()
    t = otelperf.configure(prometheus_port=0, registry=reg, set_global=False, start_server=False)
    try:
        assert t.metrics_url is None
        with measure("op"):
            pass
        assert (
            reg.get_sample_value(
                "otelperf_operation_duration_seconds_count",
                {"operation": "op", "outcome": "success"},
            )
            == 1.0
        )
    finally:
        t.shutdown()


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELPERF"))}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env=full_env)  # fmt: skip


def test_global_providers_installed_when_application_has_none():
    r = _run(
        """
        import json, urllib.request
        from opentelemetry import trace, metrics
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.metrics import MeterProvider
        import otelperf
        t = otelperf.configure(prometheus_port=0)
        ok = isinstance(trace.get_tracer_provider(), TracerProvider)
        ok = ok and isinstance(metrics.get_meter_provider(), MeterProvider)
        with otelperf.measure("g"):
            pass
        body = urllib.request.urlopen(t.metrics_url).read().decode()
        t.shutdown()
        print(json.dumps({"ok": ok, "svc": 'service_name="svc-env"' in body,
                          "gc": "python_gc_objects_collected_total" in body,
                          "op": 'operation="g"' in body}))
    """,
        OTEL_SERVICE_NAME="svc-env",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"ok": True, "svc": True, "gc": True, "op": True}
    assert "Overriding" not in r.stderr


def test_attaches_to_application_providers_without_override_warning():
    r = _run("""
        import json, logging, urllib.request
        logging.basicConfig()
        import prometheus_client
        from opentelemetry import trace, metrics
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        import otelperf
        exp = InMemorySpanExporter()
        tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(exp))
        trace.set_tracer_provider(tp)
        metrics.set_meter_provider(MeterProvider(
            metric_readers=[otelperf.prometheus_reader(prometheus_client.REGISTRY)]))
        t = otelperf.configure(prometheus_port=0)
        with otelperf.measure("app"):
            pass
        body = urllib.request.urlopen(t.metrics_url).read().decode()
        print(json.dumps({"same": t.tracer_provider is tp,
                          "span": [s.name for s in exp.get_finished_spans()],
                          "metric": 'operation="app"' in body}))
        t.shutdown()
    """)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"same": True, "span": ["app"], "metric": True}
    assert "Overriding" not in r.stderr
    assert "PrometheusMetricReader" not in r.stderr  # it has one: no warning


def test_foreign_meter_provider_without_prometheus_reader_warns_once():
    r = _run("""
        import logging
        logging.basicConfig()
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        import otelperf
        metrics.set_meter_provider(MeterProvider())
        t = otelperf.configure(prometheus_port=0)
        with otelperf.measure("x"):
            pass
        t.shutdown()
        t = otelperf.configure(prometheus_port=0)
        t.shutdown()
    """)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("has no PrometheusMetricReader") == 1
    assert "otelperf.prometheus_reader" in r.stderr  # says what to do
    assert "Overriding" not in r.stderr


def test_default_registry_exposes_process_metrics_with_value():
    # configure() with the default registry: prometheus_client's process collector is there.
    r = _run("""
        import urllib.request, otelperf
        t = otelperf.configure(prometheus_port=0)
        body = urllib.request.urlopen(t.metrics_url).read().decode()
        t.shutdown()
        print("process_resident_memory_bytes" in body)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


def test_cpu_tracking_is_opt_in():
    t = fresh()
    try:
        with measure("plain"):
            pass
        s = scrape(t.metrics_url)  # type: ignore[arg-type]
        assert not [k for k in s if k[0] == "otelperf_operation_cpu_seconds_total"]
    finally:
        t.shutdown()
    assert resolve(env={"OTELPERF_TRACK_CPU": "true"}).track_cpu
    assert not resolve(env={}).track_cpu


def test_internal_value_of_fixture(telemetry):
    with measure("v"):
        pass
    assert value(scrape(telemetry.metrics_url), "otelperf_operation_duration_seconds_count",
                 operation="v", outcome="success") == 1.0  # fmt: skip


def test_reconfigure_on_the_applications_meter_provider_keeps_counting():
    # The SDK keeps the first instrument of a name and drops a later duplicate's callbacks: the
    # second pipeline must reuse the first one's instruments and be the one they read.
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    reg = CollectorRegistry()
    mp = MeterProvider(metric_readers=[otelperf.prometheus_reader(reg)])
    tp = TracerProvider()
    for round_ in (1, 2):
        t = otelperf.configure(prometheus_port=0, registry=reg, set_global=False,
                               tracer_provider=tp, meter_provider=mp)  # fmt: skip
        try:
            with measure("stage") as op:
                op.add_items(10 * round_)
            s = scrape(t.metrics_url)  # type: ignore[arg-type]
            # The histogram is cumulative on the provider; the items come from this pipeline.
            assert value(s, "otelperf_operation_duration_seconds_count", operation="stage",
                         outcome="success") == round_  # fmt: skip
            assert value(s, "otelperf_operation_items_total", operation="stage") == 10 * round_
        finally:
            t.shutdown()
