"""Shared builders of the dashboards: panels, their grid layout, variables, the dashboard frame.

Every dashboard module composes these; none of them knows a metric.

>>> p = timeseries("Rate", "Calls per second.", "reqps", [Q("sum (rate(x[5m]))")])
>>> (p.w, p.h), p.panel.targets[0].refId
((12, 8), 'A')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafanalib import core as g

from otelperf import _names as N
from otelperf.generate.dashboards.queries import ALL, sel, var
from otelperf.generate.dashboards.settings import DashboardSettings, title_of

# The datasource variable every panel points at (Grafana's vocabulary, not a metric name).
DATASOURCE_VAR = "datasource"
DATASOURCE_REF: dict[str, str] = {"type": "prometheus", "uid": "${" + DATASOURCE_VAR + "}"}


@dataclass(frozen=True)
class Q:
    """One query of a panel and its legend."""

    expr: str
    legend: str = ""


_BASE_STEP = [{"color": "green", "value": None}]


class ExemplarTarget(g.Target):  # type: ignore[misc]
    """A target that asks Grafana for exemplars (grafanalib 0.7's Target has no such field):
    the processor keeps one per duration bucket, linking a slow bucket to a trace."""

    def to_json_data(self) -> dict[str, Any]:
        return {**super().to_json_data(), "exemplar": True}


def targets(
    queries: Sequence[Q], *, instant: bool = False, exemplars: bool = False
) -> list[g.Target]:
    """Grafana targets A, B, C ... for ``queries``; instant ones feed tables; ``exemplars``
    shows the OpenMetrics exemplars of the queried buckets as points (trace links)."""
    target = ExemplarTarget if exemplars else g.Target
    return [
        target(
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
class Placed:
    """A panel with its size on Grafana's 24-column grid; :func:`layout` gives its position."""

    panel: Any
    w: int
    h: int


def timeseries(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Q],
    *,
    w: int = 12,
    h: int = 8,
    stacked: bool = False,
    max_value: int | None = None,
    thresholds: Sequence[dict[str, Any]] = (),
    exemplars: bool = False,
) -> Placed:
    """A time-series panel; ``stacked`` bands sum up, ``thresholds`` draw as lines,
    ``exemplars`` shows the queried histogram buckets' exemplars."""
    panel = g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE_REF,
        targets=targets(queries, exemplars=exemplars),
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
    return Placed(panel, w, h)


def table(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Q],
    *,
    sort_by: str,
    columns: dict[str, tuple[str, str]] | None = None,
    w: int = 12,
    h: int = 8,
) -> Placed:
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
        targets=targets(queries, instant=True),
        unit=unit,
        overrides=overrides,
        transformations=transformations,
        sortBy=[g.TableSortByField(displayName=sort_by, desc=True)],
        thresholds=list(_BASE_STEP),
        maxDataPoints=None,
    )
    return Placed(panel, w, h)


def layout(sections: Sequence[tuple[str, Sequence[Placed]]]) -> list[Any]:
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


def datasource_var(settings: DashboardSettings) -> g.Template:
    """The ``$datasource`` variable, starting on the settings' Prometheus datasource."""
    t = g.Template(
        name=DATASOURCE_VAR,
        label="Data source",
        query="prometheus",
        type="datasource",
        default=settings.datasource,
    )
    t._current = {"selected": True, "text": settings.datasource, "value": settings.datasource}
    return t


def query_var(
    name: str, label: str, metric: str, matchers: Sequence[str], key: str, *, multi: bool = True
) -> g.Template:
    """A variable listing the values of label ``key`` on ``metric{matchers}``."""
    t = g.Template(
        name=name,
        label=label,
        query=f"label_values({sel(metric, *matchers)}, {key})",
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


def target_vars(settings: DashboardSettings) -> list[g.Template]:
    """The variables every dashboard starts with: datasource, job, instance."""
    return [
        datasource_var(settings),
        query_var("job", "Job", N.TARGET_INFO, (), N.JOB),
        query_var("instance", "Instance", N.TARGET_INFO, (var(N.JOB, "job"),), N.INSTANCE),
    ]


def dashboard(
    settings: DashboardSettings,
    key: str,
    description: str,
    variables: list[g.Template],
    sections: Sequence[tuple[str, Sequence[Placed]]],
) -> g.Dashboard:
    """Dashboard ``key`` with the common frame (tags, links, time) and its laid-out rows."""
    return g.Dashboard(
        title=title_of(key),
        uid=settings.uid(key),
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
        panels=layout(sections),
    )
