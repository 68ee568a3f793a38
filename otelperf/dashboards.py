"""Grafana dashboards generated with grafanalib from the name table.

Four dashboards (Overview, Bottlenecks, Cache & external APIs, Resources) are built by pure
functions: :func:`build_dashboards` returns grafanalib ``Dashboard`` objects, :func:`render`
returns ``{file name: JSON text}``.  Only :func:`run` (``otelperf dashboards``) writes files,
and ``--check`` compares instead, so CI notices when the committed JSON is stale.

Every metric a panel queries comes from :mod:`otelperf._names` (a test parses the queries and
checks that), and the recording rules of ``otelperf rules`` are used where they make a query
cheaper: the top-10 tables and the projected cost read a pre-computed series instead of
running ``histogram_quantile`` or a one-hour ``rate`` over every bucket on each refresh.
Recording rules keep ``job`` but not ``instance``, so those panels say "all instances".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from otelperf import _names as N
from otelperf.errors import ConfigError

# Grafana's own vocabulary (not metric names): the datasource variable every panel points at,
# and the interval macros Grafana substitutes before it sends a query.
DATASOURCE_VAR = "datasource"
DATASOURCE_REF: dict[str, str] = {"type": "prometheus", "uid": "${" + DATASOURCE_VAR + "}"}
RATE = "$__rate_interval"
RANGE = "$__range"
ALL = "$__all"
# Prometheus's own labels used in queries (histogram buckets, the ALERTS series).
LE = "le"
ALERTNAME = "alertname"
ALERTSTATE = "alertstate"
ALERT_PREFIX = "Otelperf"  # the generated alerts' common name prefix

_UID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_GRAFANA_UID_MAX = 40  # Grafana rejects longer dashboard UIDs


@dataclass(frozen=True)
class DashboardSettings:
    """What the generated dashboards can be tuned with.

    ``datasource`` is the name of the Prometheus datasource the ``$datasource`` variable selects
    by default (the provisioned one in deploy/grafana is called "Prometheus").

    >>> DashboardSettings(refresh="1m").refresh
    '1m'
    """

    datasource: str = "Prometheus"
    uid_prefix: str = "otelperf"
    tag: str = "otelperf"
    refresh: str = "30s"
    time_from: str = "now-1h"

    def validate(self) -> DashboardSettings:
        """Raise ConfigError naming the field when a setting cannot make valid dashboards."""
        for name in ("datasource", "tag", "refresh", "time_from"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"DashboardSettings.{name}={value!r} must be a non-empty string")
        if not isinstance(self.uid_prefix, str) or not _UID_RE.match(self.uid_prefix):
            raise ConfigError(
                f"DashboardSettings.uid_prefix={self.uid_prefix!r} must use only letters, digits,"
                " '-' and '_'"
            )
        longest = max(len(self.uid_prefix) + 1 + len(key) for key, _, _ in DASHBOARDS)
        if longest > _GRAFANA_UID_MAX:
            raise ConfigError(
                f"DashboardSettings.uid_prefix={self.uid_prefix!r} is too long: dashboard UIDs "
                f"would exceed Grafana's {_GRAFANA_UID_MAX} characters"
            )
        return self


# (key, title, file name); the UID is "<uid_prefix>-<key>", stable across runs.
DASHBOARDS: tuple[tuple[str, str, str], ...] = (
    ("overview", "otelperf / Overview", "overview.json"),
    ("bottlenecks", "otelperf / Bottlenecks", "bottlenecks.json"),
    ("cache-apis", "otelperf / Cache & external APIs", "cache-apis.json"),
    ("resources", "otelperf / Resources", "resources.json"),
)


# --- PromQL helpers --------------------------------------------------------------------------
def _re(label: str, var: str) -> str:
    return f'{label}=~"${var}"'


def _eq(label: str, value: str) -> str:
    return f'{label}="{value}"'


def _sel(metric: str, *matchers: str) -> str:
    return metric + "{" + ",".join(matchers) + "}" if matchers else metric


_TARGET = (_re(N.JOB, "job"), _re(N.INSTANCE, "instance"))


def _sum_rate(
    by: Sequence[str], metric: str, matchers: Sequence[str], window: str = RATE, fn: str = "rate"
) -> str:
    grouping = f" by ({', '.join(by)})" if by else ""
    return f"sum{grouping} ({fn}({_sel(metric, *matchers)}[{window}]))"


def _error_percent(by: Sequence[str], count: str, matchers: Sequence[str], label: str) -> str:
    # "or 0 * total" keeps groups that have had no error yet at 0 % instead of dropping them.
    total = _sum_rate(by, count, matchers)
    errors = _sum_rate(by, count, (*matchers, _eq(label, N.OUTCOME_ERROR)))
    return f"100 * ({errors} or 0 * {total}) / {total}"


def _quantile(q: float, by: Sequence[str], bucket: str, matchers: Sequence[str]) -> str:
    return f"histogram_quantile({q:g}, {_sum_rate((*by, LE), bucket, matchers)})"


# --- panel helpers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Q:
    expr: str
    legend: str = ""


_BASE_STEP = [{"color": "green", "value": None}]


def _targets(queries: Sequence[_Q], *, instant: bool = False) -> list[g.Target]:
    return [
        g.Target(
            expr=q.expr,
            legendFormat=q.legend,
            refId=chr(ord("A") + i),
            datasource=DATASOURCE_REF,
            instant=instant,
            format=g.TABLE_TARGET_FORMAT if instant else g.TIME_SERIES_TARGET_FORMAT,
            intervalFactor=1,
        )
        for i, q in enumerate(queries)
    ]


@dataclass(frozen=True)
class _Placed:
    panel: Any
    w: int
    h: int


def _timeseries(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[_Q],
    *,
    w: int = 12,
    h: int = 8,
    stacked: bool = False,
    max_value: int | None = None,
    thresholds: Sequence[dict[str, Any]] = (),
) -> _Placed:
    panel = g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE_REF,
        targets=_targets(queries),
        unit=unit,
        fillOpacity=70 if stacked else 10,
        stacking={"mode": "normal", "group": "A"} if stacked else {"mode": "none"},
        legendDisplayMode="table",
        legendPlacement="right" if w >= 12 else "bottom",
        legendCalcs=["mean", "max", "lastNotNull"],
        tooltipMode="multi",
        tooltipSort="desc",
        valueMin=0,
        valueMax=max_value,
        thresholds=[*_BASE_STEP, *thresholds],
        thresholdsStyleMode="line" if thresholds else "off",
        maxDataPoints=None,
    )
    return _Placed(panel, w, h)


def _table(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[_Q],
    *,
    sort_by: str,
    columns: dict[str, tuple[str, str]] | None = None,
    w: int = 12,
    h: int = 8,
) -> _Placed:
    """An instant-query table; ``columns`` maps "Value #A" to (display name, unit)."""
    overrides = [
        {
            "matcher": {"id": "byName", "options": field},
            "properties": [
                {"id": "displayName", "value": display},
                {"id": "unit", "value": field_unit},
            ],
        }
        for field, (display, field_unit) in (columns or {}).items()
    ]
    transformations: list[dict[str, Any]] = []
    if len(queries) > 1:
        transformations.append({"id": "merge", "options": {}})
    transformations.append(
        {
            "id": "organize",
            "options": {"excludeByName": {"Time": True, "__name__": True}, "renameByName": {}},
        }
    )
    panel = g.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE_REF,
        targets=_targets(queries, instant=True),
        unit=unit,
        overrides=overrides,
        transformations=transformations,
        sortBy=[g.TableSortByField(displayName=sort_by, desc=True)],
        thresholds=list(_BASE_STEP),
        maxDataPoints=None,
    )
    return _Placed(panel, w, h)


def _layout(sections: Sequence[tuple[str, Sequence[_Placed]]]) -> list[Any]:
    """Rows of panels on Grafana's 24-column grid, left to right, wrapping; ids in order."""
    panels: list[Any] = []
    y = 0
    next_id = 1
    for title, placed in sections:
        panels.append(g.RowPanel(title=title, gridPos=g.GridPos(h=1, w=24, x=0, y=y), id=next_id))
        next_id += 1
        y += 1
        x = 0
        row_h = 0
        for p in placed:
            if x + p.w > 24:
                x, y, row_h = 0, y + row_h, 0
            p.panel.gridPos = g.GridPos(h=p.h, w=p.w, x=x, y=y)
            p.panel.id = next_id
            next_id += 1
            panels.append(p.panel)
            x += p.w
            row_h = max(row_h, p.h)
        y += row_h
    return panels


