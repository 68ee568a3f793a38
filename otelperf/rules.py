"""Prometheus recording and alerting rules, generated from the name table.

:func:`build_rules` is pure: a :class:`RulesConfig` in, a mapping of file name to rule-file
data out.  Only ``otelperf rules`` (:func:`run`) writes files, deterministically, and
``--check`` compares them with what the generator makes now.

Settings come from a YAML or TOML file (see docs/alerting.md); every key has a documented
default and a bad value is reported with its dotted key, so a typo fails the build, not the
pager.

>>> files = build_rules(RulesConfig())
>>> sorted(files)
['alerts.yml', 'recording.yml']
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from otelperf import _names as n
from otelperf.errors import ConfigError
from otelperf.thresholds import OPERATION_OVERRIDABLE, RATIOS, Thresholds

RECORDING_FILE = "recording.yml"
ALERTS_FILE = "alerts.yml"
DEFAULT_OUT = "alert_rules"
DEFAULT_RUNBOOK_URL = "https://github.com/otelperf/otelperf/blob/main/docs/runbooks.md#{anchor}"

# Every alert name, in the order the rules file lists them (the names are a contract).
ALERT_NAMES: tuple[str, ...] = (
    "OtelperfOperationErrorRateHigh",
    "OtelperfOperationSlow",
    "OtelperfOperationLatencyRegression",
    "OtelperfOperationLatencyAnomaly",
    "OtelperfThroughputLow",
    "OtelperfBottleneckDominant",
    "OtelperfBottleneckShift",
    "OtelperfCacheHitRateLow",
    "OtelperfApiErrorRateHigh",
    "OtelperfApiCostBudgetExceeded",
    "OtelperfProcessMemoryHigh",
    "OtelperfMemoryLeakSuspected",
    "OtelperfHostCpuHigh",
    "OtelperfHostMemoryHigh",
    "OtelperfDiskAlmostFull",
    "OtelperfTargetDown",
    "OtelperfSpansDropped",
    "OtelperfMetricsCardinalityOverflow",
)

DEFAULT_FOR: dict[str, str] = {
    "OtelperfOperationErrorRateHigh": "5m",
    "OtelperfOperationSlow": "10m",
    "OtelperfOperationLatencyRegression": "15m",
    "OtelperfOperationLatencyAnomaly": "15m",
    "OtelperfThroughputLow": "15m",
    "OtelperfBottleneckDominant": "30m",
    "OtelperfBottleneckShift": "30m",
    "OtelperfCacheHitRateLow": "15m",
    "OtelperfApiErrorRateHigh": "5m",
    "OtelperfApiCostBudgetExceeded": "15m",
    "OtelperfProcessMemoryHigh": "10m",
    "OtelperfMemoryLeakSuspected": "30m",
    "OtelperfHostCpuHigh": "10m",
    "OtelperfHostMemoryHigh": "10m",
    "OtelperfDiskAlmostFull": "10m",
    "OtelperfTargetDown": "2m",
    "OtelperfSpansDropped": "5m",
    "OtelperfMetricsCardinalityOverflow": "5m",
}


@dataclass(frozen=True)
class RulesConfig:
    """Everything the generator needs; defaults are the shipped alert_rules/.

    >>> RulesConfig(rate_window="1m").rate_window
    '1m'
    """

    # PromQL matchers added to every raw selector, e.g. 'job="checkout"'; empty: all jobs.
    job_selector: str = ""
    # ``{alertname}`` and ``{anchor}`` (the lowercased alert name, GitHub's heading anchor).
    runbook_url: str = DEFAULT_RUNBOOK_URL
    # Rule-group evaluation interval; None leaves Prometheus' global evaluation_interval.
    evaluation_interval: str | None = None
    rate_window: str = "5m"
    # Traffic guard for the operation ratio and latency alerts: no NaN, no 1-of-2 = 50 % pages.
    min_requests_per_minute: float = 1.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    for_: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FOR))
    # operation name -> {threshold name: value} for the OPERATION_OVERRIDABLE thresholds.
    operations: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


# --- validation -----------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
_MATCHER = re.compile(r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*')
_OPERATION_NAME = re.compile(r"^[^\"\\\n]+$")


def _duration(value: object, key: str) -> str:
    if not isinstance(value, str) or not value or not _DURATION.match(value) or value == "0":
        raise ConfigError(f"{key}={value!r} is not a Prometheus duration (e.g. 30s, 5m, 1h)")
    return value


def _number(value: object, key: str, *, ratio: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r} is not a number")
    x = float(value)
    if x != x or x in (float("inf"), float("-inf")) or x < 0 or (ratio and x > 1):
        bound = "between 0 and 1" if ratio else ">= 0"
        raise ConfigError(f"{key}={value!r} is out of range: it must be a number {bound}")
    return x


def _job_selector(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}={value!r} is not a string of PromQL label matchers")
    value = value.strip()
    if value and not all(_MATCHER.fullmatch(part) for part in _split_matchers(value)):
        raise ConfigError(
            f"{key}={value!r} is not a comma-separated list of label matchers "
            '(e.g. job="checkout" or job=~"api|worker")'
        )
    return value


def _split_matchers(text: str) -> list[str]:
    # Split on commas outside quoted values.
    parts: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def _runbook_url(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}={value!r} is not a URL pattern")
    try:
        value.format(alertname="A", anchor="a")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{key}={value!r}: only the placeholders {{alertname}} and {{anchor}} are known ({exc})"
        ) from None
    return value


def _mapping(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a table/mapping, not {type(value).__name__}")
    for k in value:
        if not isinstance(k, str):
            raise ConfigError(f"{key}: key {k!r} is not a string")
    return value


def _unknown(key: str, got: object, known: list[str]) -> ConfigError:
    return ConfigError(f"{key}: unknown key {got!r} (known: {', '.join(sorted(known))})")


def config_from_mapping(data: object, source: str = "rules config") -> RulesConfig:
    """Validate a parsed config file; errors name ``source`` and the dotted key.

    >>> config_from_mapping({"rate_window": "1m"}).rate_window
    '1m'
    >>> config_from_mapping({"thresholds": {"api_error_ratio": 2}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    otelperf.config.ConfigError: rules config: thresholds.api_error_ratio=2 is out of range: ...
    """
    try:
        return _config_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _config_from_mapping(data: object) -> RulesConfig:
    if data is None:
        data = {}
    top = _mapping(data, "(top level)")
    known = [f.name.rstrip("_") for f in fields(RulesConfig)]
    for k in top:
        if k not in known:
            raise _unknown("(top level)", k, known)
    cfg = RulesConfig()
    if "job_selector" in top:
        cfg = replace(cfg, job_selector=_job_selector(top["job_selector"], "job_selector"))
    if "runbook_url" in top:
        cfg = replace(cfg, runbook_url=_runbook_url(top["runbook_url"], "runbook_url"))
    if top.get("evaluation_interval") is not None:
        interval = _duration(top["evaluation_interval"], "evaluation_interval")
        cfg = replace(cfg, evaluation_interval=interval)
    if "rate_window" in top:
        cfg = replace(cfg, rate_window=_duration(top["rate_window"], "rate_window"))
    if "min_requests_per_minute" in top:
        guard = _number(top["min_requests_per_minute"], "min_requests_per_minute")
        cfg = replace(cfg, min_requests_per_minute=guard)
    if "thresholds" in top:
        th = _mapping(top["thresholds"], "thresholds")
        names = [f.name for f in fields(Thresholds)]
        values: dict[str, float] = {}
        for k, v in th.items():
            if k not in names:
                raise _unknown("thresholds", k, names)
            values[k] = _number(v, f"thresholds.{k}", ratio=k in RATIOS)
        cfg = replace(cfg, thresholds=replace(cfg.thresholds, **values))
    if "for" in top:
        durations = dict(DEFAULT_FOR)
        for k, v in _mapping(top["for"], "for").items():
            if k not in DEFAULT_FOR:
                raise _unknown("for", k, list(DEFAULT_FOR))
            durations[k] = _duration(v, f"for.{k}")
        cfg = replace(cfg, for_=durations)
    if "operations" in top:
        ops: dict[str, dict[str, float]] = {}
        for op, overrides in _mapping(top["operations"], "operations").items():
            if not _OPERATION_NAME.match(op):
                raise ConfigError(f"operations: {op!r} is not a usable operation name")
            ops[op] = {}
            for k, v in _mapping(overrides, f"operations.{op}").items():
                if k not in OPERATION_OVERRIDABLE:
                    raise _unknown(f"operations.{op}", k, list(OPERATION_OVERRIDABLE))
                ops[op][k] = _number(v, f"operations.{op}.{k}", ratio=k in RATIOS)
        cfg = replace(cfg, operations=ops)
    return cfg


def _load_toml(text: str) -> object:
    # tomllib is 3.11+; the tomli backport has the same API (pyproject pulls it in on 3.10).
    name = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    module: Any = importlib.import_module(name)
    return module.loads(text)


def load_config(path: str | Path) -> RulesConfig:
    """Read a rules config file: TOML if it ends in ``.toml``, YAML otherwise.

    >>> load_config("rules.yml")  # doctest: +SKIP
    RulesConfig(...)
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config {p}: cannot read it ({exc.strerror})") from None
    try:
        data = _load_toml(text) if p.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        detail = str(exc).replace("\n", " ")
        kind = "TOML" if p.suffix == ".toml" else "YAML"
        raise ConfigError(f"{p}: not valid {kind}: {detail}") from None
    return config_from_mapping(data, str(p))


# --- PromQL helpers -------------------------------------------------------------------------


def _num(x: float) -> str:
    """A threshold as PromQL and humans like it: 0.05, 1000, 1073741824."""
    return f"{x:.12g}" if x != int(x) else str(int(x))


def _pct(x: float) -> str:
    return f"{x * 100:.6g}%"


def _sel(metric: str, job_selector: str, *extra: str) -> str:
    matchers = [m for m in (job_selector, *extra) if m]
    return metric + ("{" + ", ".join(matchers) + "}" if matchers else "")


def _eq(label: str, value: str) -> str:
    return f'{label}="{value}"'


def _regex_literal(values: list[str]) -> str:
    return "|".join(re.escape(v) for v in values).replace("\\", "\\\\")


def _by(*labels: str) -> str:
    return "(" + ", ".join(labels) + ")"


@dataclass(frozen=True)
class _Alert:
    name: str
    severity: str
    expr: str
    summary: str
    description: str
    # Extra static labels: an override rule names its operation, so promtool (and humans) can
    # tell it from the default rule of the same alert.
    labels: tuple[tuple[str, str], ...] = ()


class _Builder:
    def __init__(self, cfg: RulesConfig) -> None:
        self.cfg = cfg
        self.th = cfg.thresholds
        self.w = cfg.rate_window

    def raw(self, metric: str, *extra: str) -> str:
        return _sel(metric, self.cfg.job_selector, *extra)

    def rate(self, metric: str, window: str, *extra: str) -> str:
        return f"rate({self.raw(metric, *extra)}[{window}])"

    def traffic(self, recording: str, per_minute: float, *on: str) -> str:
        return f"on{_by(*on)} ({recording} * 60 >= {_num(per_minute)})"

    # --- recording rules ----------------------------------------------------------------
    def recording(self) -> list[dict[str, Any]]:
        w = self.w
        op = (n.JOB, n.OPERATION)
        dur = n.OPERATION_DURATION.prom
        req, err = n.REC_OPERATION_REQUESTS.name, n.REC_OPERATION_ERRORS.name
        p95 = n.REC_OPERATION_P95.name
        req1h = n.REC_OPERATION_REQUESTS_1H.name

        def p95_of(window: str, present: str) -> str:
            # Keep the quantile only where the operation ran: no NaN samples in the 1d stats.
            return (
                f"histogram_quantile(0.95, sum by {_by(*op, 'le')} "
                f"({self.rate(dur + '_bucket', window)})) and on{_by(*op)} ({present} > 0)"
            )

        def share(window: str) -> str:
            cp = self.rate(n.CRITICAL_PATH.prom, window)
            root = self.rate(n.ROOT_DURATION.prom, window)
            return (
                f"sum by {_by(n.JOB, n.ROOT_OPERATION, n.OPERATION)} ({cp}) "
                f"/ on{_by(n.JOB, n.ROOT_OPERATION)} group_left() "
                f"(sum by {_by(n.JOB, n.ROOT_OPERATION)} ({root}) > 0)"
            )

        cache, api = (n.JOB, n.CACHE), (n.JOB, n.API)
        hits = self.rate(n.CACHE_REQUESTS.prom, w, _eq(n.RESULT, n.RESULT_HIT))
        cache_req = n.REC_CACHE_REQUESTS.name
        api_err = self.rate(n.API_CALLS.prom, w, _eq(n.OUTCOME, n.OUTCOME_ERROR))
        rules: list[tuple[n.Recording, str]] = [
            (n.REC_OPERATION_REQUESTS, f"sum by {_by(*op)} ({self.rate(dur + '_count', w)})"),
            (
                n.REC_OPERATION_ERRORS,
                f"sum by {_by(*op)} "
                f"({self.rate(dur + '_count', w, _eq(n.OUTCOME, n.OUTCOME_ERROR))})",
            ),
            (n.REC_OPERATION_ERROR_RATIO, f"{err} / ({req} > 0)"),
            (n.REC_OPERATION_P95, p95_of(w, req)),
            (
                n.REC_OPERATION_REQUESTS_1H,
                f"sum by {_by(*op)} (increase({self.raw(dur + '_count')}[1h]))",
            ),
            (n.REC_OPERATION_P95_1H, p95_of("1h", req1h)),
            (n.REC_OPERATION_P95_MEAN_1D, f"avg_over_time({p95}[1d])"),
            (n.REC_OPERATION_P95_STDDEV_1D, f"stddev_over_time({p95}[1d])"),
            (
                n.REC_OPERATION_ITEMS,
                f"sum by {_by(*op)} ({self.rate(n.OPERATION_ITEMS.prom, w)})",
            ),
            (
                n.REC_OPERATION_ITEMS_PER_BUSY_SECOND,
                f"{n.REC_OPERATION_ITEMS.name} / on{_by(*op)} "
                f"(sum by {_by(*op)} ({self.rate(dur + '_sum', w)}) > 0)",
            ),
            (n.REC_CRITICAL_PATH_SHARE, share(w)),
            (n.REC_CRITICAL_PATH_SHARE_1H, share("1h")),
            (n.REC_CACHE_REQUESTS, f"sum by {_by(*cache)} ({self.rate(n.CACHE_REQUESTS.prom, w)})"),
            (
                # A cache with lookups but no hit yet has no hit series: count it as 0 hits,
                # or the worst cache of all would never alert.
                n.REC_CACHE_HIT_RATIO,
                f"(sum by {_by(*cache)} ({hits}) or {cache_req} * 0) / ({cache_req} > 0)",
            ),
            (n.REC_API_CALLS, f"sum by {_by(*api)} ({self.rate(n.API_CALLS.prom, w)})"),
            (
                n.REC_API_ERROR_RATIO,
                f"sum by {_by(*api)} ({api_err}) / ({n.REC_API_CALLS.name} > 0)",
            ),
            (n.REC_API_COST_1H, f"sum by {_by(*api)} ({self.rate(n.API_COST.prom, '1h')})"),
        ]
        return [{"expr": expr, "record": rec.name} for rec, expr in rules]

    # --- alerts -------------------------------------------------------------------------
    def per_operation(self, threshold: str, make: Callable[[float, str], _Alert]) -> list[_Alert]:
        """One alert for the default threshold, one per operation that overrides it."""
        special = sorted(op for op, o in self.cfg.operations.items() if threshold in o)
        default = getattr(self.th, threshold)
        alerts = []
        if special:
            alerts.append(
                # re.escape's backslashes must be doubled inside a PromQL string literal.
                make(default, f'{{{n.OPERATION}!~"{_regex_literal(special)}"}}')
            )
        else:
            alerts.append(make(default, ""))
        for op in special:
            alert = make(self.cfg.operations[op][threshold], f"{{{_eq(n.OPERATION, op)}}}")
            alerts.append(replace(alert, labels=((n.OPERATION, op),)))
        return alerts

    def alerts(self) -> list[_Alert]:
        th, w = self.th, self.w
        op = (n.JOB, n.OPERATION)
        req_guard = self.traffic(
            n.REC_OPERATION_REQUESTS.name, self.cfg.min_requests_per_minute, *op
        )
        who = "{{ $labels.operation }} in job {{ $labels.job }}"
        out: list[_Alert] = []

        def error_rate(severity: str) -> Callable[[float, str], _Alert]:
            def make(t: float, m: str) -> _Alert:
                return _Alert(
                    "OtelperfOperationErrorRateHigh", severity,
                    f"{n.REC_OPERATION_ERROR_RATIO.name}{m} > {_num(t)} and {req_guard}",
                    "An operation is failing more often than its error budget allows.",
                    f"{{{{ $value | humanizePercentage }}}} of {who} failed over the last {w} "
                    f"(threshold {_pct(t)}).",
                )  # fmt: skip

            return make

        out += self.per_operation("operation_error_ratio_warning", error_rate("warning"))
        out += self.per_operation(
            "operation_error_ratio_critical",
            error_rate("critical"),
        )

        def slow(t: float, m: str) -> _Alert:
            return _Alert(
                "OtelperfOperationSlow", "warning",
                f"{n.REC_OPERATION_P95.name}{m} > {_num(t)} and {req_guard}",
                "An operation's 95th percentile duration is above its threshold.",
                f"p95 duration of {who} is {{{{ $value | humanizeDuration }}}} over the last {w} "
                f"(threshold {_num(t)}s).",
            )  # fmt: skip

        out += self.per_operation("operation_slow_p95_seconds", slow)

        p95_1h, req1h = n.REC_OPERATION_P95_1H.name, n.REC_OPERATION_REQUESTS_1H.name
        k = _num(th.latency_regression_factor)
        min_req = _num(th.latency_regression_min_requests_per_hour)
        out.append(_Alert(
            "OtelperfOperationLatencyRegression", "warning",
            f"{p95_1h} > {k} * ({p95_1h} offset 1d) "
            f"and on{_by(*op)} ({req1h} >= {min_req}) "
            f"and on{_by(*op)} ({req1h} offset 1d >= {min_req})",
            "An operation's hourly p95 duration is well above the same hour yesterday.",
            f"p95 duration of {who} over the last hour is {{{{ $value | humanizeDuration }}}}, "
            f"more than {k}x the p95 of the same hour one day earlier.",
        ))  # fmt: skip

        p95, mean = n.REC_OPERATION_P95.name, n.REC_OPERATION_P95_MEAN_1D.name
        sd = n.REC_OPERATION_P95_STDDEV_1D.name
        z, floor = _num(th.latency_anomaly_stddevs), _num(th.latency_anomaly_min_factor)
        out.append(_Alert(
            "OtelperfOperationLatencyAnomaly", "warning",
            f"{p95} > {mean} + {z} * {sd} and {p95} > {floor} * {mean} and {req_guard}",
            "An operation's p95 duration is far outside its usual range for the last day.",
            f"p95 duration of {who} is {{{{ $value | humanizeDuration }}}}, more than {z} "
            f"standard deviations above its 1-day mean.",
        ))  # fmt: skip

        in_flight = self.raw(n.OPERATION_IN_FLIGHT.prom)

        def throughput(t: float, m: str) -> _Alert:
            return _Alert(
                "OtelperfThroughputLow", "warning",
                f"{n.REC_OPERATION_ITEMS.name}{m} < {_num(t)} and on{_by(*op)} "
                f"({n.REC_OPERATION_REQUESTS.name} > 0 or max by {_by(*op)} ({in_flight}) > 0)",
                "An operation that reports items is processing fewer items per second than "
                "expected.",
                f"{who} processed {{{{ $value | humanize }}}} items/s over the last {w} while "
                f"running (threshold {_num(t)}/s).",
            )  # fmt: skip

        out += self.per_operation("throughput_min_items_per_second", throughput)

        share, share1h = n.REC_CRITICAL_PATH_SHARE.name, n.REC_CRITICAL_PATH_SHARE_1H.name
        roots = self.rate(n.ROOTS.prom, w)

        # Both hours need traffic, or one root a day earlier could make any share a "shift".
        def roots_1h(offset: str = "") -> str:
            rate = f"rate({self.raw(n.ROOTS.prom)}[1h]{offset})"
            return f"sum by {_by(n.JOB, n.ROOT_OPERATION)} ({rate})"

        guard = _num(self.cfg.min_requests_per_minute)
        path = "{{ $labels.operation }} under {{ $labels.root_operation }} in job {{ $labels.job }}"
        out.append(_Alert(
            "OtelperfBottleneckDominant", "info",
            f"{share} > {_num(th.bottleneck_dominant_share)} "
            f"and on{_by(n.JOB, n.ROOT_OPERATION)} (sum by {_by(n.JOB, n.ROOT_OPERATION)} "
            f"({roots}) * 60 >= {_num(self.cfg.min_requests_per_minute)})",
            "One operation takes most of its root operation's critical path.",
            f"{path} is {{{{ $value | humanizePercentage }}}} of the critical path over the last "
            f"{w} (threshold {_pct(th.bottleneck_dominant_share)}).",
        ))  # fmt: skip
        out.append(_Alert(
            "OtelperfBottleneckShift", "warning",
            f"{share1h} - ({share1h} offset 1d) > {_num(th.bottleneck_shift_share)} "
            f"and on{_by(n.JOB, n.ROOT_OPERATION)} ({roots_1h()} * 60 >= {guard}) "
            f"and on{_by(n.JOB, n.ROOT_OPERATION)} ({roots_1h(' offset 1d')} * 60 >= {guard})",
            "An operation's share of the critical path rose sharply against one day earlier.",
            f"The critical-path share of {path} over the last hour rose by "
            f"{{{{ $value | humanizePercentage }}}} against the same hour one day earlier "
            f"(threshold {_pct(th.bottleneck_shift_share)}).",
        ))  # fmt: skip

        cache = (n.JOB, n.CACHE)
        out.append(_Alert(
            "OtelperfCacheHitRateLow", "warning",
            f"{n.REC_CACHE_HIT_RATIO.name} < {_num(th.cache_hit_ratio_min)} and "
            + self.traffic(n.REC_CACHE_REQUESTS.name, th.cache_min_lookups_per_minute, *cache),
            "A cache is missing more often than expected.",
            f"Cache {{{{ $labels.cache }}}} in job {{{{ $labels.job }}}} hit "
            f"{{{{ $value | humanizePercentage }}}} of lookups over the last {w} "
            f"(threshold {_pct(th.cache_hit_ratio_min)}).",
        ))  # fmt: skip

        api = (n.JOB, n.API)
        out.append(_Alert(
            "OtelperfApiErrorRateHigh", "warning",
            f"{n.REC_API_ERROR_RATIO.name} > {_num(th.api_error_ratio)} and "
            + self.traffic(n.REC_API_CALLS.name, th.api_min_calls_per_minute, *api),
            "Calls to an external API are failing.",
            f"{{{{ $value | humanizePercentage }}}} of calls to {{{{ $labels.api }}}} from job "
            f"{{{{ $labels.job }}}} failed over the last {w} "
            f"(threshold {_pct(th.api_error_ratio)}).",
        ))  # fmt: skip
        out.append(_Alert(
            "OtelperfApiCostBudgetExceeded", "warning",
            f"sum by {_by(n.JOB)} ({n.REC_API_COST_1H.name}) * 86400 "
            f"> {_num(th.api_daily_budget_usd)}",
            "External API spend is on course to exceed the daily budget.",
            f"At the last hour's rate, job {{{{ $labels.job }}}} will spend "
            f"{{{{ $value | printf \"%.2f\" }}}} USD a day on external APIs "
            f"(budget {_num(th.api_daily_budget_usd)} USD).",
        ))  # fmt: skip

        rss = self.raw(n.PROCESS_RESIDENT_MEMORY)
        proc = "{{ $labels.instance }} (job {{ $labels.job }})"
        out.append(_Alert(
            "OtelperfProcessMemoryHigh", "warning",
            f"{rss} > {_num(th.process_memory_bytes)}",
            "A process uses more resident memory than expected.",
            f"Process {proc} has {{{{ $value | humanize1024 }}}}B resident "
            f"(threshold {_num(th.process_memory_bytes)} bytes).",
        ))  # fmt: skip
        out.append(_Alert(
            "OtelperfMemoryLeakSuspected", "warning",
            f"predict_linear({rss}[1h], 4 * 3600) > 2 * {rss} and deriv({rss}[1h]) > 0",
            "A process's resident memory keeps growing and would double within 4 hours.",
            f"Process {proc} grew over the last hour and is predicted to reach "
            f"{{{{ $value | humanize1024 }}}}B, twice its current resident memory, within 4h.",
        ))  # fmt: skip
        host = "{{ $labels.instance }} (job {{ $labels.job }})"
        out.append(_Alert(
            "OtelperfHostCpuHigh", "warning",
            f"{self.raw(n.HOST_CPU_UTILIZATION.prom)} > {_num(th.host_cpu_utilization)}",
            "A host's CPU is busy most of the time.",
            f"CPU utilization on {host} is {{{{ $value | humanizePercentage }}}} "
            f"(threshold {_pct(th.host_cpu_utilization)}).",
        ))  # fmt: skip
        out.append(_Alert(
            "OtelperfHostMemoryHigh", "warning",
            f"{self.raw(n.HOST_MEMORY_UTILIZATION.prom)} > {_num(th.host_memory_utilization)}",
            "A host's memory is nearly used up.",
            f"Memory utilization on {host} is {{{{ $value | humanizePercentage }}}} "
            f"(threshold {_pct(th.host_memory_utilization)}).",
        ))  # fmt: skip
        fs = self.raw(n.HOST_FILESYSTEM_UTILIZATION.prom)
        mount = "{{ $labels.system_filesystem_mountpoint }}"
        out.append(_Alert(
            "OtelperfDiskAlmostFull", "critical",
            f"{fs} > {_num(th.disk_utilization)}",
            "A filesystem is almost full.",
            f"Filesystem {mount} on {host} is {{{{ $value | humanizePercentage }}}} full "
            f"(threshold {_pct(th.disk_utilization)}).",
        ))  # fmt: skip
        out.append(_Alert(
            "OtelperfDiskAlmostFull", "warning",
            f"predict_linear({fs}[6h], 24 * 3600) > 1 "
            f"and {fs} > {_num(th.disk_predict_min_utilization)}",
            "A filesystem is almost full.",
            f"Filesystem {mount} on {host} is predicted to fill up within 24h "
            f"(predicted {{{{ $value | humanizePercentage }}}} in 24h).",
        ))  # fmt: skip
        out.append(_Alert(
            "OtelperfTargetDown", "critical",
            f"{self.raw(n.UP)} == 0",
            "Prometheus cannot scrape a target.",
            f"Target {{{{ $labels.instance }}}} of job {{{{ $labels.job }}}} has been down "
            f"for more than {self.cfg.for_['OtelperfTargetDown']} (up = {{{{ $value }}}}).",
        ))  # fmt: skip
        dropped = self.rate(n.DROPPED_SPANS.prom, w)
        out.append(_Alert(
            "OtelperfSpansDropped", "warning",
            f"sum by {_by(n.JOB, n.REASON)} ({dropped}) > 0",
            "otelperf is leaving spans out of its bottleneck attribution.",
            f"Job {{{{ $labels.job }}}} dropped {{{{ $value | humanize }}}} spans/s from "
            f"attribution over the last {w} (reason {{{{ $labels.reason }}}}).",
        ))  # fmt: skip
        overflow = self.rate(n.CARDINALITY_OVERFLOW.prom, w)
        out.append(_Alert(
            "OtelperfMetricsCardinalityOverflow", "warning",
            f"sum by {_by(n.JOB, n.COMPONENT)} ({overflow}) > 0",
            f'Measurements are being recorded under "{n.OVERFLOW}" because a label cap was '
            "reached.",
            f"Job {{{{ $labels.job }}}} recorded {{{{ $value | humanize }}}} measurements/s "
            f'under "{n.OVERFLOW}" in component {{{{ $labels.component }}}} over the last {w}.',
        ))  # fmt: skip
        return out

    def alert_rule(self, a: _Alert) -> dict[str, Any]:
        url = self.cfg.runbook_url.format(alertname=a.name, anchor=runbook_anchor(a.name))
        return {
            "alert": a.name,
            "annotations": {"description": a.description, "runbook_url": url,
                            "summary": a.summary},
            "expr": a.expr,
            "for": self.cfg.for_[a.name],
            "labels": {n.SEVERITY: a.severity, **dict(a.labels)},
        }  # fmt: skip


def runbook_anchor(alertname: str) -> str:
    """The GitHub heading anchor of an alert's runbook section (``## AlertName``).

    >>> runbook_anchor("OtelperfTargetDown")
    'otelperftargetdown'
    """
    return alertname.lower()


_GROUPS = (
    ("otelperf.operations", {"OtelperfOperationErrorRateHigh", "OtelperfOperationSlow",
     "OtelperfOperationLatencyRegression", "OtelperfOperationLatencyAnomaly",
     "OtelperfThroughputLow"}),
    ("otelperf.bottlenecks", {"OtelperfBottleneckDominant", "OtelperfBottleneckShift"}),
    ("otelperf.cache_and_apis", {"OtelperfCacheHitRateLow", "OtelperfApiErrorRateHigh",
     "OtelperfApiCostBudgetExceeded"}),
    ("otelperf.resources", {"OtelperfProcessMemoryHigh", "OtelperfMemoryLeakSuspected",
     "OtelperfHostCpuHigh", "OtelperfHostMemoryHigh", "OtelperfDiskAlmostFull"}),
    ("otelperf.pipeline", {"OtelperfTargetDown", "OtelperfSpansDropped",
     "OtelperfMetricsCardinalityOverflow"}),
)  # fmt: skip


def build_rules(cfg: RulesConfig | None = None) -> dict[str, dict[str, Any]]:
    """Rule files as data: ``{"recording.yml": {...}, "alerts.yml": {...}}``.

    >>> data = build_rules(RulesConfig(rate_window="1m"))
    >>> data["alerts.yml"]["groups"][0]["rules"][0]["alert"]
    'OtelperfOperationErrorRateHigh'
    """
    cfg = cfg or RulesConfig()
    b = _Builder(cfg)

    def group(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        g: dict[str, Any] = {"name": name, "rules": rules}
        if cfg.evaluation_interval is not None:
            g["interval"] = cfg.evaluation_interval
        return g

    alerts = b.alerts()
    groups = [
        group(gname, [b.alert_rule(a) for a in alerts if a.name in members])
        for gname, members in _GROUPS
    ]
    return {
        RECORDING_FILE: {"groups": [group("otelperf.recording", b.recording())]},
        ALERTS_FILE: {"groups": groups},
    }


def render(data: Mapping[str, Any]) -> str:
    """YAML text of one rule file: sorted keys, 2-space indent, no line folding, final newline."""
    text = yaml.safe_dump(
        dict(data), sort_keys=True, indent=2, default_flow_style=False, width=1_000_000,
        allow_unicode=True,
    )  # fmt: skip
    header = "# Generated by `otelperf rules`; do not edit (see docs/alerting.md).\n"
    return header + text


def render_files(cfg: RulesConfig | None = None) -> dict[str, str]:
    """File name -> text, exactly what ``otelperf rules`` writes."""
    return {name: render(data) for name, data in build_rules(cfg).items()}


# --- metric names a PromQL expression reads (for the name-table test and docs) ---------------

_PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "offset", "bool", "rate", "irate", "increase", "delta", "deriv",
    "predict_linear", "histogram_quantile", "avg_over_time", "stddev_over_time",
    "max_over_time", "min_over_time", "sum_over_time", "count_over_time", "abs", "clamp_min",
    "clamp_max", "absent", "label_replace", "vector", "scalar", "time", "le", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Names of the series a PromQL expression selects (a small tokenizer, not a parser).

    >>> sorted(metric_names('sum by (job) (rate(x_total{a="b"}[5m])) / on(job) y > 0'))
    ['x_total', 'y']
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # drop label values
    text = re.sub(r"\{[^}]*\}", "", text)  # and matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # and range/subquery windows
    # Label lists after by/without/on/ignoring/group_left/group_right are not metrics.
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    names = set()
    # The look-behind skips unit letters of numbers and durations ("1d" in "offset 1d").
    for m in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = m.group(0)
        if word.lower() in _PROMQL_WORDS:
            continue
        # A name directly followed by "(" is a function call.
        if text[m.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


# --- CLI --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="rules config, YAML or TOML (default: built-in defaults; "
                        "see docs/alerting.md)")  # fmt: skip
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"directory for the rule files (default {DEFAULT_OUT}/)")  # fmt: skip
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files in --out differ from the "
                        "generated ones")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """``otelperf rules``: write (or, with --check, compare) the rule files."""
    cfg = load_config(args.config) if args.config else RulesConfig()
    files = render_files(cfg)
    out = Path(args.out)
    if args.check:
        stale = []
        for name, text in sorted(files.items()):
            path = out / name
            try:
                current = path.read_text(encoding="utf-8")
            except OSError:
                current = None
            if current != text:
                stale.append(str(path))
        if stale:
            print(
                "otelperf rules: stale or missing: " + ", ".join(stale)
                + " (regenerate with: otelperf rules"
                + (f" --config {args.config}" if args.config else "")
                + f" --out {args.out})",
                file=sys.stderr,
            )  # fmt: skip
            return 1
        print(f"otelperf rules: {', '.join(sorted(files))} in {out} are up to date")
        return 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in sorted(files.items()):
            (out / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write ({exc.strerror})") from None
    print(f"otelperf rules: wrote {', '.join(sorted(files))} to {out}")
    return 0
