"""The report as one self-contained HTML page: where each root's time goes, latency
distributions per operation, throughput over the run, cache and API figures, resources,
warnings and recommendations.

Self-contained means viewable with no network: inline CSS, charts as inline SVG from
:mod:`otelperf.report.svg`, system fonts, no script at all.  A Content-Security-Policy meta
tag forbids every fetch and every script, so even a page edited by hand cannot phone home.
Every string from data (operation names are user input) goes through :func:`svg.esc`.  The
page is bounded: tables hold the report's rows (``--top``, and otelperf's label caps), at most
:data:`MAX_ROOTS` roots of :data:`MAX_BARS` bars, :data:`MAX_HISTOGRAMS` histograms and
:data:`MAX_LINES` lines are drawn, and a timeline is thinned to :data:`MAX_POINTS`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence

from otelperf.report.model import BottleneckRow, OperationRow, ReportData, TimelinePoint
from otelperf.report.svg import colour, esc, histogram, line_chart, share_bars

MAX_ROOTS = 20  # roots whose time is drawn (the table rows are the report's own)
MAX_BARS = 25  # operations drawn per root, largest share first
MAX_HISTOGRAMS = 30  # latency charts, slowest total first (a report without --top has every row)
MAX_LINES = 8  # operations drawn in a throughput chart, most calls (or items) first
MAX_POINTS = 300  # timeline points drawn; more are thinned evenly (first and last kept)
QUANTILES = (("p50", "p50_seconds"), ("p95", "p95_seconds"), ("p99", "p99_seconds"))

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1d2330;background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:18px;margin:28px 0 8px;
border-bottom:1px solid #d7dbe2;padding-bottom:4px}h3{font-size:15px;margin:16px 0 4px}
.source{color:#4a5263;margin:0 0 8px}.note{color:#4a5263;font-style:italic}
table{border-collapse:collapse;background:#fff;margin:4px 0 8px}
th,td{padding:3px 10px;border-bottom:1px solid #e3e6eb;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal;word-break:break-all}
th{background:#eef0f4;font-weight:600}
.chart{max-width:100%;height:auto;background:#fff;border:1px solid #e3e6eb;display:block}
.chart text{font-size:11px;fill:#1d2330}.chart .tick{fill:#59606e}
.chart .axis{stroke:#9aa1ad}
.legend{margin:4px 0 12px;padding:0;list-style:none}
.legend li{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
.warnings li{color:#8a3b00}.flag{color:#b00020;font-weight:600}
"""