# --- template variables ----------------------------------------------------------------------
def _datasource_var(settings: DashboardSettings) -> g.Template:
    t = g.Template(
        name=DATASOURCE_VAR,
        label="Data source",
        query="prometheus",
        type="datasource",
        default=settings.datasource,
    )
    t._current = {"selected": True, "text": settings.datasource, "value": settings.datasource}
    return t


def _query_var(
    name: str, label: str, metric: str, matchers: Sequence[str], key: str, *, multi: bool = True
) -> g.Template:
    t = g.Template(
        name=name,
        label=label,
        query=f"label_values({_sel(metric, *matchers)}, {key})",
        dataSource=DATASOURCE_REF,
        multi=multi,
        includeAll=multi,
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
        sort=g.SORT_ALPHA_ASC,
    )
    # Multi-value variables start on "All"; single ones on the first value Grafana finds.
    t._current = (
        {"selected": True, "text": ["All"], "value": [ALL]} if multi else {"selected": False}
    )
    return t


def _target_vars(settings: DashboardSettings) -> list[g.Template]:
    return [
        _datasource_var(settings),
        _query_var("job", "Job", N.TARGET_INFO, (), N.JOB),
        _query_var("instance", "Instance", N.TARGET_INFO, (_re(N.JOB, "job"),), N.INSTANCE),
    ]


