"""Which series fill which :class:`Totals` field: the one mapping both sources walk.

A scrape (:mod:`otelperf.report.sources.endpoint`) reads each row's ``sample`` from the
exposition; Prometheus (:mod:`otelperf.report.sources.prometheus`) asks for
``sum by (labels) (increase(sample[window]))``.  Either way a value arrives with the row's
``labels`` and :meth:`Series.add` puts it into the totals, so a new figure is one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from otelperf import _names as N
from otelperf.report.model import OperationFigures, Totals

Key = tuple[str, ...]


@dataclass(frozen=True)
class Series:
    """One sample name, the labels that key it, and how a value lands in :class:`Totals`."""

    key: str  # the figure's short name (queries() keys)
    sample: str  # the sample name in an exposition / the series name in PromQL
    labels: tuple[str, ...]
    into: Callable[[Totals, Key, float], None]

    def add(self, totals: Totals, labels: Mapping[str, str], value: float) -> None:
        """Add one sample; a missing label counts as empty, as in Prometheus.

        >>> t = Totals()
        >>> CACHE.add(t, {N.CACHE: "s", N.RESULT: N.RESULT_HIT, "instance": "a"}, 2.0)
        >>> t.cache_requests
        {('s', 'hit'): 2.0}
        """
        key = tuple(labels.get(name, "") for name in self.labels)
        # A figure keyed by operation needs one to file under (Prometheus drops empty labels).
        if N.OPERATION in self.labels and not key[self.labels.index(N.OPERATION)]:
            return
        self.into(totals, key, value)


def _sum_into(d: dict[Any, float], key: Any, v: float) -> None:
    d[key] = d.get(key, 0.0) + v


def _calls(t: Totals, key: Key, v: float) -> None:
    f = t.op(key[0])
    f.calls += v
    if key[1] == N.OUTCOME_ERROR:
        f.errors += v
        _sum_into(f.error_types, key[2], v)


def _op_field(name: str) -> Callable[[Totals, Key, float], None]:
    def into(t: Totals, key: Key, v: float) -> None:
        f: OperationFigures = t.op(key[0])
        setattr(f, name, (getattr(f, name) or 0.0) + v)  # cpu_seconds starts as None

    return into


def _bucket(t: Totals, key: Key, v: float) -> None:
    _sum_into(t.op(key[1]).buckets, float(key[0]), v)


def _pair(field: str) -> Callable[[Totals, Key, float], None]:
    def into(t: Totals, key: Key, v: float) -> None:
        _sum_into(getattr(t, field), key if len(key) > 1 else key[0], v)

    return into


_D = N.OPERATION_DURATION.prom
_ROOT_OP = (N.ROOT_OPERATION, N.OPERATION)

CALLS = Series("calls", _D + "_count", (N.OPERATION, N.OUTCOME, N.ERROR_TYPE), _calls)
DURATION_SUM = Series("duration_sum", _D + "_sum", (N.OPERATION,), _op_field("duration_sum"))
ITEMS = Series("items", N.OPERATION_ITEMS.prom, (N.OPERATION,), _op_field("items"))
BYTES = Series("bytes", N.OPERATION_BYTES.prom, (N.OPERATION,), _op_field("bytes"))
CPU = Series("cpu", N.OPERATION_CPU.prom, (N.OPERATION,), _op_field("cpu_seconds"))
CACHE = Series("cache", N.CACHE_REQUESTS.prom, (N.CACHE, N.RESULT), _pair("cache_requests"))
# A gauge, not a counter: a scrape's figures are totals over the time since this start.
START_TIME = N.PROC_START_TIME.prom
# Root spans finished: the endpoints table's calls when no histogram records the root's spans.
ROOTS = Series("roots", N.ROOTS.prom, (N.ROOT_OPERATION,), _pair("roots"))
# The histogram's buckets: a scrape interpolates quantiles from them, Prometheus wraps them in
# histogram_quantile(); not a counter of its own, so not in SERIES.
BUCKETS = Series("buckets", _D + "_bucket", ("le", N.OPERATION), _bucket)

# Every counter of the report, in the order of queries().
SERIES: tuple[Series, ...] = (
    CALLS,
    DURATION_SUM,
    ITEMS,
    BYTES,
    CPU,
    Series("critical_path", N.CRITICAL_PATH.prom, _ROOT_OP, _pair("critical_path")),
    Series("self_time", N.SELF_TIME.prom, _ROOT_OP, _pair("self_time")),
    Series("root_duration", N.ROOT_DURATION.prom, (N.ROOT_OPERATION,), _pair("root_duration")),
    ROOTS,
    CACHE,
    Series("api_calls", N.API_CALLS.prom, (N.API, N.MODEL, N.OUTCOME), _pair("api_calls")),
    Series("api_tokens", N.API_TOKENS.prom, (N.API, N.MODEL, N.TOKEN_TYPE), _pair("api_tokens")),
    Series("api_cost", N.API_COST.prom, (N.API, N.MODEL), _pair("api_cost")),
)
