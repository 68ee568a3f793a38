"""The one ``os.register_at_fork`` hook and the registry of what to reset in the child.

A lock held by another thread at ``fork()`` is never released in the child, and tables filled
by the parent's requests would be counted twice, so objects that hold locks or per-process
state register a reset here.  Bound methods are held weakly (an object that goes away or
:func:`forget`\\ s itself is no longer called); plain functions are held strongly.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("otelperf")

_lock = threading.Lock()
# id of the callback (or of the bound method's object and function) -> a way to get it back.
_resets: dict[tuple[int, ...], Callable[[], Callable[[], None] | None]] = {}
# The same for callbacks run in the parent just before fork() and just after it.
_befores: dict[tuple[int, ...], Callable[[], Callable[[], None] | None]] = {}
_parents: dict[tuple[int, ...], Callable[[], Callable[[], None] | None]] = {}


def _key(callback: Callable[[], None]) -> tuple[int, ...]:
    obj = getattr(callback, "__self__", None)
    if obj is not None:
        return (id(obj), id(getattr(callback, "__func__", callback)))
    return (id(callback),)


def on_fork(callback: Callable[[], None]) -> None:
    """Call ``callback()`` in the child after every ``fork()``.

    A bound method is held through a weak reference: registering one does not keep its object
    alive.

    >>> class Table:
    ...     def reset(self) -> None: ...
    >>> on_fork(Table().reset)
    """
    _register(_resets, callback)


def around_fork(before: Callable[[], None], after_in_parent: Callable[[], None]) -> None:
    """Call ``before()`` in the parent just before every ``fork()`` and ``after_in_parent()``
    just after it (held like :func:`on_fork`'s): e.g. hold a lock across the fork so that the
    child never inherits it half-way through a critical section."""
    _register(_befores, before)
    _register(_parents, after_in_parent)


def _register(
    table: dict[tuple[int, ...], Callable[[], Callable[[], None] | None]],
    callback: Callable[[], None],
) -> None:
    ref: Callable[[], Callable[[], None] | None]
    if getattr(callback, "__self__", None) is not None:
        weak: Any = weakref.WeakMethod(callback)
        key = _key(callback)

        def ref() -> Callable[[], None] | None:
            method = weak()
            if method is None:
                table.pop(key, None)
            return method  # type: ignore[no-any-return]

    else:

        def ref() -> Callable[[], None] | None:
            return callback

    with _lock:
        table[_key(callback)] = ref


def forget(callback: Callable[[], None]) -> None:
    """Stop calling ``callback`` around fork (an object shutting down)."""
    with _lock:
        _resets.pop(_key(callback), None)
        _befores.pop(_key(callback), None)
        _parents.pop(_key(callback), None)


def _run_all(table: dict[tuple[int, ...], Callable[[], Callable[[], None] | None]]) -> None:
    for ref in list(table.values()):
        callback = ref()
        if callback is not None:
            try:
                callback()
            except Exception as exc:  # never stop the application's fork
                _log.warning("otelperf: a fork hook failed: %s", exc)


def _before_in_parent() -> None:
    _run_all(_befores)


def _after_in_parent() -> None:
    _run_all(_parents)


def _after_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # the registry's own lock first
    for ref in list(_resets.values()):
        callback = ref()
        if callback is not None:
            try:
                callback()
            except Exception as exc:  # one failing reset must not stop the others
                _log.warning("otelperf: a reset after fork failed: %s", exc)


def registered() -> int:
    """How many resets are registered (tests)."""
    return sum(1 for ref in list(_resets.values()) if ref() is not None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_in_parent, after_in_parent=_after_in_parent, after_in_child=_after_in_child
    )
