"""Settings from arguments and OTEL_* / OTELPERF_* environment variables, validated once.

Arguments beat variables; variables beat defaults.  Every error names the argument or the
variable and the offending value, so a typo in a deployment manifest is found at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from otelperf._names import DEFAULT_DURATION_BUCKETS
from otelperf.errors import ConfigError
from otelperf.parsing import (
    format_for_file,
    parse_bool,
    parse_buckets,
    parse_bytes,
    parse_float,
    parse_http_url,
    parse_int,
    parse_report_format,
    parse_resource_attributes,
    parse_span_patterns,
    show,
)

T = TypeVar("T")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464
DEFAULT_MAX_OPERATIONS = 1000
# The span processor's trace table (docs/processor.md "Memory"): local roots tracked at once,
# spans held per root, and how long an unfinished root is kept.  Together with the processor's
# global cap on held spans (200,000) they bound its worst case to about 41 MiB (measured).
DEFAULT_MAX_TRACES_IN_FLIGHT = 10000
DEFAULT_MAX_SPANS_PER_TRACE = 1000
DEFAULT_TRACE_TTL_SECONDS = 60.0
# /health: host ratios above these are "degraded" (see docs/metrics.md#health).
DEFAULT_HEALTH_CPU_THRESHOLD = 0.8
DEFAULT_HEALTH_MEMORY_THRESHOLD = 0.8
DEFAULT_HEALTH_DISK_THRESHOLD = 0.9
# Spans left out of the shares, the histograms and the report (docs/processor.md "Noise"): the
# ASGI instrumentation's children of a server span, named "<server span name> http send" /
# "... http receive" (and the websocket ones).  "*" starts a suffix pattern.
DEFAULT_IGNORED_SPANS: tuple[str, ...] = (
    "* http send",
    "* http receive",
    "* websocket send",
    "* websocket receive",
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one :func:`otelperf.configure` call (compared for idempotency)."""

    service_name: str
    resource_attributes: tuple[tuple[str, str], ...]
    prometheus_host: str
    prometheus_port: int
    start_server: bool
    disabled: bool
    max_operations: int
    duration_buckets: tuple[float, ...]
    track_cpu: bool
    health_cpu_threshold: float = DEFAULT_HEALTH_CPU_THRESHOLD
    health_memory_threshold: float = DEFAULT_HEALTH_MEMORY_THRESHOLD
    health_disk_threshold: float = DEFAULT_HEALTH_DISK_THRESHOLD
    process_memory_limit: int | None = None
    ignore_spans: tuple[str, ...] = DEFAULT_IGNORED_SPANS
    web_config_file: str | None = None
    max_traces_in_flight: int = DEFAULT_MAX_TRACES_IN_FLIGHT
    max_spans_per_trace: int = DEFAULT_MAX_SPANS_PER_TRACE
    trace_ttl_seconds: float = DEFAULT_TRACE_TTL_SECONDS
    # At exit (docs/batch.md): the final report and where it goes, and the Pushgateway push.
    report_at_exit: str = "none"
    report_file: str | None = None
    push_gateway_url: str | None = None
    push_job: str | None = None  # None: the service name

    @property
    def finishes_at_exit(self) -> bool:
        """Whether the process writes a report or pushes its metrics when it exits."""
        return self.report_at_exit != "none" or self.push_gateway_url is not None


def _env(env: Mapping[str, str], name: str) -> str | None:
    v = env.get(name)
    return v if v is not None and v.strip() != "" else None


