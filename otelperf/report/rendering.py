"""The report drawn: terminal text (tabulate tables that fit the width, colours on request)
and the demo's live summary.  The JSON and CSV contract is the model's own
(:class:`~otelperf.report.model.ReportData`); :class:`Report` adds ``to_text``.

tabulate (already a dependency) is used rather than rich: it is one small pure-Python module
with no dependencies of its own, it right-aligns numbers and measures ANSI-coloured cells by
their visible width, and it leaves terminal detection to us (colours only on a TTY, NO_COLOR
honoured) so the output is byte-for-byte predictable in tests and pipes.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any

from tabulate import DataRow, TableFormat, tabulate

from otelperf.report.html import render_html
from otelperf.report.model import ReportData

TEXT_WIDTH = 80

_RESET = "\033[0m"
_RED = "\033[31m"
_YELLOW = "\033[33m"
_BOLD = "\033[1m"
_DIM = "\033[2m"

Paint = Callable[[str, str], str]


def _painter(color: bool) -> Paint:
    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color and text else text

    return paint


def fmt_count(x: float) -> str:
    """Counts compactly: 999, 1.2k, 3.4M (fractions from Prometheus windows keep one digit)."""
    if x < 1000:
        return str(int(x)) if float(x).is_integer() else f"{x:.1f}"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.1f}{suffix}"
    return str(x)  # pragma: no cover


def fmt_bytes(x: float) -> str:
    if x <= 0:
        return "-"
    for div, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if x >= div:
            return f"{x / div:.1f}{suffix}"
    return f"{int(x)}B"


def fmt_ms(seconds: float | None) -> str:
    """Milliseconds with three significant figures; seconds past 10 s."""
    if seconds is None:
        return "-"
    ms = seconds * 1000
    if ms >= 10000:
        return f"{seconds:.1f}s"
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def fmt_rate(x: float | None) -> str:
    """Calls per second with three significant figures (``0.533``, ``12.5``, ``1.2k``)."""
    if x is None:
        return "-"
    if x >= 1000:
        return fmt_count(x)
    return f"{x:.3g}" if x >= 0.001 or x == 0 else "<0.001"


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _shorten(name: str, width: int) -> str:
    # Keep the end: dotted operation names differ in their last part (module.qualname).
    if len(name) <= width:
        return name
    return "…" + name[-(width - 1) :] if width > 1 else name[:width]


def _visible_width(text: str) -> int:
    return max((len(re.sub(r"\033\[[0-9;]*m", "", line)) for line in text.splitlines()), default=0)


_MIN_NAME = 12  # narrowest a name column gets ("…" and 11 characters)


def fit_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    width: int,
    colalign: Sequence[str],
    names_in: Sequence[int] = (0,),
) -> str:
    """Render with tabulate, shortening the name columns (``names_in``: the first by default)
    to a common limit until the table fits ``width``."""
    cells: list[list[Any]] = [list(r) for r in rows]
    names = [[str(r[i]) for i in names_in] for r in cells]
    limit = max((len(n) for ns in names for n in ns), default=0)
    start = limit
    best_effort = ""
    for compact in (False, True):
        limit = start
        while True:
            for r, ns in zip(cells, names, strict=True):
                for i, n in zip(names_in, ns, strict=True):
                    r[i] = _shorten(n, limit)
            text = _table(headers, cells, colalign, compact)
            if _visible_width(text) <= width:
                return text
            if limit <= _MIN_NAME:
                break  # as narrow as names can sensibly get
            limit = max(_MIN_NAME, limit - max(1, _visible_width(text) - width))
        best_effort = best_effort or text
    return best_effort  # fits neither way: the usual layout with the narrowest names


# tabulate's "simple" layout without its header padding (two spaces past every header): the
# header is a data row and the rule under it is drawn here, so a column is as wide as its
# widest cell or header.  Used only when a table does not fit otherwise.
_COMPACT = TableFormat(lineabove=None, linebelowheader=None, linebetweenrows=None,
                       linebelow=None, headerrow=DataRow("", "  ", ""),
                       datarow=DataRow("", "  ", ""), padding=0,
                       with_header_hide=None)  # fmt: skip


def _table(headers: Sequence[str], cells: list[list[Any]], colalign: Sequence[str],
           compact: bool) -> str:  # fmt: skip
    if not compact:
        return str(tabulate(cells, headers=list(headers), tablefmt="simple", colalign=colalign,
                            disable_numparse=True))  # fmt: skip
    rows = [list(headers), *cells]
    widths = [max(_visible_width(str(r[i])) for r in rows) for i in range(len(headers))]
    lines = tabulate(rows, tablefmt=_COMPACT, colalign=colalign, disable_numparse=True)
    first, _, rest = lines.partition("\n")
    return "\n".join([first, "  ".join("-" * w for w in widths), rest])


def render(report: ReportData, *, color: bool, width: int) -> str:
    """The whole report as text (see Report.to_text)."""
    paint = _painter(color)
    # Figures are painted where the findings flagged them, so the colours follow the same
    # thresholds as the warnings (a rules config's included) without knowing them here.
    flagged = {(w.kind, w.subject) for w in report.warnings}
    parts = [wrap(paint("otelperf report", _BOLD) + " — " + report.source.describe(), width, "")]

    def section(title: str, body: str) -> None:
        parts.append("")
        parts.append(paint(title, _BOLD))
        parts.append(body)

    if report.endpoints:
        rows = []
        for ep in report.endpoints:
            err = fmt_pct(ep.error_ratio) if ep.calls else "-"
            if ("error_ratio", ep.operation) in flagged:
                err = paint(err, _RED)
            p95 = fmt_ms(ep.p95_seconds)
            if ("slow_p95", ep.operation) in flagged:
                p95 = paint(p95, _RED)
            rows.append([
                ep.operation, fmt_count(ep.calls), fmt_rate(ep.rate_per_second), err,
                fmt_ms(ep.p50_seconds), p95, fmt_ms(ep.p99_seconds),
                ep.top_bottleneck or "-", fmt_pct(ep.top_bottleneck_share),
            ])  # fmt: skip
        # Headers kept short: with names at their narrowest (12) the table is exactly 80 wide.
        section("Endpoints (longest total first; rate in calls/s, times in ms)", fit_table(
            ["endpoint", "calls", "rate", "err %", "p50", "p95", "p99", "bottleneck", "%"],
            rows, width, ["left"] + ["right"] * 6 + ["left", "right"], names_in=(0, 7),
        ))  # fmt: skip

    if report.operations:
        rows = []
        for r in report.operations:
            err = fmt_pct(r.error_ratio) if r.calls else "-"
            if ("error_ratio", r.operation) in flagged:
                err = paint(err, _RED)
            rows.append([
                r.operation, fmt_count(r.calls), err, fmt_ms(r.p50_seconds),
                fmt_ms(r.p95_seconds), fmt_ms(r.p99_seconds),
                fmt_count(r.items) if r.items else "-", fmt_rate(r.items_per_second),
                fmt_bytes(r.bytes), fmt_pct(r.cpu_ratio),
            ])  # fmt: skip
        section("Operations (slowest total first; times in ms)", fit_table(
            ["operation", "calls", "err %", "p50", "p95", "p99", "items", "items/s", "bytes",
             "cpu %"], rows, width, ["left"] + ["right"] * 9,
        ))  # fmt: skip
    else:
        section("Operations", "  (none recorded)")

    if report.bottlenecks:
        rows = []
        for b in report.bottlenecks:
            share = fmt_pct(b.share)
            if ("bottleneck", f"{b.root_operation} > {b.operation}") in flagged:
                share = paint(share, _YELLOW)
            rows.append([f"{b.root_operation} > {b.operation}", share, fmt_pct(b.self_share)])
        section("Where the time goes (% of each root's duration)", fit_table(
            ["root > operation", "critical %", "self %"], rows, width, ["left", "right", "right"],
        ))  # fmt: skip

    if report.caches:
        rows = []
        for c in report.caches:
            ratio = fmt_pct(c.hit_ratio)
            if ("cache_hit_ratio", c.cache) in flagged:
                ratio = paint(ratio, _RED)
            rows.append([c.cache, fmt_count(c.hits), fmt_count(c.misses), ratio])
        section("Caches", fit_table(["cache", "hits", "misses", "hit %"], rows, width,
                                    ["left", "right", "right", "right"]))  # fmt: skip

    if report.apis:
        rows = [
            [f"{a.api} {a.model}", fmt_count(a.calls), fmt_count(a.errors),
             fmt_count(a.input_tokens), fmt_count(a.output_tokens), f"{a.cost_usd:.4g}"]
            for a in report.apis
        ]  # fmt: skip
        section("External APIs", fit_table(
            ["api model", "calls", "errors", "in tokens", "out tokens", "cost $"], rows, width,
            ["left"] + ["right"] * 5,
        ))  # fmt: skip

    if report.resources:
        rows = []
        for metric, entries in sorted(report.resources.items()):
            for e in entries:
                where = ",".join(f"{v}" for _, v in sorted(e["labels"].items()) if v)
                label = f"{metric} {where}" if where else metric
                v = e["value"]
                shown = fmt_pct(v) + " %" if metric.endswith("utilization") else fmt_count(v)
                if metric.endswith("_bytes"):
                    shown = fmt_bytes(v)
                if e["threshold"] is not None and v > e["threshold"]:
                    shown = paint(shown, _RED)
                rows.append([label, shown])
        section("Resources", fit_table(["resource", "value"], rows, width, ["left", "right"]))

    findings = []
    for w in report.warnings:
        findings.append(wrap(w.message, width, "! "))
    section(
        "Warnings",
        paint("\n".join(findings), _YELLOW) if findings else "  none: nothing over its threshold",
    )
    recs = [wrap(r.message, width, "- ") for r in report.recommendations]
    if recs:
        section("Recommendations", "\n".join(recs))
    return "\n".join(parts) + "\n"


def live_summary(report: ReportData, rates: dict[str, float], *, width: int) -> str:
    """The demo's periodic summary: rate, p95 and error % per operation, then the top
    bottleneck of each root and each cache's hit ratio."""
    rows = [
        [r.operation, f"{rates.get(r.operation, 0.0):.1f}", fmt_ms(r.p95_seconds),
         fmt_pct(r.error_ratio)]
        for r in sorted(report.operations, key=lambda r: r.operation)
    ]  # fmt: skip
    lines = [fit_table(["operation", "rate/s", "p95 ms", "err %"], rows, width,
                       ["left", "right", "right", "right"])]  # fmt: skip
    tops: dict[str, Any] = {}
    for b in report.bottlenecks:
        if b.operation != b.root_operation and b.root_operation not in tops:
            tops[b.root_operation] = b  # rows are sorted by share within each root
    for root, b in sorted(tops.items()):
        lines.append(f"{root}: top bottleneck {b.operation} {fmt_pct(b.share)} % of its time")
    for c in report.caches:
        lines.append(f"cache {c.cache}: hit ratio {fmt_pct(c.hit_ratio)} %")
    return "\n".join(lines)


