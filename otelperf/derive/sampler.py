"""RecordEverythingSampler, and attaching the processor to (and detaching it from) a provider.

otelperf's metrics need every span, sampled or not, while exporters must keep seeing the
application's sampling decisions: the wrapper turns DROP into RECORD_ONLY, which reaches span
processors but leaves the trace flags "not sampled".
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otelperf._core import sdk_compat, sinks
from otelperf._core.sdk_compat import is_default_parent_based
from otelperf.derive.processor import BottleneckSpanProcessor


class RecordEverythingSampler(Sampler):
    """Wraps the application's sampler: RECORD_ONLY where it would DROP.

    Every span then reaches span processors, so otelperf's metrics are complete, while the
    trace flags still say "not sampled" and exporting processors (Batch/SimpleSpanProcessor)
    skip those spans exactly as before.  ``active = False`` turns it into a pass-through.
    """

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate
        self.active = True
        self._parent_based_always_on = is_default_parent_based(delegate)

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


# -- wiring into a TracerProvider (configure() uses these) ----------------------------------


def attach(tp: TracerProvider, processor: BottleneckSpanProcessor) -> RecordEverythingSampler:
    """Add ``processor`` to ``tp`` and wrap its sampler so every span is recorded locally."""
    sampler = tp.sampler
    if isinstance(sampler, RecordEverythingSampler):
        wrapper = sampler
        wrapper.active = True
    else:
        wrapper = RecordEverythingSampler(sampler)
        tp.sampler = wrapper
        for tracer in sdk_compat.tracers(tp):
            if getattr(tracer, "sampler", None) is sampler:
                tracer.sampler = wrapper
    tp.add_span_processor(processor)
    sinks.set_configured(processor)
    return wrapper


def detach(
    tp: TracerProvider, processor: BottleneckSpanProcessor, wrapper: RecordEverythingSampler
) -> None:
    """Undo :func:`attach`: shut the processor down, take it out, restore the sampler."""
    processor.shutdown()
    sdk_compat.remove_span_processor(tp, processor)
    wrapper.active = False
    if tp.sampler is wrapper:
        tp.sampler = wrapper.delegate
        for tracer in sdk_compat.tracers(tp):
            if getattr(tracer, "sampler", None) is wrapper:
                tracer.sampler = wrapper.delegate
