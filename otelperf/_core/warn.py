"""Warn once: the one implementation of "log this the first time only".

A warning that fires per call would flood an application's log, so every "you will lose data
because ..." message goes through a :class:`Once`: a module-wide one (:func:`warn_once`) for
process-wide conditions, or one per object when each object should warn for itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable

log = logging.getLogger("otelperf")


class Once:
    """Remembers keys; :meth:`first` is True for a key the first time only.

    >>> once = Once()
    >>> once.first("a"), once.first("a"), once.first("b")
    (True, False, True)
    """

    __slots__ = ("_lock", "_seen")

    def __init__(self) -> None:
        self._seen: set[Hashable] = set()
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        if key in self._seen:  # the common case, lock-free
            return False
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True

    def warn(self, key: Hashable, message: str, *args: object) -> None:
        """Log ``message % args`` as a warning on the "otelperf" logger, once per key."""
        if self.first(key):
            log.warning(message, *args)

    def clear(self) -> None:
        """Forget every key (tests; a fresh start after fork)."""
        with self._lock:
            self._seen.clear()

    def after_fork(self) -> None:
        self._lock = threading.Lock()


_process_wide = Once()


def warn_once(key: Hashable, message: str, *args: object) -> None:
    """Log a process-wide warning the first time ``key`` is seen.

    >>> warn_once(("doc", 1), "otelperf: shown once")  # doctest: +SKIP
    """
    _process_wide.warn(key, message, *args)