def render_html(report: ReportData) -> str:
    """The whole page (see :meth:`otelperf.report.Report.to_html`)."""
    at = report.source.at if report.source.at is not None else time.time()
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    body = [
        "<h1>otelperf report</h1>",
        f'<p class="source">{esc(report.source.describe())}</p>',
        f'<p class="source">{esc(_window(report))}; generated {esc(when)}</p>',
        _where_time_goes(report),
        _throughput(report.timeline),
        _latency(report.operations),
        _operations_table(report),
        _endpoints_table(report),
        _caches(report),
        _apis(report),
        _resources(report),
        _findings(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        # No fetch and no script of any kind: the page needs neither.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>otelperf report — {esc(report.source.describe())}</title>"
        f"<style>{_CSS}</style></head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )


def _window(report: ReportData) -> str:
    s = report.source
    if s.window is not None:
        covers = f" (data covers {_seconds(s.data_seconds)})" if s.window_is_short() else ""
        return f"window {s.window}{covers}"
    if s.data_seconds is not None:
        return f"covers {_seconds(s.data_seconds)} since the process started"
    return "covers the time since the process started"


# --- sections -------------------------------------------------------------------------------


def _where_time_goes(report: ReportData) -> str:
    per_root: dict[str, list[BottleneckRow]] = {}
    for b in report.bottlenecks:
        per_root.setdefault(b.root_operation, []).append(b)
    out = ["<h2>Where each root's time goes</h2>"]
    if not per_root:
        out.append('<p class="note">No root operations recorded: nothing to attribute.</p>')
        return "\n".join(out)
    out.append('<p class="note">Share of each root\'s duration on its critical path, per '
               "operation (self time: without its children).</p>")  # fmt: skip
    for root, rows in list(per_root.items())[:MAX_ROOTS]:
        bars = [(b.operation, b.share, f"{_pct(b.share)} % (self {_pct(b.self_share)} %)")
                for b in rows[:MAX_BARS]]  # fmt: skip
        out.append(f'<section class="root" data-root="{esc(root)}"><h3>{esc(root)}</h3>')
        out.append(share_bars(bars, title=f"where {root}'s time goes"))
        if len(rows) > MAX_BARS:
            out.append(f'<p class="note">{len(rows) - MAX_BARS} smaller shares not drawn.</p>')
        out.append("</section>")
    if len(per_root) > MAX_ROOTS:
        out.append(f'<p class="note">{len(per_root) - MAX_ROOTS} more roots not drawn.</p>')
    return "\n".join(out)


def rates(timeline: Sequence[TimelinePoint], field: str) -> dict[str, list[tuple[float, float]]]:
    """Per operation, the per-second rate of ``field`` ("calls" or "items") between each pair
    of consecutive points, as a step: ``(start, rate), (end, rate)`` in seconds since the first
    point, so that even a run shorter than one sampling interval draws a visible line.  A
    counter that went down (a restart) counts from zero.

    >>> pts = [TimelinePoint(10.0, {"a": 0.0}, {}), TimelinePoint(12.0, {"a": 6.0}, {})]
    >>> rates(pts, "calls")
    {'a': [(0.0, 3.0), (2.0, 3.0)]}
    """
    if len(timeline) < 2:
        return {}
    names = sorted({n for p in timeline for n in getattr(p, field)})
    t0 = timeline[0].at
    out: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for prev, cur in itertools.pairwise(timeline):
        dt = cur.at - prev.at
        for n in names:
            a, b = getattr(prev, field).get(n, 0.0), getattr(cur, field).get(n, 0.0)
            delta = b - a if b >= a else b
            rate = delta / dt if dt > 0 else 0.0
            out[n].extend(((prev.at - t0, rate), (cur.at - t0, rate)))
    return out


def thin(timeline: Sequence[TimelinePoint], limit: int = MAX_POINTS) -> list[TimelinePoint]:
    """At most ``limit`` points, evenly spaced by index, the first and last kept."""
    n = len(timeline)
    if n <= limit:
        return list(timeline)
    picks = sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})
    return [timeline[i] for i in picks]


def _throughput(timeline: Sequence[TimelinePoint]) -> str:
    out = ["<h2>Throughput over the run</h2>"]
    if len(timeline) < 2:
        out.append('<p class="note no-timeline">No timeline: this report has no samples over '
                   "time (a timeline comes from <code>otelperf run</code>, a "
                   "<code>TimelineRecorder</code>, or <code>--prometheus</code>).</p>")  # fmt: skip
        return "\n".join(out)
    points = thin(timeline)
    span = points[-1].at - points[0].at
    out.append(f'<p class="note">{len(points)} samples over {_seconds(span)}; rates between '
               "consecutive samples, drawn as steps.</p>")  # fmt: skip
    for field, title in (("items", "Items per second"), ("calls", "Calls per second")):
        series = rates(points, field)
        totals = {n: sum(v for _, v in pts) for n, pts in series.items()}
        names = sorted((n for n in series if totals[n] > 0), key=lambda n: (-totals[n], n))
        if not names:
            continue
        drawn = [(n, series[n]) for n in names[:MAX_LINES]]
        out.append(f'<h3>{title}</h3><div class="throughput" data-field="{field}">')
        out.append(line_chart(drawn, title=title))
        out.append('<ul class="legend">' + "".join(
            f'<li><span class="swatch" style="background:{colour(i)}"></span>{esc(n)}</li>'
            for i, (n, _) in enumerate(drawn)
        ) + "</ul></div>")  # fmt: skip
        if len(names) > MAX_LINES:
            out.append(f'<p class="note">{len(names) - MAX_LINES} more operations not drawn.</p>')
    return "\n".join(out)


