"""The dashboards' PromQL: :mod:`otelperf.generate.promql` in Grafana's style.

Panels filter by the ``$job`` / ``$instance`` (and per-dashboard) variables with regex
matchers, join matchers with a bare comma, and use Grafana's ``$__rate_interval``.

>>> sum_rate(("operation",), "x_total", TARGET)
'sum by (operation) (rate(x_total{job=~"$job",instance=~"$instance"}[$__rate_interval]))'
"""

from __future__ import annotations

from collections.abc import Sequence

from otelperf import _names as N
from otelperf.generate import promql

# Grafana's interval macros, substituted before a query is sent, and its "All" value.
RATE = "$__rate_interval"
RANGE = "$__range"
ALL = "$__all"
# Prometheus's own labels used in queries (histogram buckets, the ALERTS series).
LE = "le"
ALERTNAME = "alertname"
ALERTSTATE = "alertstate"
ALERT_PREFIX = "Otelperf"  # the generated alerts' common name prefix


def var(label: str, variable: str) -> str:
    """A matcher on a dashboard variable: ``var("job", "job")`` is ``job=~"$job"``."""
    return promql.re_match(label, f"${variable}")


def sel(metric: str, *matchers: str) -> str:
    """``metric{m1,m2}`` (Grafana's comma without a space)."""
    return promql.selector(metric, *matchers, sep=",")


# Every raw series panel filters by the job and instance variables.
TARGET = (var(N.JOB, "job"), var(N.INSTANCE, "instance"))


def sum_rate(by: Sequence[str], metric: str, matchers: Sequence[str], window: str = RATE) -> str:
    """``sum by (by) (rate(metric{matchers}[window]))``."""
    return promql.sum_by(by, promql.rate(sel(metric, *matchers), window))


def sum_increase(by: Sequence[str], metric: str, matchers: Sequence[str], window: str) -> str:
    """``sum by (by) (increase(metric{matchers}[window]))``."""
    return promql.sum_by(by, promql.increase(sel(metric, *matchers), window))


def error_percent(by: Sequence[str], count: str, matchers: Sequence[str], label: str) -> str:
    """Errors as a percentage of all calls, per ``by``; ``label`` is the outcome label."""
    # "or 0 * total" keeps groups that have had no error yet at 0 % instead of dropping them.
    total = sum_rate(by, count, matchers)
    errors = sum_rate(by, count, (*matchers, promql.eq(label, N.OUTCOME_ERROR)))
    return f"100 * ({errors} or 0 * {total}) / {total}"


def quantile(q: float, by: Sequence[str], bucket: str, matchers: Sequence[str]) -> str:
    """``histogram_quantile(q, ...)`` over the buckets' rate, per ``by``."""
    return promql.histogram_quantile(q, sum_rate((*by, LE), bucket, matchers))
