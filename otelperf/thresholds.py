"""Thresholds: the one settings object that the alert rules and the report both judge by.

``otelperf rules --config FILE`` and ``otelperf report`` read the same values, so raising
``cache_hit_ratio_min`` in a rules config changes the alert and the report's warning alike.

>>> Thresholds().cache_hit_ratio_min
0.6
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Alert and report thresholds: ratios 0..1, durations seconds, memory bytes, money USD."""

    operation_error_ratio_warning: float = 0.05
    operation_error_ratio_critical: float = 0.10
    operation_slow_p95_seconds: float = 5.0
    # The hourly median of the mean duration against the same hours 1 d (and 7 d) earlier.
    latency_regression_factor: float = 1.3
    latency_regression_min_requests_per_hour: float = 100.0
    latency_anomaly_stddevs: float = 3.0
    # A flat history has a standard deviation near zero; without this floor any jitter would fire.
    latency_anomaly_min_factor: float = 1.2
    throughput_min_items_per_second: float = 1000.0
    bottleneck_dominant_share: float = 0.5
    bottleneck_shift_share: float = 0.2
    cache_hit_ratio_min: float = 0.6
    cache_min_lookups_per_minute: float = 1.0
    api_error_ratio: float = 0.05
    api_min_calls_per_minute: float = 1.0
    api_daily_budget_usd: float = 100.0
    process_memory_bytes: float = 1073741824.0
    host_cpu_utilization: float = 0.8
    host_memory_utilization: float = 0.8
    disk_utilization: float = 0.9
    # Only predict "full within 24h" on a disk already this full: an emptyish disk's trend is noise.
    disk_predict_min_utilization: float = 0.5
    # The three below drive ``otelperf report`` only (no alert reads them); a rules config sets
    # them like any other threshold, so one file tunes the alerts and the report together.
    # A stage over this share of its root's critical path is a bottleneck warning.
    bottleneck_stage_share: float = 0.2
    # CPU seconds per wall second at or above which a bottleneck is CPU-bound (else "waiting").
    cpu_bound_ratio: float = 0.5
    # A model with at least this share of the API bill gets the "cheaper model" recommendation.
    api_expensive_model_share: float = 0.5
    # --- issue 15: significance and history -------------------------------------------------
    # Ratio alerts need this many bad events in the rate window (errors, misses) ...
    operation_error_min_errors: float = 5.0
    api_error_min_errors: float = 5.0
    cache_min_misses: float = 10.0
    # ... and the Wilson score lower bound of the bad ratio (one-sided, this z) above the
    # threshold: 3 standard errors, as control charts use (1.645, one-sided 95 %, still fired
    # now and then on a steady 4 % against 5 % over a few days: thousands of windows).
    ratio_confidence_z: float = 3.0
    # SLO burn-rate alerts need this many bad events in their long window.
    slo_min_bad_events: float = 5.0
    # Throughput below this fraction of the same time 1 d earlier (and 7 d, where known).
    throughput_drop_ratio: float = 0.5
    # Spend in the last hour above this multiple of the same hour 1 d (and 7 d) earlier ...
    api_cost_increase_factor: float = 2.0
    # ... when the last hour cost at least this much (USD).
    api_cost_increase_min_usd_per_hour: float = 1.0
    api_slow_p95_seconds: float = 10.0
    # Leak: sustained growth of at least this many bytes an hour over 3 h, after warm-up.
    memory_leak_min_bytes_per_hour: float = 10485760.0
    # Seconds after a (re)start the leak rule ignores (start-up allocations, caches filling).
    memory_leak_warmup_seconds: float = 900.0
    open_fds_ratio: float = 0.8


# Thresholds a per-operation override may change (they are the operation-scoped ones).
OPERATION_OVERRIDABLE = (
    "operation_error_ratio_warning",
    "operation_error_ratio_critical",
    "operation_slow_p95_seconds",
    "throughput_min_items_per_second",
)
RATIOS = {
    "operation_error_ratio_warning", "operation_error_ratio_critical", "bottleneck_dominant_share",
    "bottleneck_shift_share", "cache_hit_ratio_min", "api_error_ratio", "host_cpu_utilization",
    "host_memory_utilization", "disk_utilization", "disk_predict_min_utilization",
    "bottleneck_stage_share", "cpu_bound_ratio", "api_expensive_model_share",
    "throughput_drop_ratio", "open_fds_ratio",
}  # fmt: skip
