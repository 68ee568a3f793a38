"""The trace table: which local root each ended span is filed under, sealing, TTL sweep, drops.

Per span the table does no work when the span starts (unless it is a local root) and, when it
ends, one dict lookup (its trace's root, by trace id) and one list append of a ``(id, parent,
name, start, end)`` tuple, without a lock.  When a local root ends its spans are sealed and
handed to ``finish`` (the totals: attribution runs there, unlocked).  Only a trace with several
local roots in flight at once registers its spans as they start, so each is filed under its own
root.  :meth:`TraceTable.on_start` and :meth:`TraceTable.on_end` *are* the processor's hooks
(it binds them at set-up): everything they touch is an attribute of this one object, read
directly, with no call per span the old single class did not make.

Bounded memory: at most ``max_traces`` local roots are tracked (further roots and their spans
are dropped, reason ``capacity``), at most ``max_held`` spans held across all of them (further
ones are dropped, reason ``capacity``: the bound that keeps the worst case to tens of MB rather
than ``max_traces * max_spans`` spans), at most ``max_spans`` spans per root (``truncated``), roots
still open after ``ttl`` seconds are discarded by a sweep that runs when a root starts and at
scrape time (``expired``; no thread), and spans ending after their root are ``late``.
"""

from __future__ import annotations

import threading
from bisect import bisect_left as _bisect
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from otelperf import _names as N
from otelperf._core.selfmetrics import Tally
from otelperf.derive.attribution import SpanTuple

COMPONENT = "processor"

CAPACITY = "capacity"
TRUNCATED = "truncated"
EXPIRED = "expired"
LATE = "late"
REASONS = (CAPACITY, TRUNCATED, EXPIRED, LATE)

BY_NAME_MAX = 4096  # span names whose entry on_end keeps; past it each goes through the namer

_CLIENT = SpanKind.CLIENT
_INTERNAL = SpanKind.INTERNAL
_ERROR = StatusCode.ERROR
# The SDK gives every span whose status was never set one shared default Status: recognising
# it by identity spares the status_code read for most spans.
_UNSET_DEFAULT = ReadableSpan("probe").status
_CACHE_NAME = N.ATTR_CACHE_NAME

Finish = Callable[[int, list[SpanTuple]], None]
Account = Callable[[ReadableSpan, Any, Any], None]
# SpanNamer.classify(name, kind, attributes, error) -> (operation, outcome, error_type) | None
Classify = Callable[[str, Any, Any, bool], "tuple[str, str, str] | None"]


class Root:
    """One tracked local root in flight and the ended spans filed under it."""

    __slots__ = ("expired", "n_sealed", "root_id", "sealed", "seen", "spans", "started", "trace_id")

    def __init__(self, root_id: int, trace_id: int, seen: float) -> None:
        # One of these per request: only what every request needs is set here; ``expired``,
        # ``sealed`` and ``n_sealed`` are set by seal().
        self.root_id = root_id
        self.trace_id = trace_id
        self.seen = seen
        self.spans: list[SpanTuple] | None = []  # None once sealed: the root ended or expired
        # The span ids registered under it, its own first, once its trace has several roots.
        self.started: list[int] | None = None

    def seal(self, expired: bool) -> list[SpanTuple]:
        """Take the ended spans (under the table's lock); later ones are settled apart.

        ``spans`` is set to None before its length is read: an on_end that appended to the
        list and then still sees it current was counted here (see ``_settle``).
        """
        spans = self.spans if self.spans is not None else []
        self.spans = None
        self.expired = expired
        self.sealed = spans  # the list as sealed: its first n_sealed entries are counted
        n = self.n_sealed = len(spans)
        return spans[:n]


class Shared:
    """A trace with more than one tracked local root in flight (a service calling itself, many
    queue messages of one producer trace): the root each span started under, by span id."""

    __slots__ = ("owner", "roots")

    def __init__(self) -> None:
        self.owner: dict[int, Root] = {}
        self.roots = 0  # tracked roots of the trace in flight

    def add(self, root: Root) -> None:
        root.started = [root.root_id]
        self.owner[root.root_id] = root
        self.roots += 1


