"""Parsers for settings: one value from an argument or a variable, checked, or a ConfigError
naming its ``source`` (the argument or the variable) and the value.

Pure functions of their input; :mod:`otelperf.config` applies them, and the CLI commands use
them for their flags.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable

from otelperf.errors import ConfigError

IGNORE_NOTHING = "none"  # OTELPERF_IGNORE_SPANS=none: an empty list (an empty variable is unset)
# What a process writes when it exits (OTELPERF_REPORT, docs/batch.md); "none": nothing.
REPORT_FORMATS: tuple[str, ...] = ("text", "json", "html", "none")


def show(value: object) -> str:
    """``repr(value)`` short enough for an error message (a pasted file, a 5,000-digit int);
    every "must be" error of the settings and of the emit functions quotes values with it.

    >>> show(10**400)
    'an int of 1329 bits'
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an int of {value.bit_length()} bits"
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(value: str, source: str) -> bool:
    """Parse a boolean the way OTel SDKs do (case-insensitive true/false, plus 1/0, yes/no)."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"{source}={show(value)} is not a boolean (use true or false)")


def parse_int(value: object, source: str, *, low: int, high: int | None = None) -> int:
    """Parse an integer in [low, high]; ``source`` names the argument or variable."""
    if isinstance(value, bool):
        raise ConfigError(f"{source}={show(value)} is not an integer")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        try:
            n = int(value.strip())
        except ValueError:
            raise ConfigError(f"{source}={show(value)} is not an integer") from None
    else:
        raise ConfigError(f"{source}={show(value)} is not an integer")
    if n < low or (high is not None and n > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{source}={show(n)} is out of range: it must be {bound}")
    return n


def parse_float(
    value: object, source: str, *, low: float = 0.0, high: float | None = None
) -> float:
    """Parse a finite float in [low, high]."""
    if isinstance(value, bool):
        raise ConfigError(f"{source}={show(value)} is not a number")
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{source}={show(value)} is not a number") from None
    except OverflowError:  # an int beyond any float
        x = math.inf
    if not math.isfinite(x) or x < low or (high is not None and x > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{source}={show(value)} is out of range: it must be a number {bound}")
    return x


def parse_buckets(value: object, source: str) -> tuple[float, ...]:
    """Histogram boundaries: a comma-separated string or a sequence, strictly increasing."""
    items: Iterable[object]
    if isinstance(value, str):
        items = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, Iterable):
        items = value
    else:
        raise ConfigError(f"{source}={show(value)} is not a list of bucket boundaries")
    out = tuple(parse_float(v, source, low=-math.inf) for v in items)
    if not out:
        raise ConfigError(f"{source} is empty: give at least one bucket boundary")
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise ConfigError(f"{source}={show(value)}: bucket boundaries must be strictly increasing")
    return out


_BYTE_UNITS = {
    "": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30,
}  # fmt: skip


def parse_bytes(value: object, source: str) -> int:
    """A size in bytes: an int, or a string with an optional unit (``512Mi``, ``2G``, ``1.5GiB``).

    >>> parse_bytes("512Mi", "process_memory_limit")
    536870912
    """
    if isinstance(value, bool):
        raise ConfigError(f"{source}={show(value)} is not a size in bytes")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        text = value.strip()
        num = text.rstrip("bBkKmMgGiI")
        unit = text[len(num) :].strip().lower()
        if unit not in _BYTE_UNITS:
            raise ConfigError(
                f"{source}={show(value)} has an unknown unit {show(unit)} "
                "(use bytes, or K, M, G, Ki, Mi, Gi)"
            )
        try:
            x = float(num) * _BYTE_UNITS[unit]
        except ValueError:
            raise ConfigError(
                f"{source}={show(value)} is not a size in bytes (e.g. 536870912 or 512Mi)"
            ) from None
        if not math.isfinite(x):
            raise ConfigError(f"{source}={show(value)} is not a size in bytes")
        n = int(x)
    else:
        raise ConfigError(f"{source}={show(value)} is not a size in bytes")
    if n < 1:
        raise ConfigError(f"{source}={show(value)} is out of range: it must be at least 1 byte")
    return n


def parse_span_patterns(value: object, source: str) -> tuple[str, ...]:
    """Span-name patterns: exact names, or ``*`` and a suffix (``* http send``).

    A comma-separated string (``none`` for no pattern) or a list of strings.

    >>> parse_span_patterns("GET /health, * http send", "OTELPERF_IGNORE_SPANS")
    ('GET /health', '* http send')
    """
    items: list[object]
    if isinstance(value, str):
        if value.strip().lower() == IGNORE_NOTHING:
            return ()
        items = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise ConfigError(f"{source}={show(value)} is not a list of span names")
    out: list[str] = []
    for p in items:
        if not isinstance(p, str) or not p.strip():
            raise ConfigError(
                f"{source}: {show(p)} is not a span name (give names, or * and a name suffix)"
            )
        if p.startswith("*") and not p[1:].strip():
            raise ConfigError(f"{source}: {show(p)} would leave out every span")
        if p not in out:
            out.append(p)
    return tuple(out)


def parse_resource_attributes(
    value: str, source: str = "OTEL_RESOURCE_ATTRIBUTES"
) -> dict[str, str]:
    """``key1=value1,key2=value2`` as the OTel specification defines it (values percent-decoded)."""
    from urllib.parse import unquote

    out: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source}: {part.strip()!r} is not of the form key=value")
        out[key.strip()] = unquote(val.strip())
    return out


def parse_report_format(value: object, source: str) -> str:
    """One of :data:`REPORT_FORMATS`, case-insensitive.

    >>> parse_report_format("JSON", "OTELPERF_REPORT")
    'json'
    """
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in REPORT_FORMATS:
        raise ConfigError(f"{source}={show(value)} must be one of {', '.join(REPORT_FORMATS)}")
    return text


def format_for_file(path: str) -> str:
    """The report format a file name asks for: ``.json``, ``.html`` / ``.htm``, else text.

    >>> format_for_file("run.html"), format_for_file("run.JSON"), format_for_file("run.log")
    ('html', 'json', 'text')
    """
    suffix = os.path.splitext(path)[1].lower()
    return {".json": "json", ".html": "html", ".htm": "html"}.get(suffix, "text")


def parse_http_url(value: object, source: str) -> str:
    """An ``http://`` or ``https://`` URL with a host, without a trailing slash.

    >>> parse_http_url("http://pushgateway:9091/", "OTELPERF_PUSHGATEWAY_URL")
    'http://pushgateway:9091'
    """
    from urllib.parse import urlsplit

    text = value.strip() if isinstance(value, str) else ""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{source}={show(value)} is not an http:// or https:// URL with a host")
    return text.rstrip("/")
