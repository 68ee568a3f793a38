"""Generators of files other tools read: Prometheus rules and Grafana dashboards.

``promql`` is the one PromQL dialect (used by the rules, the dashboards and the report),
``files`` the one write / ``--check`` implementation behind ``otelperf rules`` and
``otelperf dashboards``.  Generators are pure; only the command modules write files.
"""
