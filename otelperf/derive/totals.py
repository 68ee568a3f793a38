"""Cumulative totals per root and (root, operation) pair, with bounded label sets.

:meth:`Totals.add_root` runs once per local root, when it ends: the attribution (pure integer
functions, otelperf.derive.attribution) and then, under one lock, integer additions into named
fields.  Observable counters read the totals at scrape time, so ending a root costs no OTel
instrument call at all.  Operation names past ``max_operations`` (and pairs past
``max_operations * PAIRS_PER_OPERATION``) are recorded as ``__overflow__``.
"""

from __future__ import annotations

import threading

from opentelemetry.metrics import Observation

from otelperf import _names as N
from otelperf._core.labels import safe_label
from otelperf._core.selfmetrics import Tally
from otelperf._core.warn import Once
from otelperf.derive.attribution import SpanTuple, attribute_fast
from otelperf.derive.traces import COMPONENT

# (root, operation) pairs allowed per distinct name: enough for every root to contain every
# operation of a typical service, still bounded when names are abused.
PAIRS_PER_OPERATION = 10


class RootTotal:
    """One root operation: its attributes, summed duration (ns) and root count."""

    __slots__ = ("attrs", "count", "duration", "label")

    def __init__(self, label: str) -> None:
        self.label = label
        self.attrs = {N.ROOT_OPERATION: label}
        self.duration = 0
        self.count = 0


class PairTotal:
    """One (root, operation) pair: summed critical-path and self time (ns)."""

    __slots__ = ("attrs", "critical", "self_time")

    def __init__(self, root: str, operation: str) -> None:
        self.attrs = {N.ROOT_OPERATION: root, N.OPERATION: operation}
        self.critical = 0
        self.self_time = 0


class Totals:
    """The roots and pairs tables and the operation-name cap; ``lock`` guards them all.

    >>> t = Totals(10, Tally(N.COMPONENT))
    >>> t.add_root(1, [(1, 0, "GET /", 0, 5_000_000)])
    >>> [(o.value, o.attributes) for o in t.observe_roots()]
    [(1, {'root_operation': 'GET /'})]
    """

    def __init__(self, max_operations: int, overflows: Tally) -> None:
        self.max_operations = max_operations
        self.max_pairs = max_operations * PAIRS_PER_OPERATION
        self.overflows = overflows
        self.lock = threading.Lock()
        self.names: dict[str, str] = {}
        self.pairs: dict[tuple[str, str], PairTotal] = {}
        self.roots: dict[str, RootTotal] = {}
        # root name -> (its roots entry, {operation name -> its pairs entry}): one lookup per
        # operation when a root ends.  Only names under the caps are cached here.
        self.fast: dict[str, tuple[RootTotal, dict[str, PairTotal]]] = {}
        self._warned = Once()

    def add_root(self, root_id: int, spans: list[SpanTuple]) -> None:
        """Attribute one ended root's spans and add them up (the root's own tuple included)."""
        if len(spans) == 1:  # a root without ended children (a one-span request): all its own
            _, _, root, start, end = spans[0]
            duration = end - start if end > start else 0
            critical = self_time = {root: duration}
        else:
            root, duration, critical, self_time, _ = attribute_fast(root_id, spans)
        lock = self.lock
        lock.acquire()  # once per request: acquire/release cost half of ``with`` here
        try:
            r, ops = self.fast.get(root) or self._root_entry(root)
            r.duration += duration
            r.count += 1
            if critical is self_time:  # no overlap anywhere: the two are one dict
                for name, v in self_time.items():
                    q = ops.get(name) or self._pair_entry(r, ops, name)
                    q.critical += v
                    q.self_time += v
            else:
                for name, cp in critical.items():
                    q = ops.get(name) or self._pair_entry(r, ops, name)
                    q.critical += cp
                    q.self_time += self_time[name]
        finally:
            lock.release()

    # -- the capped tables (under self.lock) ----------------------------------------------------
    def label(self, name: str) -> str:
        """The label for an operation name: itself, or ``__overflow__`` past the cap."""
        names = self.names
        label = names.get(name)
        if label is None:
            if len(names) >= self.max_operations:
                self.overflow(N.OPERATION)
                return N.OVERFLOW
            label = names[name] = safe_label(name)  # once per distinct name
        return label

    def overflow(self, what: str) -> None:
        """Count one overflow of the processor; warn the first time."""
        self.overflows.add(COMPONENT)
        self._warned.warn(
            "overflow",
            "otelperf: the processor reached max_operations=%d distinct %s values; further "
            "ones are recorded as %r", self.max_operations, what, N.OVERFLOW,
        )  # fmt: skip

    def _root_entry(self, name: str) -> tuple[RootTotal, dict[str, PairTotal]]:
        root = self.label(name)
        r = self.roots.get(root)
        if r is None:
            r = self.roots[root] = RootTotal(root)
        if name in self.names:  # under the cap (its label may differ: made safe)
            fast = self.fast.get(name)
            if fast is None:
                fast = self.fast[name] = (r, {})
            return fast
        return r, {}  # over the cap: not cached, so abuse cannot grow the table

    def _pair_entry(self, r: RootTotal, ops: dict[str, PairTotal], name: str) -> PairTotal:
        pairs = self.pairs
        root = r.label
        op = self.label(name)
        key = (root, op)
        p = pairs.get(key)
        if p is None:
            if len(pairs) >= self.max_pairs and op != N.OVERFLOW:
                self.overflow(N.OPERATION)
                key = (root, N.OVERFLOW)
                p = pairs.get(key)
            if p is None:
                p = pairs[key] = PairTotal(*key)
        if name in self.names and key[1] == op and root != N.OVERFLOW:
            ops[name] = p
        return p

    # -- readers of the observable counters (scrape time) ----------------------------------------
    def observe_critical(self) -> list[Observation]:
        with self.lock:
            return [Observation(v.critical / 1e9, v.attrs) for v in self.pairs.values()]

    def observe_self(self) -> list[Observation]:
        with self.lock:
            return [Observation(v.self_time / 1e9, v.attrs) for v in self.pairs.values()]

    def observe_duration(self) -> list[Observation]:
        with self.lock:
            return [Observation(v.duration / 1e9, v.attrs) for v in self.roots.values()]

    def observe_roots(self) -> list[Observation]:
        with self.lock:
            return [Observation(v.count, v.attrs) for v in self.roots.values()]
