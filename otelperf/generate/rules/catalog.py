"""Every alert rule group, in the order alerts.yml lists them, and what is read off the specs.

``ALERT_NAMES`` and ``DEFAULT_FOR`` are derived from the specs the groups build under the
default settings, so an alert is declared once, in its group module.

>>> len(ALERT_NAMES), DEFAULT_FOR["OtelperfTargetDown"]
(25, '2m')
"""

from __future__ import annotations

from collections.abc import Callable

from otelperf.generate.rules import (
    bottlenecks,
    cache_and_apis,
    operations,
    pipeline,
    resources,
    slo,
)
from otelperf.generate.rules.spec import AlertSpec, RuleContext

# (group name, the function building its specs); to add a group, add its module here.
GROUPS: tuple[tuple[str, Callable[[RuleContext], list[AlertSpec]]], ...] = (
    (operations.GROUP, operations.alerts),
    (slo.GROUP, slo.alerts),
    (bottlenecks.GROUP, bottlenecks.alerts),
    (cache_and_apis.GROUP, cache_and_apis.alerts),
    (resources.GROUP, resources.alerts),
    (pipeline.GROUP, pipeline.alerts),
)


def alert_specs(ctx: RuleContext) -> list[AlertSpec]:
    """Every alerting rule for ``ctx``, group by group."""
    return [spec for _, build in GROUPS for spec in build(ctx)]


_DEFAULT_SPECS = alert_specs(RuleContext())

# Every alert name, in the order the rules file lists them (the names are a contract).
ALERT_NAMES: tuple[str, ...] = tuple(dict.fromkeys(a.name for a in _DEFAULT_SPECS))

# Alert name -> the default ``for`` of its first rule (OtelperfDiskAlmostFull: the critical
# one; its predicted-full warning has its own 1h); the key set is what a config's ``for`` table
# accepts, and a value set there applies to every rule of the name.
DEFAULT_FOR: dict[str, str] = {
    name: next(a.for_ for a in _DEFAULT_SPECS if a.name == name) for name in ALERT_NAMES
}