class Report(ReportData):
    """The performance summary: the data and its JSON and CSV forms (:class:`ReportData`), and
    :meth:`to_text` for a terminal.  What ``Telemetry.report()`` and ``build_report`` return.

    >>> print(telemetry.report().to_text())  # doctest: +SKIP
    """

    def to_text(self, color: bool = False, width: int = TEXT_WIDTH) -> str:
        """Tables for a terminal, at most ``width`` columns; ANSI colours when ``color``."""
        return render(self, color=color, width=width)

    def to_html(self) -> str:
        """One self-contained HTML page (inline SVG charts, no network needed to view it):
        see :func:`otelperf.report.html.render_html`."""
        return render_html(self)


class LiveSummary:
    """Rates between two calls plus since-start figures, for the demo's periodic summary."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._last_t = time.monotonic()

    def render(self, telemetry: Any, width: int = TEXT_WIDTH) -> str:
        """The summary of ``telemetry.report()``; rates are per second since the last call."""
        now = time.monotonic()
        report = telemetry.report()
        dt = max(now - self._last_t, 1e-9)
        rates = {
            r.operation: max(r.calls - self._last.get(r.operation, 0.0), 0.0) / dt
            for r in report.operations
        }
        self._last = {r.operation: r.calls for r in report.operations}
        self._last_t = now
        return live_summary(report, rates, width=width)


def wrap(text: str, width: int, indent: str) -> str:
    """``textwrap.fill`` that keeps names and URLs whole (no breaks at hyphens or in words)."""
    return textwrap.fill(text, width=width, initial_indent=indent,
                         subsequent_indent=" " * len(indent), break_on_hyphens=False,
                         break_long_words=False)  # fmt: skip
