"""One record per alerting rule, and the context the rule groups build them from.

An alert used to live in five places; now a group module (operations, bottlenecks, ...) writes
one :class:`AlertSpec` per rule and everything else (the alert names, the default ``for``
durations, the groups of alerts.yml) is read off those records.

>>> ctx = RuleContext()
>>> ctx.raw("up"), ctx.rate("x_total", "1h")
('up', 'rate(x_total[1h])')
>>> spec = ctx.alert("g", "OtelperfX", "warning", "5m", "up == 0", "S.", "D {{ $value }}.")
>>> spec.for_, spec.runbook
('5m', 'https://github.com/otelperf/otelperf/blob/main/docs/runbooks.md#otelperfx')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from otelperf import _names as n
from otelperf.generate import promql
from otelperf.thresholds import Thresholds

# The objectives of an operation the rules config does not name (deliberately loose: a library
# cannot know a service's objectives; set them per operation in the config's ``slos``).
DEFAULT_SLO: Mapping[str, float] = {
    "availability": 0.98,
    "latency_seconds": 5.0,
    "latency_target": 0.95,
}
DEFAULT_RUNBOOK_URL = "https://github.com/otelperf/otelperf/blob/main/docs/runbooks.md#{anchor}"


@dataclass(frozen=True)
class AlertSpec:
    """One alerting rule as alerts.yml shows it; ``for_`` is the effective ``for``."""

    name: str
    group: str
    severity: str
    for_: str
    expr: str
    summary: str
    description: str
    runbook: str
    # Extra static labels: an override rule names its operation, so promtool (and humans) can
    # tell it from the default rule of the same alert.
    labels: tuple[tuple[str, str], ...] = ()

    def rule(self) -> dict[str, object]:
        """The rule as Prometheus reads it (the keys are sorted when rendered)."""
        return {
            "alert": self.name,
            "annotations": {"description": self.description, "runbook_url": self.runbook,
                            "summary": self.summary},
            "expr": self.expr,
            "for": self.for_,
            "labels": {n.SEVERITY: self.severity, **dict(self.labels)},
        }  # fmt: skip


def runbook_anchor(alertname: str) -> str:
    """The GitHub heading anchor of an alert's runbook section (``## AlertName``).

    >>> runbook_anchor("OtelperfTargetDown")
    'otelperftargetdown'
    """
    return alertname.lower()


def template_literal(text: str) -> str:
    """``text`` as it must stand in an alert's labels or annotations, which Prometheus expands
    as Go templates: a literal ``{{`` becomes the action ``{{ "{{" }}`` that prints it.

    >>> template_literal("a{{b}}")
    'a{{ "{{" }}b}}'
    """
    return text.replace("{{", '{{ "{{" }}')


def percent(x: float) -> str:
    """A ratio threshold as the annotations show it: ``percent(0.05)`` is ``5%``."""
    return f"{x * 100:.6g}%"


@dataclass(frozen=True)
class RuleContext:
    """What the rule groups read from the rules config, with the PromQL they share.

    ``for_overrides`` holds only the alert names whose ``for`` the config changed; such an
    override applies to every rule of that name.
    """

    job_selector: str = ""
    runbook_url: str = DEFAULT_RUNBOOK_URL
    rate_window: str = "5m"
    min_requests_per_minute: float = 1.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    for_overrides: Mapping[str, str] = field(default_factory=dict)
    operations: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # "default" and operation name -> the objectives (every key of DEFAULT_SLO filled in).
    slos: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {"default": DEFAULT_SLO}
    )

    @property
    def window_seconds(self) -> float:
        """Seconds in the rate window: a rate times this is a count of events in it."""
        return promql.duration_seconds(self.rate_window)

    def latency_boundaries(self) -> list[float]:
        """The bucket boundaries the latency objectives use, sorted."""
        return sorted({o["latency_seconds"] for o in self.slos.values()})

    # --- PromQL over raw series (the job selector applies to every one) -------------------
    def raw(self, metric: str, *extra: str) -> str:
        """A raw series selector with the config's job matchers first."""
        return promql.selector(metric, self.job_selector, *extra)

    def rate(self, metric: str, window: str, *extra: str) -> str:
        """``rate(metric{job..., extra...}[window])``."""
        return promql.rate(self.raw(metric, *extra), window)

    def traffic(self, recording: str, per_minute: float, *on: str) -> str:
        """The traffic guard: ``on(labels) (recording * 60 >= per_minute)``."""
        return f"{promql.on(*on, tight=True)} ({recording} * 60 >= {promql.number(per_minute)})"

    # --- building specs -------------------------------------------------------------------
    def for_of(self, name: str, default: str) -> str:
        """The ``for`` of a rule of alert ``name`` whose own default is ``default``."""
        return self.for_overrides.get(name, default)

    def alert(
        self,
        group: str,
        name: str,
        severity: str,
        for_: str,
        expr: str,
        summary: str,
        description: str,
    ) -> AlertSpec:
        """An :class:`AlertSpec` with the config's ``for`` override and runbook URL applied."""
        url = self.runbook_url.format(alertname=name, anchor=runbook_anchor(name))
        return AlertSpec(
            name, group, severity, self.for_of(name, for_), expr, summary, description, url
        )

    def per_operation(
        self, threshold: str, make: Callable[[float, str], AlertSpec]
    ) -> list[AlertSpec]:
        """One alert for the default threshold, one per operation that overrides it.

        ``make(value, matcher)`` builds the alert for a threshold value; ``matcher`` selects
        the operations it covers (empty: all).
        """
        special = sorted(op for op, o in self.operations.items() if threshold in o)
        default = getattr(self.thresholds, threshold)
        if not special:
            return [make(default, "")]
        alerts = [
            make(default, promql.not_re_match(n.OPERATION, promql.regex_alternation(special)))
        ]
        for op in special:
            alert = make(self.operations[op][threshold], promql.eq(n.OPERATION, op))
            alerts.append(replace(alert, labels=((n.OPERATION, template_literal(op)),)))
        return alerts
