"""Every read of an OpenTelemetry SDK (or prometheus_client) private field, in one module.

The span processor's hooks run for every span, and the SDK's public properties cost several
times a field read there (``ReadableSpan.attributes`` builds a new MappingProxyType per read),
so the hot path reads private fields directly.  Whether it *can* is decided once, here, at
import: :data:`DIRECT_FIELDS` is True only if a probe span built with the installed SDK shows
the expected fields; otherwise :data:`SDK_SPAN` and :data:`READABLE_SPAN` are None and the hooks
fall back to the public properties.  The other helpers read SDK internals that have no public
equivalent, and each degrades to a safe answer when the layout is unknown.

The fields the hooks read, for reference (the probe checks each):
``_Span._parent`` / ``._context``; ``ReadableSpan._context``, ``._parent``, ``._name``,
``._start_time``, ``._end_time``, ``._attributes``, ``._kind``, ``._status``; SpanContext's
tuple slots ``[0]`` trace_id, ``[1]`` span_id, ``[2]`` is_remote, ``[3]`` trace_flags;
``BoundedAttributes._dict`` (its plain dict: BoundedAttributes answers a missing key through
Mapping.get, a raised and caught KeyError per lookup).  A span without them (hand-made, or with
a plain dict of attributes) is read through its properties (otelperf.derive.traces.PublicView).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags


def _probe_fields() -> bool:
    """Whether ReadableSpan keeps the private fields the hooks read directly."""
    try:
        sc = SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED))
        status = Status(StatusCode.ERROR)
        span = ReadableSpan(
            "probe", sc, sc, start_time=1, end_time=2, attributes={"a": 1}, kind=SpanKind.CLIENT,
            status=status,
        )  # fmt: skip
        bounded = BoundedAttributes(attributes={"a": 1})
        fields = (span._context, span._parent, span._name, span._start_time, span._end_time)
        slots = (sc[0], sc[1], sc[2], sc[3]) == (
            sc.trace_id, sc.span_id, sc.is_remote, sc.trace_flags
        ) == (1, 2, False, 1)  # fmt: skip
        return (
            slots
            and fields == (sc, sc, "probe", 1, 2)
            and dict(span._attributes or {}) == {"a": 1}
            and span._kind is span.kind is SpanKind.CLIENT
            and span._status is span.status is status
            and type(bounded._dict) is dict
            and bounded._dict == dict(bounded) == {"a": 1}
        )
    except Exception:
        return False


DIRECT_FIELDS = _probe_fields()
# The classes whose fields the hooks read directly: the span the SDK's tracer makes (on_start)
# and the ReadableSpan it passes to on_end.  None when the probe fails: properties throughout.
SDK_SPAN: Any = getattr(sdk_trace, "_Span", None) if DIRECT_FIELDS else None
READABLE_SPAN: Any = ReadableSpan if DIRECT_FIELDS else None


def _empty(self: Any, span: Any) -> None:
    """Nothing (what an empty hook compiles to, compared below)."""


def _no_op_on_ending() -> bool:
    """Whether the SDK's base ``SpanProcessor._on_ending`` (called for every span as it ends)
    exists and does nothing (its code is an empty function's)."""
    base = getattr(SpanProcessor, "_on_ending", None)
    code = getattr(base, "__code__", None)
    return code is not None and code.co_code == _empty.__code__.co_code


NO_OP_ON_ENDING = _no_op_on_ending()


def skip_on_ending(processor: SpanProcessor) -> None:
    """Spare ``processor`` the SDK's per-span ``_on_ending`` call into the base class's empty
    Python method (a frame per span): when the probe above found it empty and ``processor``
    does not override it, a C builtin taking one argument and allocating nothing
    (``callable``) answers instead, its result ignored as the empty method's was."""
    if NO_OP_ON_ENDING and getattr(type(processor), "_on_ending", None) is getattr(
        SpanProcessor, "_on_ending", None
    ):
        processor._on_ending = callable  # type: ignore[method-assign,assignment]


def tracers(tp: TracerProvider) -> list[Any]:
    """The Tracers ``tp`` handed out (the SDK copies its sampler into each); [] if unknown."""
    found = getattr(tp, "_tracers", None)
    return list(found.values()) if isinstance(found, dict) else []


def remove_span_processor(tp: TracerProvider, processor: Any) -> None:
    """Take ``processor`` out of ``tp`` (the SDK has no public way); a no-op if unknown."""
    multi = getattr(tp, "_active_span_processor", None)
    lock = getattr(multi, "_lock", None)
    if lock is not None and isinstance(getattr(multi, "_span_processors", None), tuple):
        # The SDK's multi-processor swaps an immutable tuple under this lock, so doing the
        # same is safe against concurrent on_start/on_end.
        with lock:
            procs = multi._span_processors  # type: ignore[union-attr]
            multi._span_processors = tuple(p for p in procs if p is not processor)  # type: ignore[union-attr]


def is_default_parent_based(sampler: Sampler) -> bool:
    """ParentBased(ALWAYS_ON) with its default sub-samplers (the SDK's default sampler)?"""
    return (
        type(sampler) is ParentBased
        and getattr(sampler, "_root", None) is ALWAYS_ON
        and getattr(sampler, "_remote_parent_sampled", None) is ALWAYS_ON
        and getattr(sampler, "_remote_parent_not_sampled", None) is ALWAYS_OFF
        and getattr(sampler, "_local_parent_sampled", None) is ALWAYS_ON
        and getattr(sampler, "_local_parent_not_sampled", None) is ALWAYS_OFF
    )


def is_unset_tracer_provider(tp: Any) -> bool:
    """The API's placeholder (no application provider installed yet)?"""
    return isinstance(tp, trace.ProxyTracerProvider)


def is_unset_meter_provider(mp: Any) -> bool:
    """The API's placeholder meter provider (kept in a private module)?"""
    from opentelemetry.metrics import _internal as metrics_internal

    proxy = getattr(metrics_internal, "_ProxyMeterProvider", None)
    return proxy is not None and isinstance(mp, proxy)


def has_prometheus_reader(mp: Any) -> bool:
    """Does ``mp`` export through a PrometheusMetricReader?  An unknown layout counts as no."""
    readers = getattr(mp, "_metric_readers", None) or ()
    return any(isinstance(r, PrometheusMetricReader) for r in readers)


def flush_push_readers(mp: Any) -> None:
    """Flush ``mp``'s readers except PrometheusMetricReaders: an OTLP (periodic) reader exports
    on flush, while a Prometheus reader's flush queues one more copy of every series for its
    next scrape (opentelemetry-exporter-prometheus keeps a deque of collections), which the
    exit report and the final push would then show twice."""
    readers = getattr(mp, "_metric_readers", None)
    if readers is None:  # an unknown layout: the provider's own flush
        flush = getattr(mp, "force_flush", None)
        if flush is not None:
            flush()
        return
    for reader in readers:
        if not isinstance(reader, PrometheusMetricReader):
            reader.force_flush()


def collector_types(registry: Any) -> set[type]:
    """Types of the collectors on a prometheus_client registry (kept privately there)."""
    return {type(c) for c in getattr(registry, "_collector_to_names", {})}
