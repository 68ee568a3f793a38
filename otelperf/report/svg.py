"""Small pure functions that draw the HTML report's charts as inline SVG text.

No chart library: three chart shapes cover the page (horizontal share bars, a histogram with
quantile markers, a line chart), and drawing them here keeps the page self-contained, the
output deterministic (tests compare it), and every string from data escaped in one place
(:func:`esc`).  Sizes are in SVG user units; the page scales the SVG to its container.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

# Colour-blind-friendly palette (Okabe-Ito), one colour per series in order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKER_COLOURS = {"p50": "#009E73", "p95": "#E69F00", "p99": "#D55E00"}
_LABEL_CHARS = 36  # longest label drawn in a chart; the full name is in its <title> and tables


def esc(text: object) -> str:
    """Text from data, safe in HTML and SVG content and in quoted attributes.

    >>> esc('<script>"x"</script>')
    '&lt;script&gt;&quot;x&quot;&lt;/script&gt;'
    """
    return html.escape(str(text), quote=True)


def _n(x: float) -> str:
    """A coordinate: one decimal, no trailing zeros (stable, compact output)."""
    return f"{x:.1f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _short(label: str) -> str:
    # Keep the end: operation names differ in their last part (module.qualname).
    return label if len(label) <= _LABEL_CHARS else "…" + label[-(_LABEL_CHARS - 1) :]


def colour(i: int) -> str:
    """The palette colour of the ``i``-th series (wrapping around)."""
    return PALETTE[i % len(PALETTE)]


def share_bars(
    rows: Sequence[tuple[str, float, str]],
    *,
    width: int = 720,
    label_width: int = 260,
    row_height: int = 22,
    title: str = "",
) -> str:
    """Horizontal bars, one per ``(label, fraction, value_text)``; a bar's length is its
    fraction (0..1) of the plot width, so a larger share is a wider bar.

    >>> 'width="145"' in share_bars([("db", 0.5, "50 %")], width=720, label_width=260)
    True
    """
    plot = width - label_width - 170  # room after the longest bar for its value
    height = row_height * max(len(rows), 1) + 4
    parts = [
        f'<svg class="chart share-bars" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{esc(title)}">'
    ]
    for i, (label, fraction, value) in enumerate(rows):
        y = 2 + i * row_height
        frac = min(max(fraction, 0.0), 1.0) if fraction == fraction else 0.0
        # A share that rounds to nothing still gets a sliver, so a present row is visible.
        w = max(frac * plot, 1.0) if frac > 0 else 0.0
        parts.append(
            f'<g class="bar-row" data-label="{esc(label)}"><title>{esc(label)}: {esc(value)}'
            f'</title><text x="{label_width - 6}" y="{y + row_height * 0.68:.1f}" '
            f'text-anchor="end">{esc(_short(label))}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{_n(w)}" '
            f'height="{row_height - 6}" fill="{colour(0)}"/>'
            f'<text class="value" x="{_n(label_width + w + 4)}" y="{y + row_height * 0.68:.1f}">'
            f"{esc(value)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    bins: Sequence[tuple[str, float]],
    markers: Sequence[tuple[str, float]],
    *,
    width: int = 720,
    height: int = 170,
    title: str = "",
) -> str:
    """Vertical bars of per-bucket counts (``(label, count)``, not cumulative) with quantile
    markers at ``(name, position)``: position in bucket units (2.5 = halfway through the
    third bucket), a vertical line labelled with the name.

    >>> svg = histogram([("≤ 1 ms", 3), ("≤ 2 ms", 1)], [("p50", 0.67)])
    >>> svg.count('class="bin"'), svg.count('class="marker"')
    (2, 1)
    """
    left, right, top, bottom = 48, 12, 22, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(bins), 1)
    step = plot_w / n
    peak = max((c for _, c in bins), default=0.0) or 1.0
    parts = [
        f'<svg class="chart histogram" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{esc(title)}">',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" '
        f'y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 4}" y="{top + 4}" text-anchor="end">{_count(peak)}</text>',
        f'<text class="tick" x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    label_every = max(1, round(n / 8))  # at most about eight bucket labels under the axis
    for i, (label, count) in enumerate(bins):
        h = count / peak * plot_h
        x = left + i * step
        parts.append(
            f'<rect class="bin" x="{_n(x + 1)}" y="{_n(top + plot_h - h)}" '
            f'width="{_n(max(step - 2, 1))}" height="{_n(h)}" fill="{colour(0)}">'
            f"<title>{esc(label)}: {_count(count)}</title></rect>"
        )
        if i % label_every == 0 or i == n - 1:
            parts.append(
                f'<text class="tick" x="{_n(x + step / 2)}" y="{top + plot_h + 14}" '
                f'text-anchor="middle">{esc(label)}</text>'
            )
    for name, position in markers:
        x = left + min(max(position, 0.0), float(n)) * step
        c = MARKER_COLOURS.get(name, "#333")
        parts.append(
            f'<g class="marker" data-quantile="{esc(name)}"><line x1="{_n(x)}" y1="{top - 4}" '
            f'x2="{_n(x)}" y2="{top + plot_h}" stroke="{c}" stroke-width="2" '
            f'stroke-dasharray="4 2"/><text x="{_n(x + 2)}" y="{top - 8}" fill="{c}">'
            f"{esc(name)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    width: int = 720,
    height: int = 220,
    unit: str = "/s",
    title: str = "",
) -> str:
    """One polyline per ``(name, [(seconds_since_start, value), ...])`` on shared axes from 0;
    each polyline carries ``data-points`` (how many points it draws).

    >>> 'data-points="2"' in line_chart([("load", [(1.0, 5.0), (2.0, 7.0)])])
    True
    """
    left, right, top, bottom = 76, 16, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [t for _, pts in series for t, _ in pts]
    ys = [v for _, pts in series for _, v in pts]
    x_max = max(xs, default=1.0) or 1.0
    y_max = max(ys, default=1.0) or 1.0
    parts = [
        f'<svg class="chart line-chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{esc(title)}">',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" '
        f'y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 4}" y="{top + 8}" text-anchor="end">'
        f"{_count(y_max)}{esc(unit)}</text>",
        f'<text class="tick" x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text class="tick" x="{left}" y="{height - 8}">0 s</text>',
        f'<text class="tick" x="{width - right}" y="{height - 8}" text-anchor="end">'
        f"{_count(x_max)} s</text>",
    ]
    for i, (name, pts) in enumerate(series):
        coords = " ".join(
            f"{_n(left + t / x_max * plot_w)},{_n(top + plot_h - v / y_max * plot_h)}"
            for t, v in pts
        )
        parts.append(
            f'<polyline class="line" data-series="{esc(name)}" data-points="{len(pts)}" '
            f'points="{coords}" fill="none" stroke="{colour(i)}" stroke-width="2">'
            f"<title>{esc(name)}</title></polyline>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _count(x: float) -> str:
    """An axis figure: whole numbers as such, else three significant digits."""
    if float(x).is_integer() or x >= 100:
        return f"{round(x):,}"
    return f"{x:.3g}"
