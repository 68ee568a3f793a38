"""API prices per (api, model), in US dollars per million tokens.

A call's cost is computed from its tokens when it does not carry one (the processor asks
:func:`cost_of` when it counts the call).

>>> set_api_price("openai", "gpt-4o", input_per_million_usd=2.5,
...               output_per_million_usd=10.0)
>>> cost_of("openai", "gpt-4o", 1_000_000, 0)
2.5
"""

from __future__ import annotations

import threading

from otelperf._core import fork
from otelperf.emit.checks import check_money, check_name

_prices: dict[tuple[str, str], tuple[float, float]] = {}
_prices_lock = threading.Lock()


def _after_fork() -> None:
    # A thread of the parent may have held the lock at fork(); the child starts with a fresh one.
    global _prices_lock
    _prices_lock = threading.Lock()


fork.on_fork(_after_fork)


def set_api_price(
    api: str, model: str, *, input_per_million_usd: float, output_per_million_usd: float
) -> None:
    """Set the price of ``model`` on ``api``; costs of calls without one are computed from it.

    >>> set_api_price("openai", "gpt-4o", input_per_million_usd=2.5,
    ...               output_per_million_usd=10.0)
    >>> prices()[("openai", "gpt-4o")]
    (2.5, 10.0)
    """
    check_name("set_api_price", "api", api)
    check_name("set_api_price", "model", model)
    i = check_money("set_api_price", "input_per_million_usd", input_per_million_usd)
    o = check_money("set_api_price", "output_per_million_usd", output_per_million_usd)
    with _prices_lock:
        _prices[(api, model)] = (i, o)


def prices() -> dict[tuple[str, str], tuple[float, float]]:
    """A copy of the price table: ``{(api, model): (input_per_million, output_per_million)}``.

    >>> isinstance(prices(), dict)
    True
    """
    with _prices_lock:
        return dict(_prices)


def clear_prices() -> None:
    """Forget every price set with :func:`set_api_price` (tests, reconfiguration)."""
    with _prices_lock:
        _prices.clear()


def cost_of(api: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Cost in USD from the price table, None when (api, model) has no price.

    >>> set_api_price("acme", "m1", input_per_million_usd=1.0, output_per_million_usd=2.0)
    >>> cost_of("acme", "m1", 1_000_000, 500_000)
    2.0
    """
    p = _prices.get((api, model))
    if p is None:
        return None
    return (input_tokens * p[0] + output_tokens * p[1]) / 1_000_000
