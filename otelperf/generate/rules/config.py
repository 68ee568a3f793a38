"""The rules config: :class:`RulesConfig`, read from YAML or TOML and validated key by key.

Every key has a documented default (docs/alerting.md) and a bad value is reported with its
dotted key, so a typo fails the build, not the pager.

>>> RulesConfig(rate_window="1m").rate_window
'1m'
"""

from __future__ import annotations

import importlib
import re
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from otelperf.errors import ConfigError
from otelperf.generate.promql import MAX_DURATION_SECONDS, duration_seconds, is_duration
from otelperf.generate.rules.catalog import DEFAULT_FOR
from otelperf.generate.rules.spec import DEFAULT_RUNBOOK_URL, DEFAULT_SLO, RuleContext
from otelperf.thresholds import OPERATION_OVERRIDABLE, RATIOS, Thresholds


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
    # The alert names the config file's ``for:`` set, even to their default value.
    for_set: frozenset[str] = frozenset()
    # operation name -> {threshold name: value} for the OPERATION_OVERRIDABLE thresholds.
    operations: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # "default" and operation name -> objectives (availability, latency_seconds,
    # latency_target); an operation's missing keys come from "default".
    slos: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {"default": dict(DEFAULT_SLO)}
    )

    def context(self) -> RuleContext:
        """What the rule groups read; ``for`` keeps only the durations the config set.

        A ``for`` the config set (``for_set``), or one that differs from :data:`DEFAULT_FOR`,
        applies to every rule of that alert name; the others keep each rule's own default
        (the predicted-full OtelperfDiskAlmostFull rule's ``1h``).
        """
        overrides = {
            k: v for k, v in self.for_.items() if k in self.for_set or DEFAULT_FOR.get(k) != v
        }
        return RuleContext(
            job_selector=self.job_selector,
            runbook_url=self.runbook_url,
            rate_window=self.rate_window,
            min_requests_per_minute=self.min_requests_per_minute,
            thresholds=self.thresholds,
            for_overrides=overrides,
            operations=self.operations,
            slos=self.slos,
        )


# --- validation -----------------------------------------------------------------------------

_MATCHER = re.compile(r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*')
# A PromQL escape after a backslash inside a double-quoted matcher value (Go's escapes).
_PROMQL_ESCAPE = re.compile(
    r"\\(?:[abfnrtv\\'\"]|[0-7]{3}|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"
)
# An operation a config may override: no quote, backslash or control character (the name
# stands in PromQL strings and YAML); fullmatch, since ``$`` would pass a trailing newline.
_OPERATION_NAME = re.compile(r'[^"\\\x00-\x1f\x7f]+')
_RUNBOOK_FIELDS = {"alertname", "anchor"}
MAX_RUNBOOK_URL = 2048  # characters, after expansion: a link, not a document


def _duration(value: object, key: str, *, zero: bool = False) -> str:
    """A Prometheus duration Prometheus accepts: written as one, in int64 nanoseconds, and
    above zero unless ``zero`` (``for: 0s`` fires at once; a rate window of 0s is an error)."""
    if not isinstance(value, str) or not is_duration(value) or value == "0":
        raise ConfigError(f"{key}={value!r} is not a Prometheus duration (e.g. 30s, 5m, 1h)")
    seconds = duration_seconds(value)
    if seconds > MAX_DURATION_SECONDS or (seconds == 0 and not zero):
        bound = "at most 292y" if seconds else "more than 0s"
        raise ConfigError(f"{key}={value!r} is out of range: it must be {bound}")
    return value


def _number(value: object, key: str, *, ratio: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r} is not a number")
    try:
        x = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise ConfigError(f"{key}={value!r:.40} is out of range: it is too large") from None
    if x != x or x in (float("inf"), float("-inf")) or x < 0 or (ratio and x > 1):
        bound = "between 0 and 1" if ratio else ">= 0"
        raise ConfigError(f"{key}={value!r} is out of range: it must be a number {bound}")
    return x


def _job_selector(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}={value!r} is not a string of PromQL label matchers")
    value = value.strip()
    if value and not all(_usable_matcher(part) for part in _split_matchers(value)):
        raise ConfigError(
            f"{key}={value!r} is not a comma-separated list of label matchers "
            '(e.g. job="checkout" or job=~"api|worker")'
        )
    return value


def _usable_matcher(part: str) -> bool:
    """One matcher Prometheus would accept: the syntax, only PromQL's escapes in the value,
    and for ``=~``/``!~`` a regex that compiles (Python's parser stands in for RE2's here:
    both refuse unbalanced groups and dangling quantifiers)."""
    m = _MATCHER.fullmatch(part)
    if m is None:
        return False
    raw = part.split('"', 1)[1].rsplit('"', 1)[0]
    if "\\" in _PROMQL_ESCAPE.sub("", raw):
        return False
    if m.group(1) in ("=~", "!~"):
        try:
            re.compile(raw.encode().decode("unicode_escape"))
        except (re.error, UnicodeDecodeError):
            return False
    return True


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
    if not isinstance(value, str) or not value or len(value) > MAX_RUNBOOK_URL:
        raise ConfigError(f"{key}={value!r:.80} is not a URL pattern of at most "
                          f"{MAX_RUNBOOK_URL} characters")  # fmt: skip
    try:
        # Only the bare placeholders: a format spec ("{anchor:>999999999}") or a conversion
        # could expand one URL to hundreds of megabytes.
        fields_ = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(value)
                   if f is not None]  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"{key}={value!r:.80}: not a URL pattern ({exc})") from None
    for name, spec, conv in fields_:
        if name not in _RUNBOOK_FIELDS or spec or conv:
            raise ConfigError(
                f"{key}={value!r:.80}: only the placeholders {{alertname}} and {{anchor}} are "
                f"known, without format specs or conversions (got {{{name}...}})"
            )
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
    otelperf.errors.ConfigError: rules config: thresholds.api_error_ratio=2 is out of range: ...
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
            durations[k] = _duration(v, f"for.{k}", zero=True)
        cfg = replace(cfg, for_=durations, for_set=frozenset(_mapping(top["for"], "for")))
    if "operations" in top:
        ops: dict[str, dict[str, float]] = {}
        for op, overrides in _mapping(top["operations"], "operations").items():
            if not _OPERATION_NAME.fullmatch(op) or not _utf8(op):
                raise ConfigError(f"operations: {op!r} is not a usable operation name")
            ops[op] = {}
            for k, v in _mapping(overrides, f"operations.{op}").items():
                if k not in OPERATION_OVERRIDABLE:
                    raise _unknown(f"operations.{op}", k, list(OPERATION_OVERRIDABLE))
                ops[op][k] = _number(v, f"operations.{op}.{k}", ratio=k in RATIOS)
        cfg = replace(cfg, operations=ops)
    if "slos" in top:
        cfg = replace(cfg, slos=_slos(top["slos"]))
    return cfg


