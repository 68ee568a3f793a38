"""The one name table: every metric, label key, unit and default bucket otelperf uses.

Instruments, the rule generator, the dashboard generator, the report and the docs test import
these objects; nothing else spells a metric name.  ``otel`` is the OpenTelemetry instrument
name, ``prom`` the name the OpenTelemetry Prometheus exporter turns it into (unit suffix added,
``_total`` for counters), which is what PromQL queries use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "histogram", "gauge", "info"]

VERSION = "0.1.0"  # otelperf.__version__; the processor's meter carries it
METER_NAME = "otelperf"
TRACER_NAME = "otelperf"

# Label keys (Prometheus spelling; they are also the OTel attribute keys we record with).
OPERATION = "operation"
ROOT_OPERATION = "root_operation"
OUTCOME = "outcome"
ERROR_TYPE = "error_type"
REASON = "reason"
COMPONENT = "component"
CACHE = "cache"
RESULT = "result"
API = "api"
MODEL = "model"
TOKEN_TYPE = "token_type"
MOUNTPOINT = "system_filesystem_mountpoint"
GENERATION = "generation"

OUTCOME_SUCCESS = "success"
OUTCOME_ERROR = "error"
RESULT_HIT = "hit"
RESULT_MISS = "miss"
# token_type values: four disjoint parts, so sum by (api, model) is every token once.
TOKEN_INPUT = "input"  # input tokens not served from a cache
TOKEN_OUTPUT = "output"  # output tokens other than reasoning
TOKEN_CACHED_INPUT = "cached_input"  # input tokens served from the provider's cache
TOKEN_REASONING = "reasoning"  # output tokens spent on reasoning
OVERFLOW = "__overflow__"
UNKNOWN_MODEL = "unknown"

# Span attributes otelperf reads or writes.
ATTR_CACHE_NAME = "otelperf.cache.name"
ATTR_CACHE_HIT = "otelperf.cache.hit"
ATTR_API = "otelperf.api"
ATTR_API_COST = "otelperf.api.cost_usd"
ATTR_ITEMS = "otelperf.items"
ATTR_BYTES = "otelperf.bytes"
ATTR_ERROR_TYPE = "error.type"
# Set on a span whose operation was interrupted rather than failed (cancelled, the process
# exiting, a generator closed): the exception's type name; the outcome stays success.
ATTR_INTERRUPTED = "otelperf.interrupted"

# GenAI and HTTP semantic-convention attributes (what GenAI client instrumentations write;
# api_call() writes the same ones so one reader, the processor, serves both).
GENAI_PROVIDER = "gen_ai.provider.name"
GENAI_SYSTEM = "gen_ai.system"  # the older spelling of the provider
GENAI_REQUEST_MODEL = "gen_ai.request.model"
GENAI_RESPONSE_MODEL = "gen_ai.response.model"
GENAI_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # cached ones included (GenAI conventions)
GENAI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"  # reasoning ones included
GENAI_CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"  # part of input_tokens
GENAI_REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"  # part of output_tokens
# The older names many instrumentations (OpenLLMetry's semconv_ai among them) still write.
GENAI_PROMPT_TOKENS_OLD = "gen_ai.usage.prompt_tokens"
GENAI_COMPLETION_TOKENS_OLD = "gen_ai.usage.completion_tokens"
GENAI_CACHE_READ_TOKENS_OLD = "gen_ai.usage.cache_read_input_tokens"
GENAI_REASONING_TOKENS_OLD = "gen_ai.usage.reasoning_tokens"
SERVER_ADDRESS = "server.address"
HTTP_STATUS = "http.response.status_code"

# Buckets suited to 100 us .. 60 s (OTel advisory boundaries, so they hold on any MeterProvider).
DEFAULT_DURATION_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# Resident-memory growth per operation, bytes (a release records 0: OTel histograms take no
# negative values).
DEFAULT_MEMORY_BUCKETS: tuple[float, ...] = (
    0.0, 4096.0, 65536.0, 1048576.0, 16777216.0, 134217728.0, 1073741824.0,
)  # fmt: skip


@dataclass(frozen=True)
class Metric:
    """One exposed metric: OTel instrument name, unit, and the Prometheus name users query."""

    otel: str
    prom: str
    kind: Kind
    unit: str
    labels: tuple[str, ...]
    help: str

    @property
    def series(self) -> tuple[str, ...]:
        """Sample names a scrape shows for this metric (histograms expose three)."""
        if self.kind == "histogram":
            return (self.prom + "_bucket", self.prom + "_count", self.prom + "_sum")
        return (self.prom,)


def _m(otel: str, prom: str, kind: Kind, unit: str, labels: tuple[str, ...], help: str) -> Metric:
    return Metric(otel, prom, kind, unit, labels, help)


# --- operations (measure) -----------------------------------------------------------------
OPERATION_DURATION = _m(
    "otelperf.operation.duration", "otelperf_operation_duration_seconds", "histogram", "s",
    (OPERATION, OUTCOME, ERROR_TYPE), "Duration of each measured operation.",
)  # fmt: skip
OPERATION_ITEMS = _m(
    "otelperf.operation.items", "otelperf_operation_items_total", "counter", "{item}",
    (OPERATION,), "Items (rows, records) processed by an operation.",
)  # fmt: skip
OPERATION_BYTES = _m(
    "otelperf.operation.bytes", "otelperf_operation_bytes_total", "counter", "By",
    (OPERATION,), "Bytes processed by an operation.",
)  # fmt: skip
OPERATION_IN_FLIGHT = _m(
    "otelperf.operation.in_flight", "otelperf_operation_in_flight", "gauge", "{operation}",
    (OPERATION,), "Operations currently running.",
)  # fmt: skip
OPERATION_CPU = _m(
    "otelperf.operation.cpu", "otelperf_operation_cpu_seconds_total", "counter", "s",
    (OPERATION,), "Thread CPU time spent inside synchronous operations.",
)  # fmt: skip
OPERATION_MEMORY_DELTA = _m(
    "otelperf.operation.memory_delta", "otelperf_operation_memory_delta_bytes", "histogram",
    "By", (OPERATION,), "Resident memory growth across an operation, 0 when it shrank "
    "(track_memory=True).",
)  # fmt: skip

# --- bottleneck processor -------------------------------------------------------------------
CRITICAL_PATH = _m(
    "otelperf.critical_path", "otelperf_critical_path_seconds_total", "counter", "s",
    (ROOT_OPERATION, OPERATION), "Time an operation spent on its root's critical path.",
)  # fmt: skip
SELF_TIME = _m(
    "otelperf.self", "otelperf_self_seconds_total", "counter", "s",
    (ROOT_OPERATION, OPERATION), "Time an operation ran with none of its children blocking it.",
)  # fmt: skip
ROOT_DURATION = _m(
    "otelperf.root_duration", "otelperf_root_duration_seconds_total", "counter", "s",
    (ROOT_OPERATION,), "Summed duration of local root spans.",
)  # fmt: skip
ROOTS = _m(
    "otelperf.roots", "otelperf_roots_total", "counter", "{root}",
    (ROOT_OPERATION,), "Local root spans finished.",
)  # fmt: skip
DROPPED_SPANS = _m(
    "otelperf.processor.dropped_spans", "otelperf_processor_dropped_spans_total", "counter",
    "{span}", (REASON,), "Spans the processor left out of attribution (capacity, truncated, "
    "expired, late).",
)  # fmt: skip
TRACES_IN_FLIGHT = _m(
    "otelperf.processor.traces_in_flight", "otelperf_processor_traces_in_flight", "gauge",
    "{trace}", (), "Traces whose local root has not finished yet.",
)  # fmt: skip
INTERNAL_ERRORS = _m(
    "otelperf.internal_errors", "otelperf_internal_errors_total", "counter", "{error}",
    (COMPONENT,), "Failures inside otelperf, caught so they never reach the application.",
)  # fmt: skip
CARDINALITY_OVERFLOW = _m(
    "otelperf.cardinality_overflow", "otelperf_cardinality_overflow_total", "counter",
    "{measurement}", (COMPONENT,), "Measurements recorded under __overflow__ because a "
    "label cap was reached.",
)  # fmt: skip

# --- cache and external APIs ----------------------------------------------------------------
CACHE_REQUESTS = _m(
    "otelperf.cache.requests", "otelperf_cache_requests_total", "counter", "{request}",
    (CACHE, RESULT), "Cache lookups by result (hit or miss).",
)  # fmt: skip
API_CALLS = _m(
    "otelperf.api.calls", "otelperf_api_calls_total", "counter", "{call}",
    (API, MODEL, OUTCOME), "External API calls.",
)  # fmt: skip
API_CALL_DURATION = _m(
    "otelperf.api.call.duration", "otelperf_api_call_duration_seconds", "histogram", "s",
    (API, MODEL, OUTCOME), "External API call duration.",
)  # fmt: skip
API_TOKENS = _m(
    "otelperf.api.tokens", "otelperf_api_tokens_total", "counter", "{token}",
    (API, MODEL, TOKEN_TYPE),
    "Tokens of API calls by type: input, cached_input, output, reasoning (disjoint parts).",
)  # fmt: skip
API_COST = _m(
    "otelperf.api.cost_usd", "otelperf_api_cost_usd_total", "counter", "",
    (API, MODEL), "Cost of API calls in US dollars.",
)  # fmt: skip

# --- host (OTel semantic conventions, as the Prometheus exporter names them) -------------------
HOST_CPU_UTILIZATION = _m(
    "system.cpu.utilization", "system_cpu_utilization", "gauge", "1",
    (), "Host CPU utilization, 0..1, over the time since the previous scrape.",
)  # fmt: skip
HOST_MEMORY_UTILIZATION = _m(
    "system.memory.utilization", "system_memory_utilization", "gauge", "1",
    (), "Host memory in use, 0..1.",
)  # fmt: skip
HOST_FILESYSTEM_UTILIZATION = _m(
    "system.filesystem.utilization", "system_filesystem_utilization", "gauge", "1",
    (MOUNTPOINT,), "Filesystem space in use per mount point, 0..1.",
)  # fmt: skip

# The OTel metrics otelperf itself defines, in documentation order.
OTEL_METRICS: tuple[Metric, ...] = (
    OPERATION_DURATION, OPERATION_ITEMS, OPERATION_BYTES, OPERATION_IN_FLIGHT, OPERATION_CPU,
    OPERATION_MEMORY_DELTA, CRITICAL_PATH, SELF_TIME, ROOT_DURATION, ROOTS, DROPPED_SPANS,
    TRACES_IN_FLIGHT, INTERNAL_ERRORS, CARDINALITY_OVERFLOW, CACHE_REQUESTS, API_CALLS,
    API_CALL_DURATION, API_TOKENS, API_COST, HOST_CPU_UTILIZATION, HOST_MEMORY_UTILIZATION,
    HOST_FILESYSTEM_UTILIZATION,
)  # fmt: skip

TARGET_INFO = "target_info"

# --- Prometheus-side names the alert rules use -------------------------------------------------
JOB = "job"
INSTANCE = "instance"
SEVERITY = "severity"
# prometheus_client's ProcessCollector exposes this (bytes); the memory alerts read it.
PROCESS_RESIDENT_MEMORY = "process_resident_memory_bytes"
# Prometheus itself writes these two.
UP = "up"
ALERTS = "ALERTS"

# --- process and runtime ------------------------------------------------------------------------
# prometheus_client's ProcessCollector (Linux /proc, read as /proc/self so it is fork-safe),
# GCCollector and PlatformCollector already expose these on prometheus_client.REGISTRY; configure()
# registers them on a private registry too.  They are not OTel instruments (otel is "").  The
# thread count comes from psutil through an OTel gauge named as the semantic conventions do.
RESOURCES_METER_NAME = "otelperf.resources"
PROC_CPU = _m(
    "", "process_cpu_seconds_total", "counter", "s",
    (), "CPU time (user + system) the process has used.",
)  # fmt: skip
PROC_RESIDENT_MEMORY = _m(
    "", PROCESS_RESIDENT_MEMORY, "gauge", "By", (), "Resident memory of the process.",
)  # fmt: skip
PROC_VIRTUAL_MEMORY = _m(
    "", "process_virtual_memory_bytes", "gauge", "By", (), "Virtual memory size of the process.",
)  # fmt: skip
PROC_START_TIME = _m(
    "", "process_start_time_seconds", "gauge", "s", (), "Process start time, Unix epoch seconds.",
)  # fmt: skip
PROC_OPEN_FDS = _m(
    "", "process_open_fds", "gauge", "{fd}", (), "Open file descriptors.",
)  # fmt: skip
PROC_MAX_FDS = _m(
    "", "process_max_fds", "gauge", "{fd}", (), "Open file descriptor limit (ulimit -n).",
)  # fmt: skip
PROC_THREADS = _m(
    "process.thread.count", "process_thread_count", "gauge", "{thread}",
    (), "Threads of the process (psutil).",
)  # fmt: skip
GC_OBJECTS_COLLECTED = _m(
    "", "python_gc_objects_collected_total", "counter", "{object}",
    (GENERATION,), "Objects the Python garbage collector freed, per generation.",
)  # fmt: skip
GC_OBJECTS_UNCOLLECTABLE = _m(
    "", "python_gc_objects_uncollectable_total", "counter", "{object}",
    (GENERATION,), "Uncollectable objects the garbage collector found, per generation.",
)  # fmt: skip
GC_COLLECTIONS = _m(
    "", "python_gc_collections_total", "counter", "{collection}",
    (GENERATION,), "Garbage collector runs, per generation.",
)  # fmt: skip
PYTHON_INFO = _m(
    "", "python_info", "gauge", "",
    ("implementation", "major", "minor", "patchlevel", "version"),
    "Python implementation and version (value 1).",
)  # fmt: skip
TARGET_INFO_METRIC = _m(
    "", TARGET_INFO, "gauge", "",
    ("service_name", "service_instance_id", "telemetry_sdk_language", "telemetry_sdk_name",
     "telemetry_sdk_version"),
    "OTel resource attributes as labels (value 1); OTEL_RESOURCE_ATTRIBUTES adds more.",
)  # fmt: skip

# Process and runtime metrics, in documentation order.
PROCESS_METRICS: tuple[Metric, ...] = (
    PROC_CPU, PROC_RESIDENT_MEMORY, PROC_VIRTUAL_MEMORY, PROC_START_TIME, PROC_OPEN_FDS,
    PROC_MAX_FDS, PROC_THREADS, GC_OBJECTS_COLLECTED, GC_OBJECTS_UNCOLLECTABLE, GC_COLLECTIONS,
    PYTHON_INFO,
)  # fmt: skip
# Everything a scrape of otelperf's /metrics can show, in documentation order (docs/metrics.md).
ALL_METRICS: tuple[Metric, ...] = (*OTEL_METRICS, *PROCESS_METRICS, TARGET_INFO_METRIC)


# --- recording rules (alert_rules/recording.yml, written by ``otelperf rules``) ----------------
# Named level:metric:operations.  "rate" rules use the configured rate window (``rate_window``,
# default 5m), so the window is not part of the name; rules with a fixed window say it (1h, 1d).
# Dashboards query these by name; the alerts are built on them.
@dataclass(frozen=True)
class Recording:
    """One recording rule: its series name, the labels it keeps, and what it holds."""

    name: str
    labels: tuple[str, ...]
    help: str


REC_OPERATION_REQUESTS = Recording(
    "otelperf:operation_requests:rate", (JOB, OPERATION), "Finished operations per second.",
)  # fmt: skip
REC_OPERATION_ERRORS = Recording(
    "otelperf:operation_errors:rate", (JOB, OPERATION), "Failed operations per second.",
)  # fmt: skip
REC_OPERATION_ERROR_RATIO = Recording(
    "otelperf:operation_errors:ratio_rate", (JOB, OPERATION),
    "Failed / finished operations, 0..1 (absent while an operation has no traffic).",
)  # fmt: skip
REC_OPERATION_P95 = Recording(
    "otelperf:operation_duration_seconds:p95", (JOB, OPERATION),
    "95th percentile operation duration over the rate window, seconds.",
)  # fmt: skip
REC_OPERATION_P95_1H = Recording(
    "otelperf:operation_duration_seconds:p95_1h", (JOB, OPERATION),
    "95th percentile operation duration over the last hour, seconds.",
)  # fmt: skip
REC_OPERATION_REQUESTS_1H = Recording(
    "otelperf:operation_requests:increase1h", (JOB, OPERATION),
    "Operations finished in the last hour.",
)  # fmt: skip
REC_OPERATION_P95_MEAN_1D = Recording(
    "otelperf:operation_duration_seconds:p95_mean1d", (JOB, OPERATION),
    "Mean of the p95 recording over the day that ended an hour ago, seconds.",
)  # fmt: skip
REC_OPERATION_P95_STDDEV_1D = Recording(
    "otelperf:operation_duration_seconds:p95_stddev1d", (JOB, OPERATION),
    "Standard deviation of the p95 recording over the day that ended an hour ago, seconds.",
)  # fmt: skip
REC_OPERATION_ITEMS = Recording(
    "otelperf:operation_items:rate", (JOB, OPERATION), "Items processed per second.",
)  # fmt: skip
REC_OPERATION_ITEMS_PER_BUSY_SECOND = Recording(
    "otelperf:operation_items:per_busy_second", (JOB, OPERATION),
    "Items processed per second spent inside the operation (its speed while it runs).",
)  # fmt: skip
REC_CRITICAL_PATH_SHARE = Recording(
    "otelperf:critical_path:share", (JOB, ROOT_OPERATION, OPERATION),
    "Fraction of its root's duration an operation spent on the critical path, 0..1.",
)  # fmt: skip
REC_CRITICAL_PATH_SHARE_1H = Recording(
    "otelperf:critical_path:share1h", (JOB, ROOT_OPERATION, OPERATION),
    "Critical-path share over the last hour, 0..1.",
)  # fmt: skip
REC_CACHE_REQUESTS = Recording(
    "otelperf:cache_requests:rate", (JOB, CACHE), "Cache lookups per second.",
)  # fmt: skip
REC_CACHE_HIT_RATIO = Recording(
    "otelperf:cache_hits:ratio_rate", (JOB, CACHE),
    "Cache hits / lookups, 0..1 (absent while a cache has no lookups).",
)  # fmt: skip
REC_API_CALLS = Recording(
    "otelperf:api_calls:rate", (JOB, API), "External API calls per second.",
)  # fmt: skip
REC_API_ERROR_RATIO = Recording(
    "otelperf:api_errors:ratio_rate", (JOB, API),
    "Failed / all external API calls, 0..1 (absent while an API has no calls).",
)  # fmt: skip
REC_API_COST_1H = Recording(
    "otelperf:api_cost_usd:rate1h", (JOB, API),
    "API spend in US dollars per second, averaged over the last hour.",
)  # fmt: skip

# --- issue 15: detection (significance bounds, distribution baselines, SLO windows) ------
REC_OPERATION_MEAN = Recording(
    "otelperf:operation_duration_seconds:mean", (JOB, OPERATION),
    "Mean operation duration over the rate window (_sum / _count), seconds.",
)  # fmt: skip
REC_OPERATION_MEAN_MEDIAN_1H = Recording(
    "otelperf:operation_duration_seconds:mean_median1h", (JOB, OPERATION),
    "Median over the last hour of the rate-window mean: a one-minute blip cannot move it.",
)  # fmt: skip
REC_OPERATION_ERROR_LOWER = Recording(
    "otelperf:operation_errors:ratio_lower_bound", (JOB, OPERATION),
    "Wilson score lower bound of the error ratio over the rate window, 0..1.",
)  # fmt: skip
REC_API_ERROR_LOWER = Recording(
    "otelperf:api_errors:ratio_lower_bound", (JOB, API),
    "Wilson score lower bound of the API error ratio over the rate window, 0..1.",
)  # fmt: skip
REC_CACHE_MISS_LOWER = Recording(
    "otelperf:cache_misses:ratio_lower_bound", (JOB, CACHE),
    "Wilson score lower bound of the cache miss ratio over the rate window, 0..1.",
)  # fmt: skip
REC_API_P95 = Recording(
    "otelperf:api_call_duration_seconds:p95", (JOB, API),
    "95th percentile external API call duration over the rate window, seconds.",
)  # fmt: skip
REC_API_COST_SUM = Recording(
    "otelperf:api_cost_usd:sum", (JOB,), "Cumulative API spend of the job's live counters, USD.",
)  # fmt: skip
REC_API_COST_DAY_START = Recording(
    "otelperf:api_cost_usd:day_start", (JOB,),
    "otelperf:api_cost_usd:sum in the first 5 minutes of the UTC day (only then).",
)  # fmt: skip
REC_API_COST_TODAY = Recording(
    "otelperf:api_cost_usd:spent_today", (JOB,), "API spend since 00:00 UTC, USD.",
)  # fmt: skip
REC_API_COST_PROJECTED = Recording(
    "otelperf:api_cost_usd:projected_today", (JOB,),
    "Today's spend so far scaled by yesterday's full day / yesterday's spend by this time, USD.",
)  # fmt: skip
# The SRE workbook's burn-rate windows (page 1h/5m and 6h/30m, ticket 1d/2h and 3d/6h).
SLO_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
LE = "le"
REC_OPERATION_ERROR_RATIO_SLO: dict[str, Recording] = {
    w: Recording(f"otelperf:operation_errors:ratio_rate{w}", (JOB, OPERATION),
                 f"Failed / finished operations over {w}, 0..1.")
    for w in SLO_WINDOWS
}  # fmt: skip
REC_OPERATION_SLOW_RATIO_SLO: dict[str, Recording] = {
    w: Recording(f"otelperf:operation_latency_slow:ratio_rate{w}", (JOB, OPERATION, LE),
                 f"Share of operations slower than the bucket boundary le over {w}, 0..1.")
    for w in SLO_WINDOWS
}  # fmt: skip

RECORDINGS: tuple[Recording, ...] = (
    REC_OPERATION_REQUESTS, REC_OPERATION_ERRORS, REC_OPERATION_ERROR_RATIO, REC_OPERATION_P95,
    REC_OPERATION_P95_1H, REC_OPERATION_REQUESTS_1H, REC_OPERATION_P95_MEAN_1D,
    REC_OPERATION_P95_STDDEV_1D, REC_OPERATION_ITEMS, REC_OPERATION_ITEMS_PER_BUSY_SECOND,
    REC_CRITICAL_PATH_SHARE, REC_CRITICAL_PATH_SHARE_1H, REC_CACHE_REQUESTS, REC_CACHE_HIT_RATIO,
    REC_API_CALLS, REC_API_ERROR_RATIO, REC_API_COST_1H, REC_OPERATION_MEAN,
    REC_OPERATION_MEAN_MEDIAN_1H, REC_OPERATION_ERROR_LOWER, REC_API_ERROR_LOWER,
    REC_CACHE_MISS_LOWER, REC_API_P95, REC_API_COST_SUM, REC_API_COST_DAY_START,
    REC_API_COST_TODAY, REC_API_COST_PROJECTED, *REC_OPERATION_ERROR_RATIO_SLO.values(),
    *REC_OPERATION_SLOW_RATIO_SLO.values(),
)  # fmt: skip
