"""The report from an otelperf /metrics endpoint: a registry of this process, or a scrape.

Both are totals since the process started, parsed with prometheus_client's parser and mapped
onto :class:`Totals` by the same :data:`~otelperf.report.sources.series.SERIES` table the
Prometheus source queries.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from otelperf.config import Settings
from otelperf.errors import UserError
from otelperf.report.build import build_report
from otelperf.report.model import (
    RESOURCE_METRICS,
    OperationFigures,
    Source,
    TimelinePoint,
    Totals,
    resource_limits,
)
from otelperf.report.rendering import Report
from otelperf.report.sources.fetch import fetch
from otelperf.report.sources.series import BUCKETS, SERIES, START_TIME, Series
from otelperf.thresholds import Thresholds

# Sample name -> the row that maps it; resource gauges are kept whole, with all their labels.
_BY_SAMPLE: dict[str, Series] = {s.sample: s for s in (*SERIES, BUCKETS)}
_RESOURCES = frozenset(m.prom for m in RESOURCE_METRICS)


def totals_from_families(families: Iterable[Metric]) -> Totals:
    """Totals from metric families (``registry.collect()`` or a parsed scrape).

    All outcomes, error types and instances are summed; empty label values count as absent.
    ``seconds`` is the time since the process started (its ``process_start_time_seconds``),
    read now: the figures are totals over that time.
    """
    t = Totals()
    for fam in families:
        for s in fam.samples:
            v = float(s.value)
            if math.isnan(v):
                continue
            if s.name == START_TIME:
                t.started = v if t.started is None else min(t.started, v)
            if s.name in _RESOURCES:
                t.resources.setdefault(s.name, []).append((dict(s.labels), v))
                continue
            series = _BY_SAMPLE.get(s.name)
            if series is not None:
                series.add(t, s.labels, v)
    if t.started is not None:
        t.seconds = max(time.time() - t.started, 0.0)
    return t


def families_from_text(text: str) -> list[Metric]:
    """Parse a Prometheus text exposition (raises ValueError on content that is not one)."""
    return list(text_string_to_metric_families(text))


def operations(families: Iterable[Metric]) -> dict[str, OperationFigures]:
    """Per-operation figures from metric families (all outcomes and error types summed)."""
    return totals_from_families(families).operations


def from_registry(
    registry: Any,
    *,
    top: int | None = None,
    settings: Settings | None = None,
    thresholds: Thresholds | None = None,
    timeline: Sequence[TimelinePoint] | None = None,
) -> Report:
    """The report of the running process, from its prometheus_client registry; ``settings``
    give the health thresholds (default: the defaults), ``thresholds`` the rest (default:
    ``Thresholds()``; a rules config's ``.thresholds`` to judge like the alerts);
    ``timeline`` (``TimelineRecorder.points()``) the throughput over the run for the HTML page.

    >>> from_registry(telemetry.registry).to_text()  # doctest: +SKIP
    """
    limits = resource_limits(settings) if settings is not None else None
    totals = totals_from_families(registry.collect())
    source = Source("process", data_seconds=totals.seconds)
    return build_report(totals, source, top=top, resource_limits=limits, thresholds=thresholds,
                        timeline=timeline or ())  # fmt: skip


def fetch_text(url: str, what: str, timeout: float = 10.0) -> str:
    """GET ``url`` as text within ``timeout`` seconds overall and
    :data:`~otelperf.report.sources.fetch.MAX_BODY_BYTES`; any failure becomes a one-line
    UserError naming ``what``."""
    answer = fetch(url, what, timeout, headers={"Accept": "text/plain;version=0.0.4"})
    if not 200 <= answer.status < 300:
        raise UserError(f"{what} {url} answered HTTP {answer.status} {answer.reason}")
    try:
        return answer.body.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(
            f"{what} {url} did not return Prometheus metrics (not UTF-8 text)"
        ) from None


def totals_from_url(url: str, timeout: float = 10.0) -> Totals:
    """Scrape one otelperf /metrics endpoint: totals since that process started."""
    text = fetch_text(url, "--url", timeout)
    try:
        families = families_from_text(text)
    except ValueError as exc:
        first = str(exc).splitlines()[0][:80] if str(exc) else "unparsable"
        raise UserError(f"--url {url} did not return Prometheus metrics ({first})") from None
    totals = totals_from_families(families)
    if totals.empty():
        raise UserError(
            f"--url {url} shows no otelperf metrics (no operation, cache or API call recorded "
            "yet; is it an otelperf /metrics endpoint?)"
        )
    return totals
