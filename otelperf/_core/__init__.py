"""The bottom layer: plumbing every other part of otelperf shares, one place per concern.

``selfmetrics`` (otelperf's own error and overflow counters), ``fork`` (the one
``os.register_at_fork`` hook), ``warn`` (warn-once), ``sdk_compat`` (every read of an
OpenTelemetry SDK private field, probed once), ``sinks`` (where span-less records go),
``per_provider`` (instruments shared per meter provider) and ``process`` (RSS and the psutil
Process, fork-safe).  Nothing here imports from the layers above.
"""