def _dashboard(
    settings: DashboardSettings,
    key: str,
    description: str,
    variables: list[g.Template],
    sections: Sequence[tuple[str, Sequence[_Placed]]],
) -> g.Dashboard:
    title = next(t for k, t, _ in DASHBOARDS if k == key)
    return g.Dashboard(
        title=title,
        uid=f"{settings.uid_prefix}-{key}",
        description=description,
        tags=[settings.tag],
        timezone="browser",
        refresh=settings.refresh,
        time=g.Time(settings.time_from, "now"),
        schemaVersion=39,
        graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        editable=True,
        templating=g.Templating(list=variables),
        links=[
            g.DashboardLink(
                type="dashboards",
                tags=[settings.tag],
                asDropdown=False,
                includeVars=True,
                keepTime=True,
                title="otelperf dashboards",
            )
        ],
        panels=_layout(sections),
    )


# --- the dashboards --------------------------------------------------------------------------
def overview(settings: DashboardSettings) -> g.Dashboard:
    """Per-operation rate, errors, latency, in-flight and throughput, top-10 tables, alerts.

    >>> overview(DashboardSettings()).uid
    'otelperf-overview'
    """
    d = N.OPERATION_DURATION
    count, bucket = d.prom + "_count", d.prom + "_bucket"
    ops = (*_TARGET, _re(N.OPERATION, "operation"))
    by_op = (N.OPERATION,)
    rec_scope = (_re(N.JOB, "job"), _re(N.OPERATION, "operation"))
    latency = [
        _timeseries(
            f"Latency p{int(q * 100)}",
            f"{int(q * 100)}th percentile duration per operation, from the "
            f"{d.prom} histogram buckets.",
            "s",
            [_Q(_quantile(q, by_op, bucket, ops), "{{operation}}")],
            w=8,
        )
        for q in (0.5, 0.95, 0.99)
    ]
    traffic = [
        _timeseries(
            "Request rate",
            "Finished operations per second (successes and errors), per operation.",
            "reqps",
            [_Q(_sum_rate(by_op, count, ops), "{{operation}}")],
        ),
        _timeseries(
            "Error %",
            "Share of finished operations that raised, per operation. Operations without "
            "errors show 0 %.",
            "percent",
            [_Q(_error_percent(by_op, count, ops, N.OUTCOME), "{{operation}}")],
            thresholds=[{"color": "red", "value": 5}],
        ),
    ]
    throughput = [
        _timeseries(
            "In flight",
            "Operations running right now (sampled at scrape time), per operation.",
            "short",
            [
                _Q(
                    f"sum by ({N.OPERATION}) ({_sel(N.OPERATION_IN_FLIGHT.prom, *ops)})",
                    "{{operation}}",
                )
            ],
            w=8,
        ),
        _timeseries(
            "Items / s",
            "Items (rows, records) processed per second, as reported with op.add_items().",
            "suffix: items/s",
            [_Q(_sum_rate(by_op, N.OPERATION_ITEMS.prom, ops), "{{operation}}")],
            w=8,
        ),
        _timeseries(
            "Bytes / s",
            "Bytes processed per second, as reported with op.add_bytes().",
            "Bps",
            [_Q(_sum_rate(by_op, N.OPERATION_BYTES.prom, ops), "{{operation}}")],
            w=8,
        ),
    ]
    tops = [
        _table(
            "Top 10 slowest operations (p95, last hour)",
            "The ten operations with the highest 95th percentile duration over the last hour, "
            f"all instances of the job (recording rule {N.REC_OPERATION_P95_1H.name}).",
            "s",
            [_Q(f"topk(10, {_sel(N.REC_OPERATION_P95_1H.name, *rec_scope)})")],
            sort_by="p95",
            columns={"Value": ("p95", "s")},
        ),
        _table(
            "Top 10 most failing operations",
            "The ten operations with the highest error % over the rate window, all instances "
            f"of the job (recording rule {N.REC_OPERATION_ERROR_RATIO.name}); operations "
            "without errors are left out.",
            "percent",
            [_Q(f"topk(10, 100 * {_sel(N.REC_OPERATION_ERROR_RATIO.name, *rec_scope)} > 0)")],
            sort_by="Error %",
            columns={"Value": ("Error %", "percent")},
        ),
    ]
    alerts = [
        _table(
            "Firing otelperf alerts",
            "Alerts of the generated otelperf rules that are firing now (Prometheus's ALERTS "
            "series); empty while all is well.",
            "none",
            [_Q(_sel(N.ALERTS, _eq(ALERTSTATE, "firing"), f'{ALERTNAME}=~"{ALERT_PREFIX}.+"'))],
            sort_by=ALERTNAME,
            w=24,
            h=6,
        )
    ]
    variables = [
        *_target_vars(settings),
        _query_var("operation", "Operation", count, _TARGET, N.OPERATION),
    ]
    return _dashboard(
        settings,
        "overview",
        "Per-operation request rate, errors, latency and throughput of services instrumented "
        "with otelperf.",
        variables,
        [
            ("Traffic and errors", traffic),
            ("Latency", latency),
            ("Throughput", throughput),
            ("Top operations", tops),
            ("Alerts", alerts),
        ],
    )


