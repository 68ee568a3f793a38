"""Label values that can never break an exposition: the one place a name becomes a label value.

Every name that reaches a metric label (an operation, a cache, an API, a model, an error type,
any span name the processor sees, a root operation) passes through :func:`safe_label` when it
is first seen: the tables that hold labels cache per distinct name, so the hot path pays it once
per name, never per call.  Two things would otherwise break or bloat every later scrape:

* invalid Unicode: a lone surrogate (``os.fsdecode(b"report-\\xff.csv")`` is
  ``"report-\\udcff.csv"``) cannot be encoded as UTF-8, so prometheus_client's exposition
  raised and /metrics answered 500 until the process restarted.  Each surrogate becomes ``?``,
  as ``str.encode(errors="replace")`` does.  Not U+FFFD, the replacement character: PromQL's
  lexer refuses that rune in a string literal ("invalid UTF-8 rune"), so a query, a rule or a
  dashboard variable naming the series could not be written.  For the same reason a U+FFFD
  already in a name (``bytes.decode(errors="replace")``) becomes ``?`` too;
* length: one 100 KB name was repeated on every bucket line of every family it labels (a 7 MB
  scrape).  A value longer than :data:`MAX_LABEL_LENGTH` characters keeps its first
  ``MAX_LABEL_LENGTH - 1`` and ends in :data:`TRUNCATION_MARK`.
"""

from __future__ import annotations

import re

MAX_LABEL_LENGTH = 256
"""Longest label value, in characters (marker included)."""
TRUNCATION_MARK = "\u2026"  # "…"
REPLACEMENT = "?"

# Lone surrogates, and U+FFFD (which PromQL cannot read in a string literal).
_UNREADABLE = re.compile("[\ud800-\udfff\ufffd]")


def safe_label(value: object) -> str:
    """``value`` as a label value every exposition format can carry.

    >>> safe_label("report-\\udcff.csv")
    'report-?.csv'
    >>> len(safe_label("x" * 100_000)), safe_label("x" * 100_000)[-1]
    (256, '…')
    >>> safe_label("GET /orders")
    'GET /orders'
    """
    text = value if type(value) is str else _text(value)
    if len(text) > MAX_LABEL_LENGTH:
        text = text[: MAX_LABEL_LENGTH - 1] + TRUNCATION_MARK
    if text.isascii():
        return text
    return _UNREADABLE.sub(REPLACEMENT, text)


def _text(value: object) -> str:
    if isinstance(value, str):
        return str.__str__(value)  # a str subclass: its plain text
    try:
        return str(value)
    except Exception:  # a broken __str__ must not break the caller
        return f"<{type(value).__name__}>"
