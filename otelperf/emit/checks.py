"""Argument checks of the public emit functions: one wording for every "must be" error."""

from __future__ import annotations

import math

from otelperf.parsing import show

MAX_COUNT = 2**63 - 1
"""Largest count one call may add (items, bytes, tokens): an int64, as every metrics backend
stores counters.  Larger values are refused at the call with a ValueError naming the
argument, so one absurd value can never reach (and break) a scrape-time callback."""


def check_name(func: str, arg: str, value: object) -> str:
    """A non-empty string, else ValueError naming ``func(arg=value)``.

    >>> check_name("record_cache", "cache", "sessions")
    'sessions'
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{func}({arg}={show(value)}): {arg} must be a non-empty string")
    return value


def check_money(func: str, arg: str, value: object) -> float:
    """A finite number >= 0 (not a bool), as a float.

    >>> check_money("set_cost", "usd", 1)
    1.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{func}({arg}={show(value)}): {arg} must be a number")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite or value < 0:
        raise ValueError(f"{func}({arg}={show(value)}): {arg} must be a finite number >= 0")
    return float(value)


def check_count(func: str, arg: str, value: object) -> int:
    """An int >= 0 (not a bool).

    >>> check_count("set_tokens", "input", 3)
    3
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{func}({arg}={show(value)}): {arg} must be an int")
    if value < 0 or value > MAX_COUNT:
        raise ValueError(f"{func}({arg}={show(value)}): {arg} must be between 0 and 2**63 - 1")
    return value