class TraceBook:
    """The local roots in flight and the spans filed under each, and their bookkeeping.

    ``finish(root_id, spans)`` receives each root's sealed spans (unlocked); ``account(span,
    attributes, kind)`` each ended CLIENT or cache span; failures are counted in ``errors``.
    """

    def __init__(
        self,
        *,
        max_traces: int,
        max_spans: int,
        ttl: float,
        clock: Callable[[], float],
        finish: Finish,
        account: Account,
        errors: Tally,
        classify: Classify,
        red: Any,
        max_held: int = 200_000,
        plain_names: bool = False,
    ) -> None:
        self.max_traces = max_traces
        self.max_held = max_held
        # Spans held under all roots in flight: incremented without the lock (so a rare lost
        # update under contention), decremented when a root is sealed, and recounted exactly
        # by every sweep (at most a second apart), so it never drifts for long.
        self.held = 0
        self.max_spans = max_spans
        self.max_children = max_spans - 1  # the root itself is the last one
        self.ttl = ttl
        self.sweep_every = min(1.0, ttl / 4)
        self.clock = clock
        self.finish = finish
        self.account = account
        self.classify = classify
        # The duration series (otelperf.derive.red.Red, which imports this module): on_end adds
        # to them inline, as Red.record does, so a span costs no extra call.
        self.red = red
        self.red_series = red.series
        self.red_bounds = red.bounds
        self.red_lock = red.lock
        # span name -> its duration series (the operation is the name), or False for noise,
        # for spans whose name alone names them (see on_end).  Filled only when
        # ``plain_names`` (the namer is SpanNamer, whose answer for such a span depends on its
        # name alone) and bounded like the namer's caches.
        self.by_name: dict[str, Any] = {}
        self.plain_names = plain_names
        self.errors = errors
        self.closed = False
        self.lock = threading.Lock()
        self.roots: dict[int, Root] = {}  # root span id -> root, oldest first (TTL sweep)
        # trace id -> the root its spans are filed under.  Spans are not registered when they
        # start: a trace with one local root in flight (nearly all) files every span under it.
        self.traces: dict[int, Root] = {}
        self.shared: dict[int, Shared] = {}  # traces with several tracked roots in flight
        self.tombstones: dict[int, str] = {}  # trace_id -> why its spans are not tracked
        self.dropped: dict[str, int] = {}
        self.next_sweep = clock() + self.sweep_every

    def _share(self, trace_id: int, first: Root, root: Root) -> None:
        """A second root of a trace in flight (under the lock): from now on its spans are
        registered when they start, so each is filed under its own root.  Unregistered ones
        (started earlier) stay filed under the first."""
        shared = self.shared.get(trace_id)
        if shared is None:
            shared = self.shared[trace_id] = Shared()
            shared.add(first)
        shared.add(root)

    def _learn(self, name: str, kind: Any, attrs: Any) -> tuple[str, Any]:
        """The operation and series (None: noise) of a span its name alone names, asking the
        namer; kept in ``by_name`` when the namer allows, the operation is the span's name and
        the series is under the caps (a name past them is counted as an overflow on every
        span, so it is never kept)."""
        named = self.classify(name, kind, attrs, False)
        keep = self.plain_names and len(self.by_name) < BY_NAME_MAX
        if named is None:
            if keep:
                self.by_name[name] = False
            return name, None
        series = self.red_series.get(named)
        if series is None:
            series = self.red.add(named)
            keep = keep and self.red_series.get(named) is series
        if keep and named[0] == name:
            self.by_name[name] = series
        return named[0], series

    def _register(self, trace_id: int, parent_id: int, sid: int) -> None:
        with self.lock:
            shared = self.shared.get(trace_id)
            if shared is None:
                return
            root = shared.owner.get(parent_id)
            started = root.started if root is not None and root.spans is not None else None
            if started is not None and len(started) < self.max_spans:
                started.append(sid)
                shared.owner[sid] = root  # type: ignore[assignment]

    def _settle(self, t: Root, tup: SpanTuple | None) -> None:
        """A span of ``t`` ended while its root was finishing or expiring (rare: a race)."""
        with self.lock:
            if tup is not None and t.spans is None:
                sealed = t.sealed
                for i in range(min(t.n_sealed, len(sealed)) - 1, -1, -1):
                    if sealed[i] is tup:
                        return  # it made it into the sealed spans: counted there
            elif tup is not None:
                return  # not sealed yet: the root or the sweep will count it
            reason = EXPIRED if t.expired else LATE
            self.dropped[reason] = self.dropped.get(reason, 0) + 1

    # -- bookkeeping (under self.lock) --------------------------------------------------------
    def _retire(self, root: Root) -> None:
        """``root`` ended or expired: take it out of its trace's tables."""
        trace_id = root.trace_id
        shared = self.shared.get(trace_id)
        if shared is None:
            if self.traces.get(trace_id) is root:
                del self.traces[trace_id]
            return
        owner = shared.owner
        for s in root.started or ():
            owner.pop(s, None)  # its spans ending later are filed under the first root
        shared.roots -= 1
        if shared.roots <= 0:
            del self.shared[trace_id]
            self.traces.pop(trace_id, None)

    def _tombstone(self, trace_id: int, reason: str) -> None:
        tombs = self.tombstones
        tombs[trace_id] = reason
        if len(tombs) > self.max_traces:
            del tombs[next(iter(tombs))]

    def _count_missing(self, trace_id: int) -> None:
        reason = self.tombstones.get(trace_id, LATE)
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _sweep(self, now: float) -> None:
        self.next_sweep = now + self.sweep_every
        deadline = now - self.ttl
        roots = self.roots
        while roots:
            sid = next(iter(roots))  # insertion order = oldest first
            root = roots[sid]
            if root.seen > deadline:
                break
            del roots[sid]
            self._retire(root)
            n = len(root.seal(True))
            if n:
                self.dropped[EXPIRED] = self.dropped.get(EXPIRED, 0) + n
            self._tombstone(root.trace_id, EXPIRED)
        self.held = sum(len(r.spans) for r in roots.values() if r.spans is not None)

    # -- readings (scrape time) and shutdown ----------------------------------------------------
    def in_flight(self) -> int:
        """Roots in flight, after expiring stuck ones (no traffic means no sweep otherwise)."""
        with self.lock:
            self._sweep_if_due()
            return len(self.roots)

    def dropped_counts(self) -> dict[str, int]:
        """Spans dropped so far, by reason, after expiring stuck roots."""
        with self.lock:
            self._sweep_if_due()
            return dict(self.dropped)

    def _sweep_if_due(self) -> None:
        now = self.clock()
        if now >= self.next_sweep:
            self._sweep(now)

    def clear(self) -> None:
        """Stop filing and forget the roots in flight (the processor shut down)."""
        self.closed = True
        with self.lock:
            self.roots.clear()
            self.traces.clear()
            self.shared.clear()
            self.tombstones.clear()
            self.held = 0