def _objective(value: object, key: str) -> float:
    # 1 would leave no error budget (every burn rate infinite), 0 no objective at all.
    x = _number(value, key, ratio=True)
    if not 0 < x < 1:
        raise ConfigError(f"{key}={value!r} is out of range: it must be between 0 and 1, "
                          "exclusive (e.g. 0.999)")  # fmt: skip
    return x


def _slos(value: object) -> dict[str, dict[str, float]]:
    """``slos``: ``default`` and per-operation objectives, each key checked and named."""
    table = _mapping(value, "slos")
    resolved: dict[str, dict[str, float]] = {"default": dict(DEFAULT_SLO)}
    checked: dict[str, dict[str, float]] = {}
    for op, objectives in table.items():
        if op != "default" and (not _OPERATION_NAME.fullmatch(op) or not _utf8(op)):
            raise ConfigError(f"slos: {op!r} is not a usable operation name")
        checked[op] = {}
        for k, v in _mapping(objectives, f"slos.{op}").items():
            if k not in DEFAULT_SLO:
                raise _unknown(f"slos.{op}", k, list(DEFAULT_SLO))
            key = f"slos.{op}.{k}"
            if k == "latency_seconds":
                checked[op][k] = _number(v, key)
                # A bucket boundary; past a day the exposition writes it in exponent form,
                # which the rules' le matcher would not find.
                if not 0 < checked[op][k] <= 86400:
                    raise ConfigError(f"{key}={v!r} is out of range: it must be a bucket "
                                      "boundary above 0 and at most 86400 (e.g. 0.5)")  # fmt: skip
            else:
                checked[op][k] = _objective(v, key)
    resolved["default"].update(checked.pop("default", {}))
    for op, objectives in checked.items():
        resolved[op] = {**resolved["default"], **objectives}
    return resolved


def _utf8(text: str) -> bool:
    """Whether ``text`` can be written out (a lone surrogate from a YAML escape cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"--config {p}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    kind = "TOML" if p.suffix == ".toml" else "YAML"
    try:
        data = _load_toml(text) if p.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        detail = str(exc).replace("\n", " ")
        raise ConfigError(f"{p}: not valid {kind}: {detail}") from None
    except RecursionError:
        raise ConfigError(f"{p}: not a usable {kind} config: nested too deeply") from None
    return config_from_mapping(data, str(p))