def bins(row: OperationRow) -> list[tuple[str, float, float, float]]:
    """Per-bucket counts ``(label, count, low, high)`` from the row's cumulative buckets,
    without the empty buckets at either end (a bucket is ``(low, high]``).

    >>> r = OperationRow("x", 3, 0, 0, None, None, None, 0, 0, None, 0.0,
    ...                  ((0.01, 0), (0.05, 2), (0.1, 3), (math.inf, 3)))
    >>> [(b[0], b[1]) for b in bins(r)]
    [('≤ 50 ms', 2.0), ('≤ 100 ms', 1.0)]
    """
    out = []
    prev, low = 0.0, 0.0
    for le, cum in row.buckets:
        count = float(max(cum - prev, 0.0))
        label = "> " + _duration(low) if math.isinf(le) else "≤ " + _duration(le)
        out.append((label, count, low, le))
        prev, low = max(prev, cum), le
    nonzero = [i for i, b in enumerate(out) if b[1] > 0]
    return out[nonzero[0] : nonzero[-1] + 1] if nonzero else []


def _position(value: float, shown: Sequence[tuple[str, float, float, float]]) -> float:
    """Where ``value`` falls in bucket units among the drawn buckets (linear inside one)."""
    for i, (_, _, low, high) in enumerate(shown):
        if value <= high:
            if math.isinf(high) or high <= low:
                return float(i)
            return i + max(value - low, 0.0) / (high - low)
    return float(len(shown))


def _latency(operations: Sequence[OperationRow]) -> str:
    out = ["<h2>Latency distributions</h2>"]
    drawn = [(r, bins(r)) for r in operations]
    drawn = [(r, b) for r, b in drawn if b]
    if not drawn:
        out.append('<p class="note">No duration histograms recorded.</p>')
        return "\n".join(out)
    out.append('<p class="note">Calls per duration bucket (not cumulative); dashed lines mark '
               "p50, p95 and p99.</p>")  # fmt: skip
    if len(drawn) > MAX_HISTOGRAMS:
        out.append(f'<p class="note">The {MAX_HISTOGRAMS} operations with the most total time; '
                   f"{len(drawn) - MAX_HISTOGRAMS} more not drawn.</p>")  # fmt: skip
    for r, b in drawn[:MAX_HISTOGRAMS]:
        marks = []
        text = []
        for name, attr in QUANTILES:
            v = getattr(r, attr)
            if v is not None:
                marks.append((name, _position(v, b)))
                text.append(f"{name} {_duration(v)}")
        name = esc(r.operation)
        out.append(f'<section class="latency" data-operation="{name}"><h3>{name}</h3>'
                   f'<p class="note">{esc(", ".join(text))}</p>')  # fmt: skip
        out.append(histogram([(label, c) for label, c, _, _ in b], marks,
                             title=f"latency of {r.operation}"))  # fmt: skip
        out.append("</section>")
    return "\n".join(out)


