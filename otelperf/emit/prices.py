"""API prices per (api, model), in US dollars per million tokens, by token type.

A call's cost is computed from its tokens when it does not carry one (the processor asks
:func:`cost_of` when it counts the call).  The token types are disjoint (docs/processor.md):
``input`` (not from the cache), ``cached_input``, ``output`` (not reasoning) and
``reasoning``, each priced once.  Cached input costs the input price and reasoning the output
price unless set: providers bill reasoning tokens as output tokens, and a cached-input price
left unset must not make cached tokens free.

>>> set_api_price("openai", "gpt-4o", input_per_million_usd=2.5,
...               output_per_million_usd=10.0, cached_input_per_million_usd=1.25)
>>> cost_of("openai", "gpt-4o", 1_000_000, 0, cached_input=1_000_000)
3.75
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from otelperf._core import fork
from otelperf.emit.checks import check_money, check_name


class Price(NamedTuple):
    """US dollars per million tokens of each token type."""

    input: float
    output: float
    cached_input: float
    reasoning: float


_prices: dict[tuple[str, str], Price] = {}
_prices_lock = threading.Lock()


def _after_fork() -> None:
    # A thread of the parent may have held the lock at fork(); the child starts with a fresh one.
    global _prices_lock
    _prices_lock = threading.Lock()


fork.on_fork(_after_fork)


def set_api_price(
    api: str,
    model: str,
    *,
    input_per_million_usd: float,
    output_per_million_usd: float,
    cached_input_per_million_usd: float | None = None,
    reasoning_per_million_usd: float | None = None,
) -> None:
    """Set the price of ``model`` on ``api``; costs of calls without one are computed from it.

    ``cached_input_per_million_usd`` defaults to the input price and
    ``reasoning_per_million_usd`` to the output price.

    >>> set_api_price("openai", "gpt-4o", input_per_million_usd=2.5,
    ...               output_per_million_usd=10.0)
    >>> prices()[("openai", "gpt-4o")]
    Price(input=2.5, output=10.0, cached_input=2.5, reasoning=10.0)
    """
    f = "set_api_price"
    check_name(f, "api", api)
    check_name(f, "model", model)
    i = check_money(f, "input_per_million_usd", input_per_million_usd)
    o = check_money(f, "output_per_million_usd", output_per_million_usd)
    c = i
    if cached_input_per_million_usd is not None:
        c = check_money(f, "cached_input_per_million_usd", cached_input_per_million_usd)
    r = o
    if reasoning_per_million_usd is not None:
        r = check_money(f, "reasoning_per_million_usd", reasoning_per_million_usd)
    with _prices_lock:
        _prices[(api, model)] = Price(i, o, c, r)


def prices() -> dict[tuple[str, str], Price]:
    """A copy of the price table: ``{(api, model): Price(input, output, cached_input,
    reasoning)}``, US dollars per million tokens.

    >>> isinstance(prices(), dict)
    True
    """
    with _prices_lock:
        return dict(_prices)


def clear_prices() -> None:
    """Forget every price set with :func:`set_api_price` (tests, reconfiguration)."""
    with _prices_lock:
        _prices.clear()


def cost_of(
    api: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_input: int = 0,
    reasoning: int = 0,
) -> float | None:
    """Cost in USD from the price table, None when (api, model) has no price.

    The counts are the disjoint token types: ``input_tokens`` excludes ``cached_input`` and
    ``output_tokens`` excludes ``reasoning``.

    >>> set_api_price("acme", "m1", input_per_million_usd=1.0, output_per_million_usd=2.0)
    >>> cost_of("acme", "m1", 1_000_000, 500_000)
    2.0
    """
    p = _prices.get((api, model))
    if p is None:
        return None
    return (
        input_tokens * p.input
        + output_tokens * p.output
        + cached_input * p.cached_input
        + reasoning * p.reasoning
    ) / 1_000_000
