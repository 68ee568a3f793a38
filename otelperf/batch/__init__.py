"""Batch jobs: what a process does when it ends (docs/batch.md).

``finish`` (the last act: flush, report, push) and ``hooks`` (when it runs: atexit, SIGTERM).
``otelperf.telemetry`` arms them from the settings; ``otelperf run`` (otelperf.run) sets a
program up with them.
"""