def bottlenecks(settings: DashboardSettings) -> g.Dashboard:
    """Critical-path attribution per root operation, self time, and the CPU / waiting split.

    >>> bottlenecks(DashboardSettings(uid_prefix="shop")).uid
    'shop-bottlenecks'
    """
    root = (*_TARGET, _eq(N.ROOT_OPERATION, "$root"))
    by_op = (N.OPERATION,)
    cp, self_t = N.CRITICAL_PATH.prom, N.SELF_TIME.prom
    cp_total = _sum_rate((), cp, root)
    root_time = _sum_rate((), N.ROOT_DURATION.prom, root)
    cp_range = _sum_rate(by_op, cp, root, RANGE, "increase")
    self_range = _sum_rate(by_op, self_t, root, RANGE, "increase")
    cp_range_total = _sum_rate((), cp, root, RANGE, "increase")
    top = f"topk(10, {cp_range})"
    cpu = _sum_rate(by_op, N.OPERATION_CPU.prom, _TARGET)
    wall = _sum_rate(by_op, N.OPERATION_DURATION.prom + "_sum", _TARGET)
    # Only operations on the selected root's critical path, and only those whose CPU time is
    # measured (synchronous ones): for the others a 0 % CPU share would be a guess.
    on_root = f"on ({N.OPERATION}) {_sum_rate(by_op, cp, root)}"
    cpu_share = f"100 * {cpu} / {wall} and {on_root}"
    summary = [
        _timeseries(
            "Root operations / s",
            "Local root spans of the selected root operation finished per second.",
            "reqps",
            [_Q(_sum_rate((), N.ROOTS.prom, root), "$root")],
            w=12,
            h=6,
        ),
        _timeseries(
            "Mean root duration",
            "Mean duration of the selected root operation (summed root time / roots).",
            "s",
            [_Q(f"{root_time} / {_sum_rate((), N.ROOTS.prom, root)}", "$root")],
            w=12,
            h=6,
        ),
    ]
    share = [
        _timeseries(
            "Critical-path share per operation",
            "Share of the root's critical path each operation accounts for; stacked, the "
            "series sum to 100 %. A growing band is where the requests' time goes.",
            "percent",
            [
                _Q(
                    f"100 * {_sum_rate(by_op, cp, root)} / on () group_left () {cp_total}",
                    "{{operation}}",
                )
            ],
            w=24,
            h=9,
            stacked=True,
            max_value=100,
        ),
        _timeseries(
            "Self time vs critical path",
            "Per operation, as a share of the root's time: self time (the operation ran with "
            "no child blocking it) and time on the critical path. Self time above critical "
            "path means work that overlapped a longer sibling.",
            "percent",
            [
                _Q(
                    f"100 * {_sum_rate(by_op, self_t, root)} / on () group_left () {root_time}",
                    "{{operation}} self",
                ),
                _Q(
                    f"100 * {_sum_rate(by_op, cp, root)} / on () group_left () {root_time}",
                    "{{operation}} critical path",
                ),
            ],
        ),
        _timeseries(
            "CPU-bound vs waiting",
            "For operations on the root's critical path whose CPU time is measured "
            "(synchronous ones): thread CPU time as a share of wall time, and the rest "
            "(waiting on I/O, locks or the GIL).",
            "percent",
            [
                _Q(cpu_share, "{{operation}} CPU"),
                _Q(f"100 - ({cpu_share})", "{{operation}} waiting"),
            ],
            max_value=100,
        ),
    ]
    table = [
        _table(
            "Top contributors",
            "The ten operations with the most critical-path time under the selected root in "
            "the dashboard's time range, with their self time and share of the critical path.",
            "s",
            [
                _Q(top),
                _Q(f"{self_range} and on ({N.OPERATION}) {top}"),
                _Q(
                    f"100 * {cp_range} / on () group_left () {cp_range_total} "
                    f"and on ({N.OPERATION}) {top}"
                ),
            ],
            sort_by="Critical path",
            columns={
                "Value #A": ("Critical path", "s"),
                "Value #B": ("Self time", "s"),
                "Value #C": ("Share of critical path", "percent"),
            },
            w=24,
            h=9,
        )
    ]
    variables = [
        *_target_vars(settings),
        _query_var("root", "Root operation", N.ROOTS.prom, _TARGET, N.ROOT_OPERATION, multi=False),
    ]
    return _dashboard(
        settings,
        "bottlenecks",
        "Where a root operation's time goes: critical-path share, self time and CPU vs waiting, "
        "from otelperf's BottleneckSpanProcessor.",
        variables,
        [("Root operation", summary), ("Attribution", share), ("Top contributors", table)],
    )


