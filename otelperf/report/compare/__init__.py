"""``otelperf compare``: did it get worse, with statistics (docs/compare.md).

:mod:`~otelperf.report.compare.stats` holds the tests (pure, stdlib ``math``),
:mod:`~otelperf.report.compare.model` the figures, verdicts and JSON/CSV contract,
:mod:`~otelperf.report.compare.inputs` reads report files and Prometheus windows,
:mod:`~otelperf.report.compare.text` draws the table and
:mod:`~otelperf.report.compare.command` is the command.
"""

from __future__ import annotations

from otelperf.report.compare.model import (
    Comparison,
    Histogram,
    OperationComparison,
    Settings,
    Side,
    compare,
)

__all__ = ["Comparison", "Histogram", "OperationComparison", "Settings", "Side", "compare"]