def _table(cls: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _operations_table(report: ReportData) -> str:
    out = ["<h2>Operations</h2>"]
    if not report.operations:
        out.append('<p class="note">No operations recorded.</p>')
        return "\n".join(out)
    flagged = {w.subject for w in report.warnings if w.kind == "error_ratio"}
    rows = []
    for r in report.operations:
        err = _count(r.errors)
        if r.operation in flagged:
            err = f'<span class="flag">{err}</span>'
        rows.append([esc(r.operation), _count(r.calls), _count(r.items) if r.items else "-",
                     _rate(r.items_per_second), _ms(r.p50_seconds), _ms(r.p95_seconds),
                     _ms(r.p99_seconds), err, _pct(r.error_ratio) if r.calls else "-"])  # fmt: skip
    out.append(_table("operations", ["operation", "calls", "items", "items/s", "p50 ms",
                                     "p95 ms", "p99 ms", "errors", "err %"], rows))  # fmt: skip
    return "\n".join(out)


def _endpoints_table(report: ReportData) -> str:
    if not report.endpoints:
        return ""
    rows = [[esc(e.operation), _count(e.calls), _rate(e.rate_per_second),
             "-" if e.error_ratio is None else _pct(e.error_ratio), _ms(e.p95_seconds),
             esc(e.top_bottleneck or "-"), _pct(e.top_bottleneck_share)]
            for e in report.endpoints]  # fmt: skip
    return "<h2>Endpoints</h2>\n" + _table(
        "endpoints", ["endpoint", "calls", "calls/s", "err %", "p95 ms", "bottleneck", "%"], rows
    )


def _caches(report: ReportData) -> str:
    if not report.caches:
        return '<h2>Caches</h2>\n<p class="note">No cache lookups recorded.</p>'
    rows = [[esc(c.cache), _count(c.hits), _count(c.misses), _pct(c.hit_ratio)]
            for c in report.caches]  # fmt: skip
    return "<h2>Caches</h2>\n" + _table("caches", ["cache", "hits", "misses", "hit %"], rows)


def _apis(report: ReportData) -> str:
    if not report.apis:
        return '<h2>External APIs</h2>\n<p class="note">No API calls recorded.</p>'
    rows = [[esc(f"{a.api} {a.model}"), _count(a.calls), _count(a.errors),
             _count(a.input_tokens), _count(a.output_tokens), esc(f"{a.cost_usd:.4g}")]
            for a in report.apis]  # fmt: skip
    return "<h2>External APIs</h2>\n" + _table(
        "apis", ["api model", "calls", "errors", "input tokens", "output tokens", "cost $"], rows
    )


def _resources(report: ReportData) -> str:
    if not report.resources:
        return ""
    rows = []
    for metric, entries in sorted(report.resources.items()):
        for e in entries:
            where = ",".join(f"{v}" for _, v in sorted(e["labels"].items()) if v)
            v = float(e["value"])
            shown = f"{_pct(v)} %" if metric.endswith("utilization") else _count(v)
            if metric.endswith("_bytes"):
                shown = f"{v / 2**20:,.1f} MiB"
            if e["threshold"] is not None and v > e["threshold"]:
                shown = f'<span class="flag">{shown}</span>'
            rows.append([esc(f"{metric} {where}".strip()), shown])
    return "<h2>Resources</h2>\n" + _table("resources", ["resource", "value"], rows)


def _findings(report: ReportData) -> str:
    out = ["<h2>Warnings</h2>"]
    if report.warnings:
        out.append('<ul class="warnings">' + "".join(
            f"<li>{esc(w.message)}</li>" for w in report.warnings) + "</ul>")  # fmt: skip
    else:
        out.append('<p class="note">None: nothing over its threshold.</p>')
    if report.recommendations:
        out.append('<h2>Recommendations</h2><ul class="recommendations">' + "".join(
            f"<li>{esc(r.message)}</li>" for r in report.recommendations) + "</ul>")  # fmt: skip
    return "\n".join(out)


# --- figures --------------------------------------------------------------------------------


def _count(x: float) -> str:
    """A count in full (the page has room): ``1,234``; a fraction from a window: ``2.5``."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.1f}"


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def _rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3g}"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def _duration(seconds: float) -> str:
    """A bucket bound or quantile: ``250 ms``, ``2.5 s``, ``100 µs``."""
    if seconds >= 1:
        return f"{seconds:g} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
