"""What the application calls: measure() and its wrappers, api_call(), record_api_call(),
record_cache() and the API price table.

Each call emits a span and a few integers; the processor (otelperf.derive) turns spans into the
bottleneck and API metrics.  Span-less records reach it through ``otelperf._core.sinks``, so
nothing here imports derive.
"""
