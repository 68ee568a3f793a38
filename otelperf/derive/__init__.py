"""The span processor and its parts: spans in, bottleneck / cache / API totals out.

``processor`` (BottleneckSpanProcessor, a thin SpanProcessor adapter), ``traces`` (the trace
table: filing, sealing, TTL sweep, drops; its hooks are the processor's), ``totals`` (per-root
and per-pair totals), ``attribution`` (critical path and self time, pure functions),
``accounts`` (cache and API accounting), ``instruments`` (the observable counters) and
``sampler`` (RecordEverythingSampler; attach/detach to a TracerProvider).
"""
