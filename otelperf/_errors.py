"""Counters of otelperf's own failures and label overflows, exposed as observable counters.

The hot path must never raise into the application, so failures are caught where they happen
and counted here; a scrape shows them as ``otelperf_internal_errors_total{component}``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Observation

_log = logging.getLogger("otelperf")


class Tally:
    """Thread-safe counts per label value (a handful of fixed keys: components, reasons)."""

    __slots__ = ("_counts", "_label", "_lock", "_logged")

    def __init__(self, label: str) -> None:
        self._label = label
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._logged: set[str] = set()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def error(self, key: str, exc: BaseException) -> None:
        """Count a caught failure and log the first one per key with its traceback."""
        self.add(key)
        if key not in self._logged:
            self._logged.add(key)
            _log.error("otelperf %s failed; counted in otelperf_internal_errors_total, the "
                       "application is unaffected", key, exc_info=exc)  # fmt: skip

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(v, {self._label: k}) for k, v in self.snapshot().items()]
