"""``otelperf compare`` in the terminal: one table (figures before -> after) and one line per
operation saying why it got its verdict.  Plain text, 80 columns, colour only on request."""

from __future__ import annotations

import textwrap
from typing import Any

from tabulate import DataRow, Line, TableFormat, tabulate

from otelperf.report.compare.model import Comparison
from otelperf.report.rendering import TEXT_WIDTH, fmt_count, fmt_ms, fmt_pct

# tabulate's "simple" with one space between columns: seven before->after columns fit 80.
_NARROW = TableFormat(
    lineabove=None, linebelowheader=Line("", "-", " ", ""), linebetweenrows=None,
    linebelow=None, headerrow=DataRow("", " ", ""), datarow=DataRow("", " ", ""), padding=0,
    with_header_hide=None,
)  # fmt: skip
_COLORS = {"regressed": "\033[31m", "improved": "\033[32m"}


def _pair(a: str, b: str) -> str:
    return f"{a}→{b}"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.2g}"


def _x(r: float | None) -> str:
    return "-" if r is None else f"×{r:.2f}"


def _short(name: str, width: int) -> str:
    # Keep the end: dotted operation names differ in their last part (module.qualname).
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def to_text(c: Comparison, color: bool = False) -> str:
    """The comparison as terminal text (ANSI colours on the verdicts when ``color``)."""
    d = c.to_dict()
    s = c.settings
    head = [
        f"otelperf compare — baseline: {c.baseline.label}; candidate: {c.candidate.label}",
        f"alpha {s.alpha:g} (Holm-adjusted over {c.tests} tests), minimum effect "
        f"{100 * s.min_effect:g} %, at least {s.min_calls:g} calls a side",
    ]
    out = [textwrap.fill(h, TEXT_WIDTH, subsequent_indent="  ") for h in head]
    rows: list[list[Any]] = []
    for o in d["operations"]:
        verdict = o["verdict"]
        if color and verdict in _COLORS:
            verdict = f"{_COLORS[verdict]}{verdict}\033[0m"
        rows.append([
            _short(o["operation"], 22), verdict,
            _pair(fmt_count(o["calls_baseline"]), fmt_count(o["calls_candidate"])),
            _pair(fmt_ms(o["p50_seconds_baseline"]), fmt_ms(o["p50_seconds_candidate"])),
            _pair(fmt_ms(o["p95_seconds_baseline"]), fmt_ms(o["p95_seconds_candidate"])),
            _pair(fmt_ms(o["mean_seconds_baseline"]), fmt_ms(o["mean_seconds_candidate"])),
            _pair(fmt_pct(o["error_ratio_baseline"]), fmt_pct(o["error_ratio_candidate"])),
        ])  # fmt: skip
    header = ["operation", "verdict", "calls", "p50 ms", "p95 ms", "mean ms", "err %"]
    out += ["", tabulate(rows, header, _NARROW, disable_numparse=True), "", "Why"]
    for o in d["operations"]:
        out.append(textwrap.fill(_why(o, s.min_calls), TEXT_WIDTH, subsequent_indent="  "))
    summary = ", ".join(f"{n} {v}" for v, n in d["summary"].items() if n)
    out += ["", f"{summary or 'no operations'}."]
    return "\n".join(out) + "\n"


def _why(o: dict[str, Any], min_calls: float) -> str:
    name = o["operation"]
    if o["verdict"] == "insufficient_data":
        return (
            f"{name}: not tested, {fmt_count(o['calls_baseline'])} and "
            f"{fmt_count(o['calls_candidate'])} calls (at least {min_calls:g} a side needed)"
        )
    return (
        f"{name}: {', '.join(o['reasons']) or 'no significant change of the minimum size'}; "
        f"p50 {_x(o['p50_ratio'])}, p95 {_x(o['p95_ratio'])}, mean {_x(o['mean_ratio'])}, "
        f"P(slower) {o['latency_prob_slower']:.3f}, latency p {_p(o['latency_p_value'])} "
        f"(adjusted {_p(o['latency_p_adjusted'])}); errors {o['error_test']}-test p "
        f"{_p(o['error_p_value'])} (adjusted {_p(o['error_p_adjusted'])})"
    )
