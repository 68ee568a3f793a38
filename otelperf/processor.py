"""BottleneckSpanProcessor: critical path, self time, cache and external-API counters.

Per span the processor does no work when the span starts (unless it is a local root) and, when
it ends, one dict lookup (its trace's root, by trace id) and one list append of a ``(id, parent,
name, start, end)`` tuple, without a lock.  The attribution (otelperf._attribution, pure integer
functions) runs once per local root, when the root ends; spans are matched to it through their
parent ids then.  Only a trace with several local roots in flight at once registers its spans
as they start, so each is filed under its own root.  Totals are plain integers read by
observable counters at scrape time, so ending a root costs no OTel instrument call at all.

Bounded memory: at most ``max_traces_in_flight`` local roots are tracked (further roots and
their spans are dropped, reason ``capacity``), at most ``max_spans_per_trace`` spans per root
(``truncated``), roots still open after ``trace_ttl_seconds`` are discarded by a sweep that
runs when a root starts and at scrape time (``expired``; no thread), spans ending after their
root are ``late``, and operation names past ``max_operations`` are recorded as ``__overflow__``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanContext, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otelperf import _names as N
from otelperf import apis
from otelperf._attribution import SpanTuple, attribute_fast
from otelperf._errors import Tally
from otelperf._per_provider import PerProvider

_log = logging.getLogger("otelperf")

METER_NAME = "otelperf.processor"
COMPONENT = "processor"

CAPACITY = "capacity"
TRUNCATED = "truncated"
EXPIRED = "expired"
LATE = "late"
REASONS = (CAPACITY, TRUNCATED, EXPIRED, LATE)

# (root, operation) pairs allowed per distinct name: enough for every root to contain every
# operation of a typical service, still bounded when names are abused.
PAIRS_PER_OPERATION = 10
_CLIENT = SpanKind.CLIENT
_CACHE_NAME = N.ATTR_CACHE_NAME


def _probe_fields() -> bool:
    """Whether ReadableSpan keeps the private fields on_end reads directly (else: properties)."""
    try:
        sc = SpanContext(1, 2, False)
        span = ReadableSpan(
            "probe", sc, sc, start_time=1, end_time=2, attributes={"a": 1}, kind=_CLIENT
        )
        fields = (span._context, span._parent, span._name, span._start_time, span._end_time)
        slots = (sc[0], sc[1], sc[2]) == (sc.trace_id, sc.span_id, sc.is_remote) == (1, 2, False)
        return (
            slots
            and fields == (sc, sc, "probe", 1, 2)
            and dict(span._attributes or {}) == {"a": 1}
            and span._kind is span.kind is _CLIENT
        )
    except Exception:
        return False


_DIRECT_FIELDS = _probe_fields()
# The classes whose fields the hooks read directly: the span the SDK's tracer makes (on_start)
# and the ReadableSpan it passes to on_end.  None when the probe fails: properties throughout.
_SDK_SPAN: Any = getattr(sdk_trace, "_Span", None) if _DIRECT_FIELDS else None
_READABLE: Any = ReadableSpan if _DIRECT_FIELDS else None


class _Root:
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
        """Take the ended spans (under the processor's lock); later ones are settled apart.

        ``spans`` is set to None before its length is read: an on_end that appended to the
        list and then still sees it current was counted here (see ``_settle``).
        """
        spans = self.spans if self.spans is not None else []
        self.spans = None
        self.expired = expired
        self.sealed = spans  # the list as sealed: its first n_sealed entries are counted
        n = self.n_sealed = len(spans)
        return spans[:n]


class _Shared:
    """A trace with more than one tracked local root in flight (a service calling itself, many
    queue messages of one producer trace): the root each span started under, by span id."""

    __slots__ = ("owner", "roots")

    def __init__(self) -> None:
        self.owner: dict[int, _Root] = {}
        self.roots = 0  # tracked roots of the trace in flight

    def add(self, root: _Root) -> None:
        root.started = [root.root_id]
        self.owner[root.root_id] = root
        self.roots += 1


class _Instruments:
    """The instruments on one meter provider; their callbacks read its current processor.

    The SDK keeps the first instrument of a name and drops a later duplicate's callback, so a
    processor replacing another on the same provider (configure, shutdown, configure again)
    must reuse these rather than create its own.
    """

    def __init__(self, meter: Meter) -> None:
        self.current: BottleneckSpanProcessor | None = None
        for metric, field in (
            (N.CRITICAL_PATH, "critical"),
            (N.SELF_TIME, "self"),
            (N.ROOT_DURATION, "duration"),
            (N.ROOTS, "roots"),
            (N.DROPPED_SPANS, "dropped"),
            (N.INTERNAL_ERRORS, "errors"),
            (N.CARDINALITY_OVERFLOW, "overflows"),
            (N.CACHE_REQUESTS, "cache"),
            (N.API_CALLS, "api_calls"),
            (N.API_TOKENS, "api_tokens"),
            (N.API_COST, "api_cost"),
        ):
            meter.create_observable_counter(
                metric.otel, callbacks=[self._callback(field)], unit=metric.unit,
                description=metric.help,
            )  # fmt: skip
        g = N.TRACES_IN_FLIGHT
        meter.create_observable_up_down_counter(
            g.otel, callbacks=[self._callback("in_flight")], unit=g.unit, description=g.help
        )
        d = N.API_CALL_DURATION
        self.api_duration = meter.create_histogram(
            d.otel, unit=d.unit, description=d.help,
            explicit_bucket_boundaries_advisory=list(N.DEFAULT_DURATION_BUCKETS),
        )  # fmt: skip

    def _callback(self, field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            p = self.current
            if p is None:
                return []
            try:
                return p._observe(field)
            except Exception as exc:
                p._errors.error(COMPONENT, exc)
                return []

        return observe


def _make_instruments(meter_provider: Any) -> _Instruments:
    from otelperf import __version__

    return _Instruments(meter_provider.get_meter(METER_NAME, __version__))


_instruments = PerProvider(_make_instruments)


class _Totals:
    """Cumulative integer totals behind the observable counters, with bounded label sets."""

    def __init__(self, max_operations: int) -> None:
        self.max_operations = max_operations
        self.max_pairs = max_operations * PAIRS_PER_OPERATION
        self.names: dict[str, str] = {}
        # key -> [attributes, value, value]; values are ints except cost (float).
        self.pairs: dict[tuple[str, str], list[Any]] = {}
        self.roots: dict[str, list[Any]] = {}
        # root name -> (its roots entry, {operation name -> its pairs entry}): one lookup per
        # operation when a root ends.  Only names under the caps are cached here.
        self.fast: dict[str, tuple[list[Any], dict[str, list[Any]]]] = {}
        self.cache: dict[tuple[str, str], list[Any]] = {}
        self.api_keys: dict[tuple[str, str], tuple[str, str]] = {}
        self.api_calls: dict[tuple[str, str, str], list[Any]] = {}
        self.api_tokens: dict[tuple[str, str, str], list[Any]] = {}
        self.api_cost: dict[tuple[str, str], list[Any]] = {}


def _is_default_parent_based(sampler: Sampler) -> bool:
    """ParentBased(ALWAYS_ON) with its default sub-samplers (the SDK's default sampler)?"""
    return (
        type(sampler) is ParentBased
        and getattr(sampler, "_root", None) is ALWAYS_ON
        and getattr(sampler, "_remote_parent_sampled", None) is ALWAYS_ON
        and getattr(sampler, "_remote_parent_not_sampled", None) is ALWAYS_OFF
        and getattr(sampler, "_local_parent_sampled", None) is ALWAYS_ON
        and getattr(sampler, "_local_parent_not_sampled", None) is ALWAYS_OFF
    )


class RecordEverythingSampler(Sampler):
    """Wraps the application's sampler: RECORD_ONLY where it would DROP.

    Every span then reaches span processors, so otelperf's metrics are complete, while the
    trace flags still say "not sampled" and exporting processors (Batch/SimpleSpanProcessor)
    skip those spans exactly as before.  ``active = False`` turns it into a pass-through.
    """

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate
        self.active = True
        self._parent_based_always_on = _is_default_parent_based(delegate)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Any = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if self._parent_based_always_on and self.active:
            # The SDK's default sampler, decided in one step (it is called for every span):
            # sampled like the parent, a root sampled; where it would DROP, RECORD_ONLY.
            parent = get_current_span(parent_context).get_span_context()
            if not parent.is_valid:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, None)
            if parent.trace_flags.sampled:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
            return SamplingResult(Decision.RECORD_ONLY, None, parent.trace_state)
        r = self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if r.decision is Decision.DROP and self.active:
            return SamplingResult(Decision.RECORD_ONLY, r.attributes, r.trace_state)
        return r

    def get_description(self) -> str:
        return f"RecordEverything{{{self.delegate.get_description()}}}"


class BottleneckSpanProcessor(SpanProcessor):
    """Turns each request's spans into critical-path, self-time, cache and API metrics.

    Add it to any SDK TracerProvider (``configure()`` adds one for you); with
    ``meter_provider`` it registers its instruments there, else on the global one.

    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> tp = TracerProvider()
    >>> tp.add_span_processor(BottleneckSpanProcessor(meter_provider=mp))  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        meter_provider: Any = None,
        max_operations: int = 1000,
        max_traces_in_flight: int = 10000,
        max_spans_per_trace: int = 1000,
        trace_ttl_seconds: float = 60.0,
        _clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for arg, value in (("max_operations", max_operations),
                           ("max_traces_in_flight", max_traces_in_flight),
                           ("max_spans_per_trace", max_spans_per_trace)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"BottleneckSpanProcessor({arg}={value!r}): must be an int")
            if value < 1:
                raise ValueError(f"BottleneckSpanProcessor({arg}={value!r}): must be >= 1")
        if (
            isinstance(trace_ttl_seconds, bool)
            or not isinstance(trace_ttl_seconds, (int, float))
            or not trace_ttl_seconds > 0
            or trace_ttl_seconds == float("inf")
        ):
            raise ValueError(
                f"BottleneckSpanProcessor(trace_ttl_seconds={trace_ttl_seconds!r}): must be a "
                "finite number of seconds > 0"
            )
        self.max_operations = max_operations
        self.max_traces_in_flight = max_traces_in_flight
        self.max_spans_per_trace = max_spans_per_trace
        self.trace_ttl_seconds = float(trace_ttl_seconds)
        self._max_children = max_spans_per_trace - 1  # the root itself is the last one
        self._sweep_every = min(1.0, self.trace_ttl_seconds / 4)
        self._clock = _clock
        self._closed = False
        self._init_state()
        mp = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self._instruments = _instruments.get(mp)
        self._instruments.current = self
        apis._register(self)
        if hasattr(os, "register_at_fork"):
            ref = weakref.WeakMethod(self._init_state)

            def _after_fork() -> None:
                method = ref()
                if method is not None:
                    method()

            os.register_at_fork(after_in_child=_after_fork)

    def _init_state(self) -> None:
        # Also the after-fork hook: fresh locks (a parent thread may have held one at fork) and
        # empty tables, so the child counts only its own work.
        self._lock = threading.Lock()
        self._tlock = threading.Lock()
        self._roots: dict[int, _Root] = {}  # root span id -> root, oldest first (TTL sweep)
        # trace id -> the root its spans are filed under.  Spans are not registered when they
        # start: a trace with one local root in flight (nearly all) files every span under it.
        self._traces: dict[int, _Root] = {}
        self._shared: dict[int, _Shared] = {}  # traces with several tracked roots in flight
        self._tombstones: dict[int, str] = {}  # trace_id -> why its spans are not tracked
        self._dropped: dict[str, int] = {}
        self._next_sweep = self._clock() + self._sweep_every
        self._totals = _Totals(self.max_operations)
        self._errors = Tally(N.COMPONENT)
        self._overflows = Tally(N.COMPONENT)
        self._warned_overflow = False

    # -- SpanProcessor -----------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self._closed:
            return
        try:
            if type(span) is _SDK_SPAN:
                # Called for every span: the SDK span's fields and SpanContext's tuple slots
                # (trace_id, span_id, is_remote) rather than properties (probed at import).
                parent: Any = span._parent
                if parent is not None and not parent[2]:
                    if self._shared and parent[0] in self._shared:  # several roots: register
                        self._register(parent[0], parent[1], span._context[1])  # type: ignore[index]
                    return  # a child: nothing to do until it ends
                ctx: Any = span._context
                trace_id, sid = ctx[0], ctx[1]
            else:
                parent, ctx = span.parent, span.context
                if parent is not None and not parent.is_remote:
                    if self._shared and ctx.trace_id in self._shared:
                        self._register(ctx.trace_id, parent.span_id, ctx.span_id)
                    return
                trace_id, sid = ctx.trace_id, ctx.span_id
            # A local root: once per request, so inline (a frame costs), with acquire/release
            # (half the cost of ``with`` here); the rare cases go to helpers.
            now = self._clock()
            lock = self._lock
            lock.acquire()
            try:
                if now >= self._next_sweep:
                    self._sweep(now)
                roots = self._roots
                if len(roots) >= self.max_traces_in_flight:
                    self._tombstone(trace_id, CAPACITY)
                    return
                root = roots[sid] = _Root(sid, trace_id, now)
                first = self._traces.setdefault(trace_id, root)
                if first is not root:
                    self._share(trace_id, first, root)
            finally:
                lock.release()
        except Exception as exc:  # never into the application
            self._errors.error(COMPONENT, exc)

    def _share(self, trace_id: int, first: _Root, root: _Root) -> None:
        """A second root of a trace in flight (under the lock): from now on its spans are
        registered when they start, so each is filed under its own root.  Unregistered ones
        (started earlier) stay filed under the first."""
        shared = self._shared.get(trace_id)
        if shared is None:
            shared = self._shared[trace_id] = _Shared()
            shared.add(first)
        shared.add(root)

    def _register(self, trace_id: int, parent_id: int, sid: int) -> None:
        with self._lock:
            shared = self._shared.get(trace_id)
            if shared is None:
                return
            root = shared.owner.get(parent_id)
            started = root.started if root is not None and root.spans is not None else None
            if started is not None and len(started) < self.max_spans_per_trace:
                started.append(sid)
                shared.owner[sid] = root  # type: ignore[assignment]

    def on_end(self, span: ReadableSpan) -> None:
        if self._closed:
            return
        ctx: Any
        parent: Any
        try:
            if type(span) is _READABLE:
                # What the SDK passes: read its fields, not the properties (which cost ~5x
                # here and build a new MappingProxyType for ``attributes`` on each read).
                ctx, parent, name = span._context, span._parent, span._name
                start, end, attrs = span._start_time, span._end_time, span._attributes
                # BoundedAttributes answers a missing key through Mapping.get, i.e. a raised
                # and caught KeyError per lookup (~1 us each here): read its plain dict.
                attrs = getattr(attrs, "_dict", attrs)
                trace_id, sid = ctx[0], ctx[1]
                pid = 0 if parent is None or parent[2] else parent[1]
                kind = span._kind
            else:
                ctx, parent, name = span.context, span.parent, span.name
                start, end, attrs = span.start_time, span.end_time, span.attributes
                trace_id, sid = ctx.trace_id, ctx.span_id
                pid = 0 if parent is None or parent.is_remote else parent.span_id
                kind = span.kind
            if not pid:
                # A local root: once per request, so inline (a frame costs), with
                # acquire/release (half the cost of ``with`` here); attribution runs unlocked.
                sealed = None
                lock = self._lock
                lock.acquire()
                try:
                    root = self._roots.pop(sid, None)
                    if root is None:  # not tracked (capacity) or expired meanwhile
                        self._count_missing(trace_id)
                    else:
                        root.spans.append((sid, 0, name, start, end))  # type: ignore[union-attr,arg-type]
                        if self._shared:
                            self._retire(root)
                        else:  # _retire's usual case: the trace's only root
                            del self._traces[trace_id]
                        sealed = root.seal(False)
                finally:
                    lock.release()
                if sealed is not None:
                    self._finish(sid, sealed)
            else:
                root = self._traces.get(trace_id)
                if root is None:
                    with self._lock:
                        self._count_missing(trace_id)
                else:
                    if self._shared:
                        shared = self._shared.get(trace_id)
                        if shared is not None:
                            root = shared.owner.get(sid, root)
                    # Lock-free: a list append is atomic.  Append first, then look again: if
                    # the root was sealed meanwhile, _settle decides under the lock whether
                    # the seal counted this span.
                    spans = root.spans
                    if spans is None:
                        self._settle(root, None)
                    elif len(spans) < self._max_children:
                        tup = (sid, pid, name, start, end)
                        spans.append(tup)  # type: ignore[arg-type]
                        if root.spans is None:
                            self._settle(root, tup)  # type: ignore[arg-type]
                    else:
                        with self._lock:
                            self._dropped[TRUNCATED] = self._dropped.get(TRUNCATED, 0) + 1
            if attrs and (kind is _CLIENT or _CACHE_NAME in attrs):
                self._account(span, attrs, kind)
        except Exception as exc:  # never into the application
            self._errors.error(COMPONENT, exc)

    def _settle(self, t: _Root, tup: SpanTuple | None) -> None:
        """A span of ``t`` ended while its root was finishing or expiring (rare: a race)."""
        with self._lock:
            if tup is not None and t.spans is None:
                sealed = t.sealed
                for i in range(min(t.n_sealed, len(sealed)) - 1, -1, -1):
                    if sealed[i] is tup:
                        return  # it made it into the sealed spans: counted there
            elif tup is not None:
                return  # not sealed yet: the root or the sweep will count it
            reason = EXPIRED if t.expired else LATE
            self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def shutdown(self) -> None:
        """Stop processing and forget spans in flight; totals stay readable.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._roots.clear()
            self._traces.clear()
            self._shared.clear()
            self._tombstones.clear()
        apis._unregister(self)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered for export: always True."""
        return True

    # -- bookkeeping (under self._lock) --------------------------------------------------------
    def _retire(self, root: _Root) -> None:
        """``root`` ended or expired: take it out of its trace's tables."""
        trace_id = root.trace_id
        shared = self._shared.get(trace_id)
        if shared is None:
            if self._traces.get(trace_id) is root:
                del self._traces[trace_id]
            return
        owner = shared.owner
        for s in root.started or ():
            owner.pop(s, None)  # its spans ending later are filed under the first root
        shared.roots -= 1
        if shared.roots <= 0:
            del self._shared[trace_id]
            self._traces.pop(trace_id, None)

    def _tombstone(self, trace_id: int, reason: str) -> None:
        tombs = self._tombstones
        tombs[trace_id] = reason
        if len(tombs) > self.max_traces_in_flight:
            del tombs[next(iter(tombs))]

    def _count_missing(self, trace_id: int) -> None:
        reason = self._tombstones.get(trace_id, LATE)
        self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_every
        deadline = now - self.trace_ttl_seconds
        roots = self._roots
        while roots:
            sid = next(iter(roots))  # insertion order = oldest first
            root = roots[sid]
            if root.seen > deadline:
                break
            del roots[sid]
            self._retire(root)
            n = len(root.seal(True))
            if n:
                self._dropped[EXPIRED] = self._dropped.get(EXPIRED, 0) + n
            self._tombstone(root.trace_id, EXPIRED)

    # -- attribution and totals ----------------------------------------------------------------
    def _name(self, name: str) -> str:
        """The label for an operation name (under self._tlock)."""
        names = self._totals.names
        label = names.get(name)
        if label is None:
            if len(names) >= self.max_operations:
                self._overflow(N.OPERATION)
                return N.OVERFLOW
            label = names[name] = name
        return label

    def _overflow(self, what: str) -> None:
        self._overflows.add(COMPONENT)
        if not self._warned_overflow:
            self._warned_overflow = True
            _log.warning(
                "otelperf: the processor reached max_operations=%d distinct %s values; further "
                "ones are recorded as %r", self.max_operations, what, N.OVERFLOW,
            )  # fmt: skip

    def _finish(self, root_id: int, spans: list[SpanTuple]) -> None:
        if len(spans) == 1:  # a root without ended children (a one-span request): all its own
            _, _, root, start, end = spans[0]
            duration = end - start if end > start else 0
            critical = self_time = {root: duration}
        else:
            root, duration, critical, self_time, _ = attribute_fast(root_id, spans)
        tot = self._totals
        lock = self._tlock
        lock.acquire()  # once per request: acquire/release cost half of ``with`` here
        try:
            r, ops = tot.fast.get(root) or self._root_entry(root)
            r[1] += duration
            r[2] += 1
            for name, cp in critical.items():
                q = ops.get(name) or self._pair_entry(r, ops, name)
                q[1] += cp
                q[2] += self_time[name]
        finally:
            lock.release()

    def _root_entry(self, name: str) -> tuple[list[Any], dict[str, list[Any]]]:
        tot = self._totals
        root = self._name(name)
        r = tot.roots.get(root)
        if r is None:
            r = tot.roots[root] = [{N.ROOT_OPERATION: root}, 0, 0]
        if root == name:
            fast = tot.fast.get(name)
            if fast is None:
                fast = tot.fast[name] = (r, {})
            return fast
        return r, {}  # over the cap: not cached, so abuse cannot grow the table

    def _pair_entry(self, r: list[Any], ops: dict[str, list[Any]], name: str) -> list[Any]:
        tot = self._totals
        pairs = tot.pairs
        root = r[0][N.ROOT_OPERATION]
        op = self._name(name)
        key = (root, op)
        p = pairs.get(key)
        if p is None:
            if len(pairs) >= tot.max_pairs and op != N.OVERFLOW:
                self._overflow(N.OPERATION)
                key = (root, N.OVERFLOW)
                p = pairs.get(key)
            if p is None:
                p = pairs[key] = [{N.ROOT_OPERATION: key[0], N.OPERATION: key[1]}, 0, 0]
        if op == name and key[1] == name and root != N.OVERFLOW:
            ops[name] = p
        return p

    def _observe(self, field: str) -> list[Observation]:
        tot = self._totals
        with self._tlock:
            if field == "critical":
                return [Observation(v[1] / 1e9, v[0]) for v in tot.pairs.values()]
            if field == "self":
                return [Observation(v[2] / 1e9, v[0]) for v in tot.pairs.values()]
            if field == "duration":
                return [Observation(v[1] / 1e9, v[0]) for v in tot.roots.values()]
            if field == "roots":
                return [Observation(v[2], v[0]) for v in tot.roots.values()]
            if field == "cache":
                return [Observation(v[1], v[0]) for v in tot.cache.values()]
            if field == "api_calls":
                return [Observation(v[1], v[0]) for v in tot.api_calls.values()]
            if field == "api_tokens":
                return [Observation(v[1], v[0]) for v in tot.api_tokens.values()]
            if field == "api_cost":
                return [Observation(v[1], v[0]) for v in tot.api_cost.values()]
        if field in ("dropped", "in_flight"):
            with self._lock:
                # Without traffic no root starts to run the sweep: expire stuck roots here too,
                # before reading either figure it changes.
                now = self._clock()
                if now >= self._next_sweep:
                    self._sweep(now)
                if field == "in_flight":
                    return [Observation(len(self._roots))]
                items = list(self._dropped.items())
            return [Observation(v, {N.REASON: k}) for k, v in items]
        tally = self._errors if field == "errors" else self._overflows
        return [Observation(v, {N.COMPONENT: k}) for k, v in tally.snapshot().items()]

    # -- cache and APIs ------------------------------------------------------------------------
    def _account(self, span: ReadableSpan, attrs: Any, kind: SpanKind) -> None:
        cache = attrs.get(_CACHE_NAME)
        if cache is not None:
            hit = attrs.get(N.ATTR_CACHE_HIT)
            if isinstance(cache, str) and cache and isinstance(hit, bool):
                self._count_cache(cache, hit)
        if kind is not _CLIENT:
            return
        api = (
            attrs.get(N.ATTR_API) or attrs.get(apis.GENAI_PROVIDER) or attrs.get(apis.GENAI_SYSTEM)
        )
        if not api:
            api = attrs.get(apis.SERVER_ADDRESS)
            if not api:
                return
        model = attrs.get(apis.GENAI_REQUEST_MODEL) or attrs.get(apis.GENAI_RESPONSE_MODEL)
        status = attrs.get(apis.HTTP_STATUS)
        error = N.ATTR_ERROR_TYPE in attrs or (isinstance(status, int) and status >= 500)
        tin = attrs.get(apis.GENAI_INPUT_TOKENS, 0)
        tout = attrs.get(apis.GENAI_OUTPUT_TOKENS, 0)
        cost = attrs.get(N.ATTR_API_COST)
        start, end = span.start_time, span.end_time
        dur = None
        if start is not None and end is not None and end >= start:
            dur = (end - start) / 1e9
        self._count_api(
            str(api),
            str(model) if model else N.UNKNOWN_MODEL,
            error,
            dur,
            tin if isinstance(tin, int) and tin >= 0 else 0,
            tout if isinstance(tout, int) and tout >= 0 else 0,
            float(cost) if isinstance(cost, (int, float)) and cost >= 0 else None,
        )

    def _count_cache(self, cache: str, hit: bool) -> None:
        if self._closed:
            return
        tot = self._totals
        result = N.RESULT_HIT if hit else N.RESULT_MISS
        with self._tlock:
            key = (cache, result)
            c = tot.cache.get(key)
            if c is None:
                if len(tot.cache) >= 2 * self.max_operations:
                    self._overflows.add("apis")
                    key = (N.OVERFLOW, result)
                    c = tot.cache.get(key)
                if c is None:
                    c = tot.cache[key] = [{N.CACHE: key[0], N.RESULT: result}, 0]
            c[1] += 1

    def _count_api(
        self,
        api: str,
        model: str,
        error: bool,
        duration: float | None,
        input_tokens: int,
        output_tokens: int,
        cost: float | None,
    ) -> None:
        if self._closed:
            return
        tot = self._totals
        outcome = N.OUTCOME_ERROR if error else N.OUTCOME_SUCCESS
        if cost is None and (input_tokens or output_tokens):
            cost = apis.cost_of(api, model, input_tokens, output_tokens)
        with self._tlock:
            labels = tot.api_keys.get((api, model))
            if labels is None:
                if len(tot.api_keys) >= self.max_operations:
                    self._overflows.add("apis")
                    labels = (N.OVERFLOW, N.OVERFLOW)
                else:
                    labels = tot.api_keys[(api, model)] = (api, model)
            a, m = labels
            key3 = (a, m, outcome)
            c = tot.api_calls.get(key3)
            if c is None:
                c = tot.api_calls[key3] = [{N.API: a, N.MODEL: m, N.OUTCOME: outcome}, 0]
            c[1] += 1
            for ttype, n in ((N.TOKEN_INPUT, input_tokens), (N.TOKEN_OUTPUT, output_tokens)):
                if n:
                    tk = (a, m, ttype)
                    c = tot.api_tokens.get(tk)
                    if c is None:
                        c = tot.api_tokens[tk] = [{N.API: a, N.MODEL: m, N.TOKEN_TYPE: ttype}, 0]
                    c[1] += n
            if cost is not None:
                c = tot.api_cost.get(labels)
                if c is None:
                    c = tot.api_cost[labels] = [{N.API: a, N.MODEL: m}, 0.0]
                c[1] += cost
            attrs = tot.api_calls[key3][0]
        if duration is not None:
            self._instruments.api_duration.record(duration, attrs)


# -- wiring into a TracerProvider (configure() uses these) ------------------------------------


def _tracers(tp: TracerProvider) -> list[Any]:
    # The SDK copies the sampler into each Tracer it has handed out; they must see the new one.
    tracers = getattr(tp, "_tracers", None)
    return list(tracers.values()) if isinstance(tracers, dict) else []


def attach(tp: TracerProvider, processor: BottleneckSpanProcessor) -> RecordEverythingSampler:
    """Add ``processor`` to ``tp`` and wrap its sampler so every span is recorded locally."""
    sampler = tp.sampler
    if isinstance(sampler, RecordEverythingSampler):
        wrapper = sampler
        wrapper.active = True
    else:
        wrapper = RecordEverythingSampler(sampler)
        tp.sampler = wrapper
        for tracer in _tracers(tp):
            if getattr(tracer, "sampler", None) is sampler:
                tracer.sampler = wrapper
    tp.add_span_processor(processor)
    apis._set_configured(processor)
    return wrapper


def detach(
    tp: TracerProvider, processor: BottleneckSpanProcessor, wrapper: RecordEverythingSampler
) -> None:
    """Undo :func:`attach`: shut the processor down, take it out, restore the sampler."""
    processor.shutdown()
    multi = getattr(tp, "_active_span_processor", None)
    lock = getattr(multi, "_lock", None)
    if lock is not None and isinstance(getattr(multi, "_span_processors", None), tuple):
        # The SDK has no remove_span_processor; its multi-processor swaps an immutable tuple
        # under this lock, so doing the same is safe against concurrent on_start/on_end.
        with lock:
            procs = multi._span_processors  # type: ignore[union-attr]
            multi._span_processors = tuple(p for p in procs if p is not processor)  # type: ignore[union-attr]
    wrapper.active = False
    if tp.sampler is wrapper:
        tp.sampler = wrapper.delegate
        for tracer in _tracers(tp):
            if getattr(tracer, "sampler", None) is wrapper:
                tracer.sampler = wrapper.delegate