def cache_apis(settings: DashboardSettings) -> g.Dashboard:
    """Cache hit ratios and lookups; external API calls, errors, latency, tokens and cost.

    >>> [v.name for v in cache_apis(DashboardSettings()).templating.list][3:]
    ['cache', 'api', 'model']
    """
    caches = (*_TARGET, _re(N.CACHE, "cache"))
    apis = (*_TARGET, _re(N.API, "api"), _re(N.MODEL, "model"))
    req = N.CACHE_REQUESTS.prom
    by_cache = (N.CACHE,)
    by_api_model = (N.API, N.MODEL)
    hits = _sum_rate(by_cache, req, (*caches, _eq(N.RESULT, N.RESULT_HIT)))
    lookups = _sum_rate(by_cache, req, caches)
    calls = N.API_CALLS.prom
    bucket = N.API_CALL_DURATION.prom + "_bucket"
    cache_panels = [
        _timeseries(
            "Hit ratio per cache",
            "Cache hits / lookups per cache (1 = every lookup hit). Caches without hits show 0.",
            "percentunit",
            [_Q(f"({hits} or 0 * {lookups}) / {lookups}", "{{cache}}")],
            max_value=1,
        ),
        _timeseries(
            "Lookups / s",
            "Cache lookups per second by cache and result (hit or miss).",
            "ops",
            [_Q(_sum_rate((N.CACHE, N.RESULT), req, caches), "{{cache}} {{result}}")],
        ),
    ]
    api_panels = [
        _timeseries(
            "API calls / s",
            "External API calls per second, per API and model.",
            "reqps",
            [_Q(_sum_rate(by_api_model, calls, apis), "{{api}} {{model}}")],
            w=8,
        ),
        _timeseries(
            "API error %",
            "Share of API calls that failed, per API and model. APIs without errors show 0 %.",
            "percent",
            [_Q(_error_percent(by_api_model, calls, apis, N.OUTCOME), "{{api}} {{model}}")],
            w=8,
            thresholds=[{"color": "red", "value": 5}],
        ),
        _timeseries(
            "API latency",
            "50th, 95th and 99th percentile API call duration per API.",
            "s",
            [
                _Q(_quantile(q, (N.API,), bucket, apis), f"{{{{api}}}} p{int(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ],
            w=8,
        ),
    ]
    cost_panels = [
        _timeseries(
            "Tokens / s by type",
            "Tokens sent (input) and received (output) per second, per API and model.",
            "suffix: tokens/s",
            [
                _Q(
                    _sum_rate((*by_api_model, N.TOKEN_TYPE), N.API_TOKENS.prom, apis),
                    "{{api}} {{model}} {{token_type}}",
                )
            ],
            w=8,
        ),
        _timeseries(
            "Cost per hour",
            "API spend in US dollars per hour at the current rate, per API and model.",
            "currencyUSD",
            [_Q(f"3600 * {_sum_rate(by_api_model, N.API_COST.prom, apis)}", "{{api}} {{model}}")],
            w=8,
        ),
        _table(
            "Projected cost per day",
            "The last hour's spend rate extrapolated to 24 hours, per API and model; the "
            f"total per API comes from the recording rule {N.REC_API_COST_1H.name} (all "
            "instances of the job).",
            "currencyUSD",
            [
                _Q(f"86400 * {_sum_rate(by_api_model, N.API_COST.prom, apis, '1h')}"),
            ],
            sort_by="Per day",
            columns={"Value": ("Per day", "currencyUSD")},
            w=8,
        ),
        _table(
            "Projected cost per day per API (all models)",
            "The last hour's spend rate per API extrapolated to 24 hours, all instances of the "
            f"job (recording rule {N.REC_API_COST_1H.name}).",
            "currencyUSD",
            [
                _Q(
                    f"86400 * sum by ({N.API}) "
                    f"({_sel(N.REC_API_COST_1H.name, _re(N.JOB, 'job'), _re(N.API, 'api'))})"
                )
            ],
            sort_by="Per day",
            columns={"Value": ("Per day", "currencyUSD")},
            w=24,
            h=6,
        ),
    ]
    variables = [
        *_target_vars(settings),
        _query_var("cache", "Cache", req, _TARGET, N.CACHE),
        _query_var("api", "API", calls, _TARGET, N.API),
        _query_var("model", "Model", calls, (*_TARGET, _re(N.API, "api")), N.MODEL),
    ]
    return _dashboard(
        settings,
        "cache-apis",
        "Cache hit ratios and external API calls, errors, latency, tokens and cost, from "
        "otelperf's record_cache() and api_call().",
        variables,
        [("Caches", cache_panels), ("External APIs", api_panels), ("Tokens and cost", cost_panels)],
    )


def resources(settings: DashboardSettings) -> g.Dashboard:
    """Process and host resources, and otelperf's own health (dropped spans, overflow).

    >>> resources(DashboardSettings()).title
    'otelperf / Resources'
    """
    t = _TARGET
    process = [
        _timeseries(
            "Process CPU",
            "CPU time (user + system) the process uses per second: 100 % is one core busy.",
            "percentunit",
            [_Q(f"rate({_sel(N.PROC_CPU.prom, *t)}[{RATE}])", "{{instance}}")],
            w=8,
        ),
        _timeseries(
            "Process resident memory",
            "Resident set size of the process.",
            "bytes",
            [_Q(_sel(N.PROC_RESIDENT_MEMORY.prom, *t), "{{instance}}")],
            w=8,
        ),
        _timeseries(
            "Threads",
            "Threads of the process (psutil), sampled at scrape time.",
            "short",
            [_Q(_sel(N.PROC_THREADS.prom, *t), "{{instance}}")],
            w=8,
        ),
        _timeseries(
            "Open file descriptors",
            "Open file descriptors of the process, and its limit (ulimit -n) as a dashed "
            "reference.",
            "short",
            [
                _Q(_sel(N.PROC_OPEN_FDS.prom, *t), "{{instance}} open"),
                _Q(_sel(N.PROC_MAX_FDS.prom, *t), "{{instance}} limit"),
            ],
            w=12,
        ),
        _timeseries(
            "GC collections / s",
            "Python garbage collector runs per second, per generation (0 runs most often; "
            "frequent generation-2 runs mean many long-lived objects).",
            "ops",
            [
                _Q(
                    _sum_rate((N.INSTANCE, N.GENERATION), N.GC_COLLECTIONS.prom, t),
                    "{{instance}} gen {{" + N.GENERATION + "}}",
                )
            ],
            w=12,
        ),
    ]
    host = [
        _timeseries(
            "Host CPU",
            "Host CPU utilization over all cores since the previous scrape.",
            "percentunit",
            [_Q(_sel(N.HOST_CPU_UTILIZATION.prom, *t), "{{instance}}")],
            w=8,
            max_value=1,
        ),
        _timeseries(
            "Host memory",
            "Host memory in use (0..100 %), sampled by the service at scrape time.",
            "percentunit",
            [_Q(_sel(N.HOST_MEMORY_UTILIZATION.prom, *t), "{{instance}}")],
            w=8,
            max_value=1,
        ),
        _timeseries(
            "Filesystems",
            "Space in use per filesystem mount point; the red line is 90 %.",
            "percentunit",
            [
                _Q(
                    _sel(N.HOST_FILESYSTEM_UTILIZATION.prom, *t),
                    "{{instance}} {{" + N.MOUNTPOINT + "}}",
                )
            ],
            w=8,
            max_value=1,
            thresholds=[{"color": "red", "value": 0.9}],
        ),
    ]
    health = [
        _timeseries(
            "Dropped spans / s",
            "Spans the bottleneck processor left out of attribution, by reason (capacity, "
            "truncated, expired, late). Empty while nothing is dropped.",
            "ops",
            [_Q(_sum_rate((N.REASON,), N.DROPPED_SPANS.prom, t), "{{reason}}")],
            w=8,
        ),
        _timeseries(
            "Cardinality overflow / s",
            f"Measurements recorded under {N.OVERFLOW} because a label cap was reached, by "
            "component. Empty while every cap holds.",
            "ops",
            [_Q(_sum_rate((N.COMPONENT,), N.CARDINALITY_OVERFLOW.prom, t), "{{component}}")],
            w=8,
        ),
        _timeseries(
            "Internal errors / s",
            "Failures inside otelperf, caught so they never reach the application, by "
            "component. Empty while all is well.",
            "ops",
            [_Q(_sum_rate((N.COMPONENT,), N.INTERNAL_ERRORS.prom, t), "{{component}}")],
            w=8,
        ),
        _timeseries(
            "Traces in flight",
            "Traces whose local root has not finished yet, held by the bottleneck processor.",
            "short",
            [_Q(_sel(N.TRACES_IN_FLIGHT.prom, *t), "{{instance}}")],
            w=24,
            h=6,
        ),
    ]
    return _dashboard(
        settings,
        "resources",
        "Process and host resources of services instrumented with otelperf, and otelperf's own "
        "health.",
        _target_vars(settings),
        [("Process", process), ("Host", host), ("otelperf health", health)],
    )


_BUILDERS = {
    "overview": overview,
    "bottlenecks": bottlenecks,
    "cache-apis": cache_apis,
    "resources": resources,
}

# Panels that show only faults: empty on a healthy service, so the query proof test cannot
# expect data from them (it still checks that their queries parse).
FAULT_ONLY_PANELS: frozenset[tuple[str, str]] = frozenset(
    {
        ("overview", "Firing otelperf alerts"),
        ("resources", "Dropped spans / s"),
        ("resources", "Cardinality overflow / s"),
        ("resources", "Internal errors / s"),
    }
)


def build_dashboards(settings: DashboardSettings | None = None) -> dict[str, g.Dashboard]:
    """All dashboards, by file name.

    >>> sorted(build_dashboards())
    ['bottlenecks.json', 'cache-apis.json', 'overview.json', 'resources.json']
    """
    s = (settings or DashboardSettings()).validate()
    return {file: _BUILDERS[key](s) for key, _, file in DASHBOARDS}


def dashboard_json(dashboard: g.Dashboard) -> dict[str, Any]:
    """A grafanalib Dashboard as plain JSON data (what Grafana imports).

    >>> dashboard_json(build_dashboards()["overview.json"])["uid"]
    'otelperf-overview'
    """
    data: dict[str, Any] = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    return data


def render(settings: DashboardSettings | None = None) -> dict[str, str]:
    """``{file name: JSON text}``: sorted keys, two-space indent, trailing newline.

    >>> render()["overview.json"].endswith("}\\n")
    True
    """
    return {
        file: json.dumps(dashboard_json(d), sort_keys=True, indent=2) + "\n"
        for file, d in build_dashboards(settings).items()
    }


# --- the ``otelperf dashboards`` command -----------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``otelperf dashboards``."""
    parser.add_argument(
        "--out",
        default="dashboards",
        metavar="DIR",
        help="directory to write the dashboard JSON files to (default dashboards/)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files in --out are missing or stale",
    )


def run(args: argparse.Namespace) -> int:
    """Write the dashboards to ``--out`` (only changed files), or with ``--check`` compare.

    Exit status 0 when written or up to date, 1 when ``--check`` finds a missing, stale or
    unknown JSON file.  ``otelperf dashboards --check`` is what CI runs.
    """
    from otelperf.errors import UserError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out={args.out!r} is not a directory")
    files = render()
    if args.check:
        stale = [
            name
            for name, text in files.items()
            if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
        ]
        unknown = (
            sorted(p.name for p in out.glob("*.json") if p.name not in files)
            if out.is_dir()
            else []
        )
        for name in stale:
            print(f"otelperf dashboards: {out / name} is missing or stale", file=sys.stderr)
        for name in unknown:
            print(
                f"otelperf dashboards: {out / name} is not generated by otelperf dashboards",
                file=sys.stderr,
            )
        if stale or unknown:
            print("otelperf dashboards: run `otelperf dashboards` to regenerate", file=sys.stderr)
            return 1
        print(f"otelperf dashboards: {len(files)} files in {out} are up to date")
        return 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = out / name
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--out={args.out!r}: cannot write: {exc.strerror or exc}") from None
    print(f"otelperf dashboards: wrote {len(files)} files to {out}")
    return 0
