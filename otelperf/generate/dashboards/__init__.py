"""Grafana dashboards generated with grafanalib from the name table.

Four dashboards (Overview, Bottlenecks, Cache & external APIs, Resources), one module each,
are built by pure functions: :func:`build_dashboards` returns grafanalib ``Dashboard``
objects, :func:`render` returns ``{file name: JSON text}``.  Only ``otelperf dashboards``
(:mod:`otelperf.generate.dashboards.command`) writes files, and ``--check`` compares instead,
so CI notices when the committed JSON is stale.

Every metric a panel queries comes from :mod:`otelperf._names` (a test parses the queries and
checks that), and the recording rules of ``otelperf rules`` are used where they make a query
cheaper: the top-10 tables and the projected cost read a pre-computed series instead of
running ``histogram_quantile`` or a one-hour ``rate`` over every bucket on each refresh.
Recording rules keep ``job`` but not ``instance``, so those panels say "all instances".

>>> sorted(build_dashboards())
['bottlenecks.json', 'cache-apis.json', 'overview.json', 'resources.json']
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from otelperf.generate.dashboards.bottlenecks import bottlenecks
from otelperf.generate.dashboards.cache_apis import cache_apis
from otelperf.generate.dashboards.overview import overview
from otelperf.generate.dashboards.panels import DATASOURCE_REF, DATASOURCE_VAR
from otelperf.generate.dashboards.resources import resources
from otelperf.generate.dashboards.settings import DASHBOARDS, DashboardSettings

__all__ = [
    "DASHBOARDS",
    "DATASOURCE_REF",
    "DATASOURCE_VAR",
    "DEFAULT_OUT",
    "FAULT_ONLY_PANELS",
    "MEASURE_ONLY_PANELS",
    "DashboardSettings",
    "bottlenecks",
    "build_dashboards",
    "cache_apis",
    "dashboard_json",
    "overview",
    "render",
    "resources",
]

DEFAULT_OUT = "dashboards"

# Dashboard key -> its builder; to add a dashboard, add a module, a DASHBOARDS row and this.
BUILDERS: dict[str, Callable[[DashboardSettings], g.Dashboard]] = {
    "overview": overview,
    "bottlenecks": bottlenecks,
    "cache-apis": cache_apis,
    "resources": resources,
}

# Panels that show only faults: empty on a healthy service, so the query proof test cannot
# expect data from them (it still checks that their queries parse).
FAULT_ONLY_PANELS: frozenset[tuple[str, str]] = frozenset(
    {
        ("overview", "Firing otelperf alerts"),
        ("resources", "Dropped spans / s"),
        ("resources", "Cardinality overflow / s"),
        ("resources", "Internal errors / s"),
    }
)

# Panels only measure() feeds, with the reason: empty for a service whose spans all come from
# OpenTelemetry's instrumentations (every other panel shows their spans too).  The query proof
# on an auto-instrumented FastAPI app expects exactly these to stay empty, so the list cannot
# grow silently, and docs/dashboards.md repeats it.
MEASURE_ONLY_PANELS: dict[tuple[str, str], str] = {
    ("overview", "In flight"): "the in-flight gauge counts running measure() calls; the span "
    "processor sees another instrumentation's span only when it ends",
    ("overview", "Items / s"): "items are counted with op.add_items() on a measure() call; "
    "instrumentations count none",
    ("overview", "Bytes / s"): "bytes are counted with op.add_bytes() on a measure() call; "
    "instrumentations count none",
    ("bottlenecks", "CPU-bound vs waiting"): "thread CPU time is read around synchronous "
    "measure() calls when CPU tracking is on (OTELPERF_TRACK_CPU=true); a span carries no CPU "
    "time",
}


def build_dashboards(settings: DashboardSettings | None = None) -> dict[str, g.Dashboard]:
    """All dashboards, by file name.

    >>> build_dashboards(DashboardSettings(uid_prefix="shop"))["resources.json"].uid
    'shop-resources'
    """
    s = (settings or DashboardSettings()).validate()
    return {file: BUILDERS[key](s) for key, _, file in DASHBOARDS}


def dashboard_json(dashboard: g.Dashboard) -> dict[str, Any]:
    """A grafanalib Dashboard as plain JSON data (what Grafana imports).

    >>> dashboard_json(build_dashboards()["overview.json"])["uid"]
    'otelperf-overview'
    """
    data: dict[str, Any] = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    return data


def render(settings: DashboardSettings | None = None) -> dict[str, str]:
    """``{file name: JSON text}``: sorted keys, two-space indent, trailing newline.

    >>> render()["overview.json"].endswith("}\\n")
    True
    """
    return {
        file: json.dumps(dashboard_json(d), sort_keys=True, indent=2) + "\n"
        for file, d in build_dashboards(settings).items()
    }
