"""Small pure builders of PromQL text, shared by the rules, the dashboards and the report.

Each function returns a string and does nothing else, so generated files stay byte-identical
as long as the callers pass the same pieces.  Label values are escaped for a PromQL string
literal; label names and metric names are taken as they come (the name table owns them).

>>> sum_by(("job",), rate(selector("x_total", eq("job", "a")), "5m"))
'sum by (job) (rate(x_total{job="a"}[5m]))'
>>> histogram_quantile(0.95, sum_by(("le",), rate("d_bucket", "5m")))
'histogram_quantile(0.95, sum by (le) (rate(d_bucket[5m])))'
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence

# --- numbers and durations ---------------------------------------------------------------------

_DURATION = re.compile(r"(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?")
# Prometheus keeps a duration as int64 nanoseconds and refuses a longer one ("out of range").
MAX_DURATION_SECONDS = (2**63 - 1) / 1e9
_UNIT_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000,
            "m": 60_000, "s": 1000, "ms": 1}  # fmt: skip


def number(x: float) -> str:
    """A number as PromQL and humans like it: no ``.0`` on whole numbers, 12 significant digits.

    >>> number(0.05), number(1000.0), number(1073741824.0)
    ('0.05', '1000', '1073741824')
    """
    return f"{x:.12g}" if x != int(x) else str(int(x))


def is_duration(text: str) -> bool:
    """Whether ``text`` is written as a Prometheus duration (``90s``, ``1h30m``, ``7d``, ``0s``).

    Zero is syntax too (``for: 0s`` is valid); a range window also needs
    ``duration_seconds(text) > 0``.

    >>> is_duration("1h30m"), is_duration("0s"), is_duration("0"), is_duration("5 m")
    (True, True, False, False)
    """
    # fullmatch, not match with ``$``: ``$`` also matches before a trailing newline ("5m\n").
    return bool(text) and _DURATION.fullmatch(text) is not None


def duration_seconds(duration: str) -> float:
    """Seconds in a Prometheus duration string (its units y, w, d, h, m, s, ms).

    >>> duration_seconds("1h30m"), duration_seconds("1500ms"), duration_seconds("2550ms")
    (5400, 1.5, 2.55)
    """
    ms = sum(int(n) * _UNIT_MS[u] for n, u in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", duration))
    # Whole milliseconds divided once: 2550ms is 2.55 s, where 2550 * 0.001 is 2.5500000000000003.
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


# --- selectors -------------------------------------------------------------------------------


def escape_string(value: str) -> str:
    """``value`` escaped for the inside of a double-quoted PromQL string literal.

    >>> escape_string('a"b')
    'a\\\\"b'
    """
    return (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        .replace("\r", "\\r").replace("\t", "\\t")
        # Prometheus' lexer reads a raw U+FFFD as a decoding error ("invalid UTF-8 rune"): the
        # escape stands for the same character.
        .replace("\ufffd", "\\uFFFD")
    )  # fmt: skip


def eq(label: str, value: str) -> str:
    """An equality matcher: ``eq("job", "api")`` is ``job="api"``."""
    return f'{label}="{escape_string(value)}"'


def re_match(label: str, pattern: str) -> str:
    """A regex matcher; ``pattern`` is used as written (a Grafana ``$var`` stays a variable).

    >>> re_match("job", "$job")
    'job=~"$job"'
    """
    return f'{label}=~"{pattern}"'


def not_re_match(label: str, pattern: str) -> str:
    """A negative regex matcher: ``label!~"pattern"``."""
    return f'{label}!~"{pattern}"'


def regex_literal(value: str) -> str:
    """``value`` as an RE2 regex matching exactly it (Prometheus' regex dialect, not Python's).

    ASCII punctuation gets a backslash (always a literal in RE2), control characters the
    ``\\x{hh}`` form, everything else stays as it is: RE2 refuses ``\\`` before a letter, a
    space or a non-ASCII character, which ``re.escape`` would write.

    >>> regex_literal("a.b c")
    'a\\\\.b c'
    """
    out = []
    for ch in value:
        if ch in string.punctuation:
            out.append("\\" + ch)
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{{{ord(ch):02x}}}")
        else:
            out.append(ch)
    return "".join(out)


def regex_alternation(values: Iterable[str]) -> str:
    """A regex matching exactly the given values, ready to put between PromQL quotes.

    The regex is escaped once more for the PromQL string literal, which unescapes once.

    >>> regex_alternation(["a.b", "c"])
    'a\\\\\\\\.b|c'
    """
    return escape_string("|".join(regex_literal(v) for v in values))


def selector(metric: str, *matchers: str, sep: str = ", ") -> str:
    """``metric{m1, m2}``; empty matchers are dropped, no braces when none is left.

    Grafana's convention is ``sep=","``, the rule files' ``", "``; both are valid PromQL.

    >>> selector("up", 'job="a"', "", 'instance="b"')
    'up{job="a", instance="b"}'
    >>> selector("up", "")
    'up'
    """
    kept = [m for m in matchers if m]
    return metric + ("{" + sep.join(kept) + "}" if kept else "")


# --- range vectors and functions ------------------------------------------------------------


def range_vector(expr: str, window: str, offset: str | None = None) -> str:
    """``expr[window]``, optionally ``offset``: ``range_vector("x", "1h", "1d")`` is
    ``x[1h] offset 1d``."""
    return f"{expr}[{window}]" + (f" offset {offset}" if offset else "")


def call(function: str, *args: str) -> str:
    """A function call: ``call("predict_linear", "x[6h]", "24 * 3600")``."""
    return f"{function}({', '.join(args)})"


def rate(expr: str, window: str, offset: str | None = None) -> str:
    """``rate(expr[window])``, optionally with an offset.

    >>> rate('x_total{job="a"}', "5m", offset="1d")
    'rate(x_total{job="a"}[5m] offset 1d)'
    """
    return call("rate", range_vector(expr, window, offset))


def increase(expr: str, window: str, offset: str | None = None) -> str:
    """``increase(expr[window])``, optionally with an offset."""
    return call("increase", range_vector(expr, window, offset))


def over_time(aggregation: str, expr: str, window: str) -> str:
    """``<aggregation>_over_time(expr[window])``, e.g. ``over_time("max", "x", "1h")``."""
    return call(f"{aggregation}_over_time", range_vector(expr, window))


def histogram_quantile(q: float, buckets: str) -> str:
    """``histogram_quantile(q, buckets)``; ``buckets`` must keep the ``le`` label.

    >>> histogram_quantile(0.5, "b")
    'histogram_quantile(0.5, b)'
    """
    return f"histogram_quantile({q:g}, {buckets})"


def wilson_lower_bound(ratio: str, n: str, z: float) -> str:
    """The Wilson score lower bound of a proportion, as PromQL.

    ``ratio`` is the observed share (a vector), ``n`` the number of trials (a vector with the
    same labels, which must be filtered ``> 0``), ``z`` the one-sided normal quantile (1.645:
    95 %).  The bound is below the observed share by about ``z`` standard errors, and by much
    more when ``n`` is small: 2 errors in 15 calls (13 %) give 4.5 %, 40 in 300 give 10.4 % (z = 1.645).

    >>> wilson_lower_bound("p", "(n > 0)", 2)
    '(p + 4 / (2 * (n > 0)) - 2 * sqrt(p * (1 - p) / (n > 0) + 4 / (4 * (n > 0) * (n > 0)))) / (1 + 4 / (n > 0))'
    """  # noqa: E501
    z2 = number(z * z)
    return (
        f"({ratio} + {z2} / (2 * {n}) - {number(z)} * sqrt({ratio} * (1 - {ratio}) / {n} "
        f"+ {z2} / (4 * {n} * {n}))) / (1 + {z2} / {n})"
    )


def le_regex(boundary: float) -> str:
    r"""A regex matching the ``le`` label of one bucket boundary however an exporter writes it
    (``0.5``; ``1`` or ``1.0``), ready to put between PromQL quotes.

    >>> le_regex(0.5), le_regex(1.0)
    ('0\\\\.5', '1(\\\\.0)?')
    """
    text = regex_literal(number(boundary))
    if boundary == int(boundary):
        text += "(\\.0)?"
    return escape_string(text)


# --- aggregation and vector matching --------------------------------------------------------


def label_list(*labels: str) -> str:
    """``(a, b)``: the label list of ``by``, ``on``, ``group_left`` ...

    >>> label_list("job", "le"), label_list()
    ('(job, le)', '()')
    """
    return "(" + ", ".join(labels) + ")"


def aggregate(operator: str, by: Sequence[str], expr: str) -> str:
    """``op by (labels) (expr)``, or ``op (expr)`` when ``by`` is empty.

    >>> aggregate("max", ("job",), "x"), aggregate("sum", (), "x")
    ('max by (job) (x)', 'sum (x)')
    """
    grouping = f" by {label_list(*by)}" if by else ""
    return f"{operator}{grouping} ({expr})"


def sum_by(by: Sequence[str], expr: str) -> str:
    """``sum by (labels) (expr)`` (``sum (expr)`` when ``by`` is empty)."""
    return aggregate("sum", by, expr)


def on(*labels: str, tight: bool = False) -> str:
    """The ``on`` matching modifier: ``on (a, b)``, or ``on(a, b)`` with ``tight=True``.

    The rule files write it tight, the dashboards with a space; both are kept byte-for-byte.
    """
    return "on" + ("" if tight else " ") + label_list(*labels)


def group_left(*labels: str, tight: bool = False) -> str:
    """The ``group_left`` modifier: ``group_left ()``, or ``group_left()`` with ``tight``."""
    return "group_left" + ("" if tight else " ") + label_list(*labels)


# --- reading expressions (for the name-table test and docs) ---------------------------------

_PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "offset", "bool", "rate", "irate", "increase", "delta", "deriv",
    "predict_linear", "histogram_quantile", "avg_over_time", "stddev_over_time",
    "max_over_time", "min_over_time", "sum_over_time", "count_over_time", "abs", "clamp_min",
    "clamp_max", "absent", "label_replace", "vector", "scalar", "time", "le", "inf", "nan",
    "sqrt", "clamp", "last_over_time", "quantile_over_time", "absent_over_time",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Names of the series a PromQL expression selects (a small tokenizer, not a parser).

    >>> sorted(metric_names('sum by (job) (rate(x_total{a="b"}[5m])) / on(job) y > 0'))
    ['x_total', 'y']
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # drop label values
    text = re.sub(r"\{[^}]*\}", "", text)  # and matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # and range/subquery windows
    # Label lists after by/without/on/ignoring/group_left/group_right are not metrics.
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    names = set()
    # The look-behind skips unit letters of numbers and durations ("1d" in "offset 1d").
    for m in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = m.group(0)
        if word.lower() in _PROMQL_WORDS:
            continue
        # A name directly followed by "(" is a function call.
        if text[m.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names
