"""docs/metrics.md against the name table and against a scrape of an instance that does it all.

The table in docs/metrics.md is rendered from otelperf/_names.py (ALL_METRICS); to refresh it
after changing the name table, print it and paste it between the markers::

    .venv/bin/python -m tests.test_metrics_reference
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from opentelemetry import trace
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import otelperf
from otelperf import _names as N
from otelperf.expose.probes import Probes
from tests.scrape import get

DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
BEGIN = "<!-- metrics-table:begin (generated from otelperf/_names.py; see tests/test_metrics_reference.py) -->"  # noqa: E501
END = "<!-- metrics-table:end -->"

_UNITS = {"s": "seconds", "By": "bytes", "1": "ratio 0..1", "": "—"}


def _unit(unit: str) -> str:
    if unit in _UNITS:
        return _UNITS[unit]
    return unit.strip("{}") + "s" if unit.startswith("{") else unit


def render_table() -> str:
    """The reference table, one row per metric of ALL_METRICS, in its order."""
    rows = ["| Metric | Type | Unit | Labels | Meaning |", "|---|---|---|---|---|"]
    for m in N.ALL_METRICS:
        labels = ", ".join(f"`{label}`" for label in m.labels) or "—"
        meaning = re.sub(r"(__\w+__)", r"`\1`", m.help)  # not bold in Markdown
        rows.append(f"| `{m.prom}` | {m.kind} | {_unit(m.unit)} | {labels} | {meaning} |")
    return "\n".join(rows) + "\n"


def documented_block() -> str:
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC} lacks the table markers"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def test_table_is_generated_from_the_name_table() -> None:
    expected = render_table()
    assert documented_block() == expected, (
        "docs/metrics.md is stale; replace the table between the markers with:\n\n" + expected
    )


def test_every_metric_named_in_the_prose_exists() -> None:
    """Metric names mentioned anywhere in docs/metrics.md are ones otelperf exposes."""
    text = DOC.read_text()
    known = {m.prom for m in N.ALL_METRICS}
    series = {s for m in N.ALL_METRICS for s in m.series}
    labels = {label for m in N.ALL_METRICS for label in m.labels}
    settings = {"process_memory_limit"}  # a configure() argument, not a metric
    mentioned = set(re.findall(r"`((?:otelperf|process|python|system)_[a-z_]+)", text))
    assert mentioned - known - series - labels - settings == set()
    assert len(mentioned & known) >= 20  # the pattern does find the names


# -- a running instance that exercises everything --------------------------------------------------


@pytest.fixture
def everything() -> Iterator[otelperf.Telemetry]:
    t = otelperf.configure(
        service_name="reference", prometheus_port=0, registry=CollectorRegistry(),
        set_global=False, max_operations=8, track_cpu=True,
    )  # fmt: skip
    try:
        yield t
    finally:
        t.shutdown()


def exercise(t: otelperf.Telemetry) -> None:
    from otelperf import api_call, record_api_call, record_cache

    # Operations: duration, items, bytes, errors, CPU, memory, nesting (critical path, self).
    with otelperf.measure("handle") as op:
        op.add_items(3)
        op.add_bytes(1024)
        with otelperf.measure("parse", track_memory=True):
            sum(range(10_000))
    with pytest.raises(KeyError), otelperf.measure("lookup"):
        raise KeyError("missing")
    # Past max_operations: __overflow__ and the overflow counter.
    for i in range(10):
        with otelperf.measure(f"op{i}"):
            pass
    # Caches and external APIs.
    record_cache("prices", hit=True)
    record_cache("prices", hit=False)
    with api_call("llm", model="small") as call:
        call.set_tokens(input=100, output=20)
        call.set_cost(0.5)
    record_api_call("geocoder", error=TimeoutError("slow"), duration_seconds=0.2)
    # A span ending after its root: dropped as "late".
    tracer = t.tracer_provider.get_tracer("reference")
    root = tracer.start_span("late_root")
    child = tracer.start_span("late_child", context=trace.set_span_in_context(root))
    root.end()
    child.end()
    # A filesystem probe that fails for real (statvfs of a missing path): skipped and counted.
    assert t._resources is not None
    real = psutil.disk_partitions(all=False)
    ghost = type(real[0])("/dev/otelperf-ghost", "/nonexistent/otelperf-ghost", "ext4", "rw")
    t._resources.probes = Probes(disk_partitions=lambda: [*real, ghost])


def scraped(url: str) -> dict[str, tuple[str, str, set[str]]]:
    """{metric name as documented: (type, help, label keys)} of one scrape."""
    status, _, body = get(url)
    assert status == 200
    out: dict[str, tuple[str, str, set[str]]] = {}
    for fam in text_string_to_metric_families(body.decode()):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        labels = {k for s in fam.samples for k in s.labels} - {"le"}
        out[name] = (fam.type, fam.documentation, labels)
    return out


def test_exposed_equals_documented(everything: otelperf.Telemetry) -> None:
    exercise(everything)
    assert everything.metrics_url is not None
    exposed = scraped(everything.metrics_url)
    documented = {m.prom: m for m in N.ALL_METRICS}
    assert set(exposed) - set(documented) == set(), "exposed but not in docs/metrics.md"
    assert set(documented) - set(exposed) == set(), "documented but never exposed"
    for name, (kind, help_text, labels) in exposed.items():
        m = documented[name]
        assert kind == m.kind, name
        assert labels <= set(m.labels), (name, labels)
        if m.otel:  # otelperf's own instruments carry the help text of the name table
            assert help_text == m.help, name


def test_exercise_reached_the_failure_and_overflow_paths(everything: otelperf.Telemetry) -> None:
    exercise(everything)
    assert everything.metrics_url is not None
    _, _, body = get(everything.metrics_url)
    text = body.decode()
    for line in (
        'otelperf_internal_errors_total{component="resources"} 1.0',
        'otelperf_processor_dropped_spans_total{reason="late"} 1.0',
        'otelperf_operation_items_total{operation="handle"} 3.0',
        'otelperf_api_tokens_total{api="llm",model="small",token_type="input"} 100.0',
        'otelperf_api_cost_usd_total{api="llm",model="small"} 0.5',
    ):
        assert line in text, line
    # handle, parse, lookup and op0..op4 fill the 8 names; op5..op9 overflow.
    assert 'otelperf_cardinality_overflow_total{component="operation"} 5.0' in text


if __name__ == "__main__":
    print(BEGIN)
    print(render_table(), end="")
    print(END)