def resolve(
    *,
    service_name: str | None = None,
    prometheus_host: str | None = None,
    prometheus_port: int | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    start_server: bool = True,
    disabled: bool | None = None,
    max_operations: int | None = None,
    duration_buckets: Iterable[float] | None = None,
    track_cpu: bool | None = None,
    env: Mapping[str, str] | None = None,
    health_cpu_threshold: float | None = None,
    health_memory_threshold: float | None = None,
    health_disk_threshold: float | None = None,
    process_memory_limit: int | str | None = None,
    ignore_spans: Iterable[str] | None = None,
    web_config_file: str | os.PathLike[str] | None = None,
    max_traces_in_flight: int | None = None,
    max_spans_per_trace: int | None = None,
    trace_ttl_seconds: float | None = None,
    report_at_exit: str | None = None,
    report_file: str | os.PathLike[str] | None = None,
    push_gateway_url: str | None = None,
    push_job: str | None = None,
) -> Settings:
    """Resolve settings; arguments beat environment variables, which beat defaults.

    >>> resolve(service_name="api", prometheus_port=0, env={}).prometheus_port
    0
    """
    env = os.environ if env is None else env
    if not isinstance(start_server, bool):
        raise ConfigError(f"start_server={show(start_server)} is not a boolean: pass True or False")

    attrs: dict[str, str] = {}
    raw_attrs = _env(env, "OTEL_RESOURCE_ATTRIBUTES")
    if raw_attrs is not None:
        attrs.update(parse_resource_attributes(raw_attrs))
    if resource_attributes is not None:
        if not isinstance(resource_attributes, Mapping):
            raise ConfigError(f"resource_attributes={show(resource_attributes)} is not a mapping")
        attrs.update({str(k): str(v) for k, v in resource_attributes.items()})

    if service_name is not None:
        if not isinstance(service_name, str) or not service_name.strip():
            raise ConfigError(f"service_name={show(service_name)} must be a non-empty string")
        name = service_name
    else:
        name = _env(env, "OTEL_SERVICE_NAME") or attrs.get("service.name") or "unknown_service"
    attrs["service.name"] = name

    if prometheus_host is not None:
        if not isinstance(prometheus_host, str) or not prometheus_host.strip():
            raise ConfigError(
                f"prometheus_host={show(prometheus_host)} must be a host name or address"
            )
        host = prometheus_host
    else:
        host = _env(env, "OTEL_EXPORTER_PROMETHEUS_HOST") or DEFAULT_HOST

    def choose(
        value: Any, arg: str, var: str, parse: Callable[[Any, str], T], default: T,
        parse_arg: Callable[[Any, str], T] | None = None,
    ) -> T:  # fmt: skip
        # The argument if given, else the variable if set, else the default; the parser names
        # whichever source the value came from.
        if value is not None:
            return (parse_arg or parse)(value, arg)
        raw = _env(env, var)
        return default if raw is None else parse(raw, var)

    def port_(v: Any, src: str) -> int:
        return parse_int(v, src, low=0, high=65535)

    def positive(v: Any, src: str) -> int:
        return parse_int(v, src, low=1)

    def strict_bool(v: Any, src: str) -> bool:
        # Arguments must be real booleans: bool("false") is True, so a string (or 0/1, None
        # from a template) would silently mean the opposite of what it says.  Variables are
        # strings by nature and are parsed as OTel booleans instead.
        if not isinstance(v, bool):
            raise ConfigError(f"{src}={show(v)} is not a boolean: pass True or False")
        return v

    def ttl_(v: Any, src: str) -> float:
        x = parse_float(v, src, low=0.0, high=86400.0)
        if x <= 0:
            raise ConfigError(
                f"{src}={show(v)} is out of range: it must be a number of seconds > 0"
            )
        return x

    def ratio(v: Any, src: str) -> float:
        try:
            return parse_float(v, src, low=0.0, high=1.0)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (a ratio: 0.8 means 80 %)") from None

    port = choose(prometheus_port, "prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", port_,
                  DEFAULT_PORT)  # fmt: skip
    disabled = choose(disabled, "disabled", "OTEL_SDK_DISABLED", parse_bool, False, strict_bool)
    max_ops = choose(max_operations, "max_operations", "OTELPERF_MAX_OPERATIONS", positive,
                     DEFAULT_MAX_OPERATIONS)  # fmt: skip
    buckets = choose(duration_buckets, "duration_buckets", "OTELPERF_DURATION_BUCKETS",
                     parse_buckets, DEFAULT_DURATION_BUCKETS)  # fmt: skip
    # Opt-in: two thread-CPU clock reads are a system call each (~1.5 us per operation,
    # BENCHMARKS.md), which the overhead goal has no room for.
    track_cpu = choose(track_cpu, "track_cpu", "OTELPERF_TRACK_CPU", parse_bool, False,
                       strict_bool)  # fmt: skip
    thresholds = {
        arg: choose(value, arg, var, ratio, default)
        for arg, var, value, default in (
            ("health_cpu_threshold", "OTELPERF_HEALTH_CPU_THRESHOLD", health_cpu_threshold,
             DEFAULT_HEALTH_CPU_THRESHOLD),
            ("health_memory_threshold", "OTELPERF_HEALTH_MEMORY_THRESHOLD",
             health_memory_threshold, DEFAULT_HEALTH_MEMORY_THRESHOLD),
            ("health_disk_threshold", "OTELPERF_HEALTH_DISK_THRESHOLD", health_disk_threshold,
             DEFAULT_HEALTH_DISK_THRESHOLD),
        )
    }  # fmt: skip
    mem_limit: int | None = choose(process_memory_limit, "process_memory_limit",
                                   "OTELPERF_PROCESS_MEMORY_LIMIT", parse_bytes, None)  # fmt: skip
    # A string argument is refused (not split on commas): ignore_spans="health" is most likely
    # meant as ["health"], and a bare string iterates as its characters.
    ignore = choose(ignore_spans, "ignore_spans", "OTELPERF_IGNORE_SPANS", parse_span_patterns,
                    DEFAULT_IGNORED_SPANS, _span_list)  # fmt: skip
    # The processor's trace table (docs/processor.md "Memory").
    max_traces = choose(max_traces_in_flight, "max_traces_in_flight",
                        "OTELPERF_MAX_TRACES_IN_FLIGHT", positive,
                        DEFAULT_MAX_TRACES_IN_FLIGHT)  # fmt: skip
    max_spans = choose(max_spans_per_trace, "max_spans_per_trace", "OTELPERF_MAX_SPANS_PER_TRACE",
                       positive, DEFAULT_MAX_SPANS_PER_TRACE)  # fmt: skip
    ttl = choose(trace_ttl_seconds, "trace_ttl_seconds", "OTELPERF_TRACE_TTL_SECONDS", ttl_,
                 DEFAULT_TRACE_TTL_SECONDS)  # fmt: skip

    # The file itself (TLS, users) is read where the server starts (otelperf.expose.webconfig):
    # a bad file is a ConfigError from configure() all the same.
    web_config = choose(web_config_file, "web_config_file", "OTELPERF_WEB_CONFIG_FILE",
                        _path, None)  # fmt: skip

    report_path = choose(report_file, "report_file", "OTELPERF_REPORT_FILE", _path, None)
    # A file alone asks for a report too, in the format its name says (docs/batch.md).
    report_at = choose(report_at_exit, "report_at_exit", "OTELPERF_REPORT", parse_report_format,
                       "none" if report_path is None else format_for_file(report_path))  # fmt: skip
    if report_at == "html" and report_path is None:
        raise ConfigError(
            "an HTML report at exit needs a file: set report_file= or OTELPERF_REPORT_FILE"
        )
    gateway = choose(push_gateway_url, "push_gateway_url", "OTELPERF_PUSHGATEWAY_URL",
                     parse_http_url, None)  # fmt: skip
    job = choose(push_job, "push_job", "OTELPERF_PUSHGATEWAY_JOB", _name, None)

    return Settings(
        service_name=name,
        resource_attributes=tuple(sorted(attrs.items())),
        prometheus_host=host,
        prometheus_port=port,
        start_server=start_server,
        disabled=bool(disabled),
        max_operations=max_ops,
        duration_buckets=buckets,
        track_cpu=bool(track_cpu),
        health_cpu_threshold=thresholds["health_cpu_threshold"],
        health_memory_threshold=thresholds["health_memory_threshold"],
        health_disk_threshold=thresholds["health_disk_threshold"],
        process_memory_limit=mem_limit,
        ignore_spans=ignore,
        web_config_file=web_config,
        max_traces_in_flight=max_traces,
        max_spans_per_trace=max_spans,
        trace_ttl_seconds=ttl,
        report_at_exit=report_at,
        report_file=report_path,
        push_gateway_url=gateway,
        push_job=job,
    )


def _name(value: object, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}={show(value)} must be a non-empty name")
    return value.strip()


def _path(value: object, source: str) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(os.fspath(value)).strip():
        raise ConfigError(f"{source}={value!r} is not a file path")
    return str(os.fspath(value))


def _span_list(value: object, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigError(
            f"{source}={show(value)} is a string: give a list of span names, e.g. [{show(value)}]"
        )
    return parse_span_patterns(value, source)