class PublicView:
    """A span read through its public properties, under the field names the hooks read: for
    spans other than the SDK's own (or whose attributes are a plain mapping), and for every
    span when sdk_compat's probe did not recognise the installed SDK's layout."""

    __slots__ = (
        "_attributes", "_context", "_dict", "_end_time", "_kind", "_name", "_parent",
        "_start_time", "_status", "end_time", "start_time",
    )  # fmt: skip

    def __init__(self, span: Any) -> None:
        self._context = span.context
        self._parent = span.parent
        self._name = span.name
        self.start_time = self._start_time = span.start_time
        self.end_time = self._end_time = getattr(span, "end_time", None)
        self._kind = span.kind
        self._status = getattr(span, "status", _UNSET_DEFAULT)
        self._dict = getattr(span, "attributes", None)
        self._attributes = self  # so that ``_attributes._dict`` reads the mapping above


class TraceTable(TraceBook):
    """The processor's hooks over the book (a subclass, so the hot path reads the book's
    fields as its own attributes: no indirection per span)."""

    # -- the hooks (bound as the processor's on_start/on_end) ---------------------------------
    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        """A span started: a local root is tracked; a child is registered only when its trace
        has several roots in flight."""
        try:
            # Called for every span: the SDK span's fields and SpanContext's tuple slots
            # (trace_id, span_id, is_remote) rather than properties (sdk_compat probes them at
            # import; a span without them is read through its properties, see PublicView).
            # A child costs these few lines: ``closed`` is read by roots only (a closed table
            # has no shared traces to register children in).
            try:
                parent: Any = span._parent
            except AttributeError:
                if type(span) is PublicView:
                    raise
                return self.on_start(PublicView(span))
            if parent is not None and not parent[2]:
                if self.shared and parent[0] in self.shared:  # several roots: register
                    self._register(parent[0], parent[1], span._context[1])
                return  # a child: nothing to do until it ends
            ctx: Any = span._context
            trace_id, sid = ctx[0], ctx[1]
            if self.closed:
                return
            # A local root: once per request, so inline (a frame costs), with acquire/release
            # (half the cost of ``with`` here); the rare cases go to helpers.
            now = self.clock()
            lock = self.lock
            lock.acquire()
            try:
                if now >= self.next_sweep:
                    self._sweep(now)
                roots = self.roots
                if len(roots) >= self.max_traces:
                    self._tombstone(trace_id, CAPACITY)
                    return
                root = roots[sid] = Root(sid, trace_id, now)
                first = self.traces.setdefault(trace_id, root)
                if first is not root:
                    self._share(trace_id, first, root)
            finally:
                lock.release()
        except Exception as exc:  # never into the application
            self.errors.error(COMPONENT, exc)

    def on_end(self, span: Any) -> None:
        """A span ended: a child is filed under its root; a root is sealed and finished.
        (A shut-down processor stops calling this; ``closed`` is read where a span would be
        counted missing.)"""
        ctx: Any
        parent: Any
        start: Any
        end: Any
        try:
            try:
                # What the SDK passes: its fields, not the properties (which cost ~5x here and
                # build a new MappingProxyType for ``attributes`` on each read), and the plain
                # dict inside its BoundedAttributes (whose Mapping.get answers a missing key
                # with a raised and caught KeyError, ~1 us each here).  Anything else (a
                # hand-made ReadableSpan, a plain dict of attributes) is read through its
                # properties (PublicView).
                ctx = span._context
                parent = span._parent
                name = span._name
                start = span._start_time
                end = span._end_time
                kind = span._kind
                status = span._status
                attrs = span._attributes._dict
            except AttributeError:
                if type(span) is PublicView:
                    raise
                return self.on_end(PublicView(span))
            pid = 0 if parent is None or parent[2] else parent[1]
            # Every span: its meaningful name, outcome and error type (noise is left out of
            # the histograms and not filed, so its time stays with its parent), then one
            # observation of its duration.  A span whose name alone names it (no attributes
            # that matter, no error: most INTERNAL spans) is looked up by name in one dict,
            # straight to its series; the others go through the namer.
            if (kind is _INTERNAL or not attrs) and (
                status is _UNSET_DEFAULT or status.status_code is not _ERROR
            ):
                series = self.by_name.get(name)
                if not series:
                    if series is None:
                        name, series = self._learn(name, kind, attrs)
                    else:
                        series = None  # noise
            else:
                named = self.classify(
                    name, kind, attrs, status is not _UNSET_DEFAULT and status.status_code is _ERROR
                )
                if named is not None:
                    name = named[0]
                    series = self.red_series.get(named) or self.red.add(named)
                else:
                    series = None
            if series is not None:
                d = end - start if end > start else 0
                i = _bisect(self.red_bounds, d)
                rlock = self.red_lock
                rlock.acquire()
                series.counts[i] += 1
                series.sum_ns += d
                rlock.release()
                if ctx[3] & 1:  # sampled (trace_flags, SpanContext's 4th slot): an exemplar
                    series.exemplars[i] = (ctx, d, end)
            elif pid:
                if attrs and (kind is _CLIENT or _CACHE_NAME in attrs):
                    self.account(span, attrs, kind)
                return
            if pid:
                root = self.traces.get(ctx[0])
                if root is None:
                    if not self.closed:
                        with self.lock:
                            self._count_missing(ctx[0])
                else:
                    if self.shared:
                        shared = self.shared.get(ctx[0])
                        if shared is not None:
                            root = shared.owner.get(ctx[1], root)
                    # Lock-free: a list append is atomic.  Append first, then look again: if
                    # the root was sealed meanwhile, _settle decides under the lock whether
                    # the seal counted this span.
                    spans = root.spans
                    if spans is None:
                        self._settle(root, None)
                    elif len(spans) < self.max_children:
                        if self.held < self.max_held:
                            tup = (ctx[1], pid, name, start, end)
                            spans.append(tup)
                            self.held += 1
                            if root.spans is None:
                                self._settle(root, tup)
                        else:  # the global cap on held spans
                            with self.lock:
                                self.dropped[CAPACITY] = self.dropped.get(CAPACITY, 0) + 1
                    else:
                        with self.lock:
                            self.dropped[TRUNCATED] = self.dropped.get(TRUNCATED, 0) + 1
            else:
                # A local root: once per request, so inline (a frame costs), with
                # acquire/release (half the cost of ``with`` here); attribution runs unlocked.
                sid = ctx[1]
                sealed = None
                lock = self.lock
                lock.acquire()
                try:
                    root = self.roots.pop(sid, None)
                    if root is None:  # not tracked (capacity) or expired meanwhile
                        if not self.closed:
                            self._count_missing(ctx[0])
                    else:
                        root.spans.append((sid, 0, name, start, end))  # type: ignore[union-attr]
                        if self.shared:
                            self._retire(root)
                        else:  # _retire's usual case: the trace's only root
                            del self.traces[ctx[0]]
                        sealed = root.seal(False)
                        self.held -= len(sealed) - 1  # its children (its own tuple was not held)
                finally:
                    lock.release()
                if sealed is not None:
                    self.finish(sid, sealed)
            if attrs and (kind is _CLIENT or _CACHE_NAME in attrs):
                self.account(span, attrs, kind)
        except Exception as exc:  # never into the application
            self.errors.error(COMPONENT, exc)
