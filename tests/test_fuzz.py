"""Arbitrary names, values and configuration through the public API (hypothesis).

Whatever goes in, otelperf either accepts it or refuses it with the documented ValueError /
TypeError / ConfigError naming the argument, and /metrics keeps answering 200 over HTTP.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import otelperf
from otelperf.config import resolve
from otelperf.errors import ConfigError
from tests.scrape import get

# Names: any text (control characters included), lone surrogates, bytes decoded the way
# os.fsdecode() decodes a file name, and huge ones.
NAMES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=5),
    st.binary(max_size=30).map(os.fsdecode),
    st.builds(lambda c, n: c * n, st.sampled_from("x\udcff\x00\n\"\\é"),
              st.integers(min_value=1000, max_value=100_000)),
    st.integers(), st.none(),
)  # fmt: skip
VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, 10**5000, 2**63, 2**63 - 1, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(), st.text(max_size=10),
)  # fmt: skip
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])  # fmt: skip


@pytest.fixture(scope="module")
def tel() -> Iterator[otelperf.Telemetry]:
    t = otelperf.configure(service_name="fuzz", prometheus_port=0, registry=CollectorRegistry(),
                           set_global=False)  # fmt: skip
    try:
        yield t
    finally:
        t.shutdown()


def _refused_naming(exc: BaseException, *args: str) -> None:
    """A documented refusal that names one of ``args``."""
    assert isinstance(exc, (ValueError, TypeError, ConfigError)), repr(exc)
    text = str(exc)
    assert any(a in text for a in args), text
    assert len(text) < 2000  # a huge value is not copied into the message


def _attempt(call: Any, *args: str) -> None:
    try:
        call()
    except (ValueError, TypeError, ConfigError) as exc:
        _refused_naming(exc, *args)


def _scrape_ok(t: otelperf.Telemetry) -> None:
    status, _, body = get(t.metrics_url)  # type: ignore[arg-type]
    assert status == 200, body[:200]
    assert len(body) < 5_000_000


@FUZZ
@given(name=NAMES, other=NAMES, value=VALUES, value2=VALUES)
def test_api_never_raises_anything_undocumented(
    tel: otelperf.Telemetry, name: Any, other: Any, value: Any, value2: Any
) -> None:
    def measured() -> None:
        with otelperf.measure(name) as op:
            _attempt(lambda: op.add_items(value), "add_items")
            _attempt(lambda: op.add_bytes(value2), "add_bytes")

    _attempt(measured, "measure")

    def failing() -> None:
        with otelperf.measure(name):
            raise KeyError(other)

    try:
        failing()
    except KeyError:
        pass
    except (ValueError, TypeError) as exc:
        _refused_naming(exc, "measure")

    _attempt(lambda: otelperf.record_cache(name, hit=value), "record_cache")
    _attempt(lambda: otelperf.record_api_call(
        name, model=other, input_tokens=value, output_tokens=value2, cost_usd=None,
        duration_seconds=None if isinstance(value2, str) else value2,
    ), "record_api_call")  # fmt: skip

    def api() -> None:
        with otelperf.api_call(name, model=other) as call:
            _attempt(lambda: call.set_tokens(input=value, output=value2), "set_tokens")
            _attempt(lambda: call.set_cost(value), "set_cost")

    _attempt(api, "api_call")
    _attempt(
        lambda: otelperf.set_api_price(
            name, other, input_per_million_usd=value, output_per_million_usd=value2
        ),
        "set_api_price",
    )

    async def cancelled() -> None:
        async with otelperf.measure("fuzz-cancelled"):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
    _scrape_ok(tel)


CONFIG_ARGS = (
    "service_name", "prometheus_host", "prometheus_port", "disabled", "max_operations",
    "duration_buckets", "track_cpu", "health_cpu_threshold", "process_memory_limit",
    "ignore_spans", "max_traces_in_flight", "max_spans_per_trace", "trace_ttl_seconds",
    "start_server",
)  # fmt: skip
CONFIG_VARS = (
    "OTEL_SERVICE_NAME", "OTEL_EXPORTER_PROMETHEUS_PORT", "OTEL_SDK_DISABLED",
    "OTELPERF_MAX_OPERATIONS", "OTELPERF_DURATION_BUCKETS", "OTELPERF_TRACK_CPU",
    "OTELPERF_PROCESS_MEMORY_LIMIT", "OTELPERF_IGNORE_SPANS", "OTELPERF_MAX_TRACES_IN_FLIGHT",
    "OTELPERF_MAX_SPANS_PER_TRACE", "OTELPERF_TRACE_TTL_SECONDS",
)  # fmt: skip


@FUZZ
@given(arg=st.sampled_from(CONFIG_ARGS), value=st.one_of(VALUES, NAMES, st.lists(VALUES)),
       var=st.sampled_from(CONFIG_VARS), raw=st.text(max_size=30))  # fmt: skip
def test_configuration_is_accepted_or_refused_naming_the_source(
    arg: str, value: Any, var: str, raw: str
) -> None:
    _attempt(lambda: resolve(env={}, **{arg: value}), arg)
    _attempt(lambda: resolve(env={var: raw}), var)
