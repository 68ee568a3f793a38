"""Reading otelperf's metrics back: the performance report, in the terminal and as data.

The same code serves ``otelperf report``, ``Telemetry.report()`` and the demo's live summary.
Data flows one way through the subpackage:

* :mod:`~otelperf.report.sources` collect :class:`Totals` from a registry, a scraped
  ``/metrics`` page or a Prometheus window (one metric-to-field mapping for all three);
* :mod:`~otelperf.report.build` turns totals into a :class:`Report` (pure), judged by
  :mod:`~otelperf.report.findings` against :class:`otelperf.thresholds.Thresholds`;
* :mod:`~otelperf.report.model` holds the data and its JSON and CSV contract (docs/report.md),
  :mod:`~otelperf.report.rendering` draws it as text and :mod:`~otelperf.report.html` as one
  self-contained page (charts from :mod:`~otelperf.report.svg`);
* :mod:`~otelperf.report.timeline` records throughput over a run (:class:`TimelineRecorder`);
* :mod:`~otelperf.report.command` is the ``otelperf report`` command.

>>> report = from_registry(telemetry.registry)  # doctest: +SKIP
>>> print(report.to_text())                     # doctest: +SKIP
"""

from __future__ import annotations

from otelperf.report.build import build_report
from otelperf.report.model import (
    CSV_TABLES,
    DEFAULT_RESOURCE_LIMITS,
    RESOURCE_METRICS,
    ApiRow,
    BottleneckRow,
    CacheRow,
    EndpointRow,
    Finding,
    OperationFigures,
    OperationRow,
    ReportData,
    Source,
    Totals,
    histogram_quantile,
    resource_limits,
)
from otelperf.report.rendering import LiveSummary, Report
from otelperf.report.sources.endpoint import (
    families_from_text,
    from_registry,
    operations,
    totals_from_families,
    totals_from_url,
)
from otelperf.report.sources.prometheus import timeline_from_prometheus, totals_from_prometheus
from otelperf.report.timeline import TimelinePoint, TimelineRecorder

__all__ = [
    "CSV_TABLES",
    "DEFAULT_RESOURCE_LIMITS",
    "RESOURCE_METRICS",
    "ApiRow",
    "BottleneckRow",
    "CacheRow",
    "EndpointRow",
    "Finding",
    "LiveSummary",
    "OperationFigures",
    "OperationRow",
    "Report",
    "ReportData",
    "Source",
    "TimelinePoint",
    "TimelineRecorder",
    "Totals",
    "build_report",
    "families_from_text",
    "from_registry",
    "histogram_quantile",
    "operations",
    "resource_limits",
    "timeline_from_prometheus",
    "totals_from_families",
    "totals_from_prometheus",
    "totals_from_url",
]
