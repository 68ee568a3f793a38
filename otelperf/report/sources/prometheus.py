"""Report figures from a Prometheus server over a window, across all instances of a job.

Each figure is one instant query at the end of the window: counters as
``sum by (labels) (increase(name[window]))`` and quantiles as Prometheus computes them,
``histogram_quantile(q, sum by (le, operation) (increase(name_bucket[window])))``, so the
report shows what a Grafana panel over the same window shows.  Resource gauges are the
window's highest value (``max_over_time``), the worst moment being what a health check cares
about.  The results fill the same :class:`~otelperf.report.model.Totals` a scrape does,
through the same :data:`~otelperf.report.sources.series.SERIES` rows.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from otelperf import _names as N
from otelperf.errors import UserError
from otelperf.generate import promql as P
from otelperf.generate.promql import MAX_DURATION_SECONDS, is_duration
from otelperf.generate.promql import duration_seconds as window_seconds
from otelperf.report.model import RESOURCE_METRICS, TimelinePoint, Totals
from otelperf.report.sources.fetch import check_timeout, check_url, fetch
from otelperf.report.sources.series import BUCKETS, CALLS, ITEMS, SERIES, Series

T = TypeVar("T")

QUANTILES = (0.5, 0.95, 0.99)
# The last second a datetime (and RFC 3339) can write, 9999-12-31T23:59:59Z: the report prints
# the window's end, and a later one means a typo, not an incident.
MAX_TIME = 253402300799.0


def parse_window(text: str) -> str:
    """A Prometheus duration (``90s``, ``1h30m``, ``7d``, ``1500ms``), checked here so a typo
    is a clear error rather than a PromQL parse error.

    >>> parse_window("1h30m")
    '1h30m'
    """
    t = str(text).strip()
    if not is_duration(t) or window_seconds(t) <= 0:
        raise UserError(
            f"--window={text!r} is not a Prometheus duration like 30m, 1h, 7d or 1500ms"
        )
    if window_seconds(t) > MAX_DURATION_SECONDS:
        raise UserError(f"--window={text!r} is out of range: Prometheus refuses a duration over "
                        "292y")  # fmt: skip
    return t


def parse_job(text: str | None, what: str = "--job") -> str | None:
    """A job label value: any text Prometheus can hold (UTF-8), or None for every job."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{what}={text!r} is not valid text (a lone surrogate: the name was "
                        "not valid UTF-8)") from None  # fmt: skip
    return text


def parse_time(text: str, what: str = "--at") -> float:
    """Unix seconds (``1700000000.5``) or RFC 3339 (``2026-11-22T05:00:00Z``); errors name
    ``what`` (the option the text came from)."""
    t = str(text).strip()
    try:
        x = float(t)
    except ValueError:
        try:
            x = datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise UserError(
                f"{what}={text!r} is neither Unix seconds nor an RFC 3339 time"
            ) from None
        except (OverflowError, OSError):  # year 1 or 9999 shifted past the range by its offset
            x = math.inf
    if not math.isfinite(x) or not 0 <= x <= MAX_TIME:
        raise UserError(f"{what}={text!r} is not a valid time (it must be between 1970-01-01 "
                        "and 9999-12-31)")  # fmt: skip
    return x


class PrometheusClient:
    """Instant queries over HTTP, each within ``timeout`` seconds overall and
    :data:`~otelperf.report.sources.fetch.MAX_BODY_BYTES`; every failure is a one-line error
    naming the server."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        check_url(base_url, "--prometheus")
        self.base = base_url.rstrip("/")
        self.timeout = check_timeout(timeout)

    def query(self, promql: str, at: float) -> list[tuple[dict[str, str], float]]:
        """``[(labels, value)]`` of an instant vector query at ``at``."""
        data = self._api("/api/v1/query", {"query": promql, "time": f"{at:.3f}"}, promql)
        return self._results(data, "vector", "an instant query", promql,
                             lambda item: float(item["value"][1]))  # fmt: skip

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """``[(labels, [(time, value), ...])]`` of a range query from ``start`` to ``end``."""
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
                  "step": f"{step:.3f}"}  # fmt: skip
        data = self._api("/api/v1/query_range", params, promql)

        def series(item: Any) -> list[tuple[float, float]]:
            return [(float(t), float(v)) for t, v in item["values"]]

        return self._results(data, "matrix", "a range query", promql, series)

    def _results(
        self, data: dict[str, Any], kind: str, what: str, promql: str,
        value: Callable[[Any], T],
    ) -> list[tuple[dict[str, str], T]]:  # fmt: skip
        """``[(labels, value(item))]`` of a ``kind`` ("vector", "matrix") answer to ``what``;
        another kind or a malformed item is a UserError."""
        if data.get("resultType") != kind:
            raise UserError(f"Prometheus at {self.base} returned {data.get('resultType')!r} for "
                            f"{what}: {promql}")  # fmt: skip
        out = []
        for item in data.get("result", []):
            try:
                out.append((dict(item["metric"]), value(item)))
            except (KeyError, IndexError, TypeError, ValueError):
                raise UserError(f"Prometheus at {self.base} returned a malformed sample") from None
        return out

    def scrape_interval(self, job: str | None) -> float | None:
        """The longest scrape interval of the active targets (of ``job``), None when the
        server scrapes none (a central store fed by remote_write) or does not say."""
        try:
            data = self._api("/api/v1/targets", {"state": "active"}, "targets", post=False)
        except UserError:
            return None
        found = []
        for target in data.get("activeTargets") or []:
            if not isinstance(target, dict):
                continue
            labels = target.get("labels") or {}
            if job is not None and labels.get(N.JOB) != job:
                continue
            text = target.get("scrapeInterval")
            if isinstance(text, str) and is_duration(text):
                found.append(window_seconds(text))
        return max(found) if found else None

    def _api(
        self, path: str, params: dict[str, str], what: str, *, post: bool = True
    ) -> dict[str, Any]:
        """POST (queries: no URL length limit) or GET ``params`` to an API path; the ``data``
        of a successful answer."""
        form = urllib.parse.urlencode(params)
        if post:
            answer = fetch(
                self.base + path, "--prometheus", self.timeout, data=form.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
        else:
            answer = fetch(f"{self.base}{path}?{form}", "--prometheus", self.timeout)
        raw = answer.body
        if not 200 <= answer.status < 300:
            doc = _json(raw)
            if doc is not None and doc.get("status") == "error":
                raise UserError(
                    f"Prometheus at {self.base} rejected a query ({doc.get('errorType', 'error')}"
                    f": {doc.get('error', '')}); query was: {what}"
                )
            raise UserError(
                f"--prometheus {self.base} answered HTTP {answer.status} {answer.reason} on "
                f"{path} (is it a Prometheus server?)"
            )
        doc = _json(raw)
        if doc is None or doc.get("status") != "success" or not isinstance(doc.get("data"), dict):
            raise UserError(
                f"--prometheus {self.base} did not answer like a Prometheus server on "
                f"{path} (no JSON with status success)"
            )
        data: dict[str, Any] = doc["data"]
        return data


def _json(raw: bytes | bytearray) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def queries(window: str, job: str | None) -> dict[str, str]:
    """The PromQL of every figure, by a short key (pure; tests and docs show them).

    >>> queries("1h", "api")["items"]
    'sum by (operation) (increase(otelperf_operation_items_total{job="api"}[1h]))'
    """
    job_matcher = P.eq(N.JOB, job) if job is not None else ""

    def inc(s: Series) -> str:
        return P.sum_by(s.labels, P.increase(P.selector(s.sample, job_matcher), window))

    q = {s.key: inc(s) for s in SERIES}
    q["data_start"] = first_sample(job, window, data_step(window))
    q[BUCKETS.key] = inc(BUCKETS)  # the counts themselves: the JSON's buckets, compare's tests
    for quant in QUANTILES:
        q[f"p{quant:g}"] = P.histogram_quantile(quant, inc(BUCKETS))
    for m in RESOURCE_METRICS:
        # "max by ()" even without labels (not "max (...)"): the queries stay as documented.
        peak = P.over_time("max", P.selector(m.prom, job_matcher), window)
        q["resource:" + m.prom] = f"max by {P.label_list(*m.labels)} ({peak})"
    return q


def first_sample(job: str | None, window: str | None, step: str | None) -> str:
    """The earliest sample time of any counter the report reads: over ``window`` by a subquery
    at ``step`` (``timestamp()`` of a selector is its sample's own time), or with no window the
    latest samples' times at the query's instant.

    Per name, each result tagged with a label before the ``or``: ``timestamp()`` drops the
    name, and the series of two names with the same labels would collide.

    >>> first_sample("api", None, None).startswith(
    ...     'min (label_replace(min (timestamp(otelperf_operation_duration_seconds_count{job="api"'
    ... )
    True
    """
    job_matcher = P.eq(N.JOB, job) if job is not None else ""
    firsts = []
    for s in SERIES:
        stamps = f"timestamp({P.selector(s.sample, job_matcher)})"
        if window is not None:
            stamps = P.call("min_over_time", f"{stamps}[{window}:{step}]")
        tagged = P.call("label_replace", P.aggregate("min", (), stamps), '"series"',
                        f'"{s.key}"', '""', '""')  # fmt: skip
        firsts.append(tagged)
    return P.aggregate("min", (), " or ".join(firsts))


def data_step(window: str) -> str:
    """The subquery step of ``data_start``: a thousandth of the window, between a second and a
    minute (under Prometheus's 5 minute look-back, so no sample falls between two steps).

    >>> data_step("1h"), data_step("5m"), data_step("30d")
    ('3600ms', '1000ms', '60000ms')
    """
    return f"{min(60_000, max(1000, math.ceil(window_seconds(window))))}ms"


def data_seconds(client: PrometheusClient, job: str | None, window: str, at: float) -> float:
    """Seconds of ``[at - window, at]`` that hold data: the window, or less when its earliest
    sample is later than the window's start by more than the coarse step (within one step the
    data may as well have been there before the window).

    Two look-ups keep it cheap and exact: a subquery over the window at a thousandth of it
    finds the step where the data starts (or, when it started after the last step, the
    samples at ``at`` do), then one over that step at a hundredth of it finds the sample.
    """
    length = float(window_seconds(window))
    step = data_step(window)
    coarse = window_seconds(step)
    found = client.query(first_sample(job, window, step), at)
    if not found:
        found = client.query(first_sample(job, None, None), at)
    if not found or not math.isfinite(found[0][1]):
        return length
    first = found[0][1]
    if first <= at - length + coarse:
        return length
    fine = max(10, math.ceil(coarse * 10))  # ms
    span = f"{math.ceil(coarse * 1000) + 2 * fine}ms"
    refined = client.query(first_sample(job, span, f"{fine}ms"), min(first + fine / 1000, at))
    if refined and math.isfinite(refined[0][1]):
        first = min(first, refined[0][1])
    return min(max(at - first, 0.0), length)


def totals_from_prometheus(
    base_url: str, window: str, job: str | None, at: float, timeout: float = 10.0
) -> Totals:
    """Figures over ``[at - window, at]`` across every instance of ``job`` (all jobs: None)."""
    client = PrometheusClient(base_url, timeout)
    q = queries(window, job)
    t = Totals()
    for series in SERIES:
        for lab, v in client.query(q[series.key], at):
            if not math.isnan(v):
                series.add(t, lab, v)
    for lab, v in client.query(q[BUCKETS.key], at):
        if not math.isnan(v) and lab.get(N.OPERATION, "") in t.operations:
            BUCKETS.add(t, lab, v)
    keep_what_moved(t)
    for quant in QUANTILES:
        for lab, v in client.query(q[f"p{quant:g}"], at):
            f = t.operations.get(lab.get(N.OPERATION, ""))
            if f is not None and f.calls > 0:
                if f.quantiles is None:
                    f.quantiles = {}
                f.quantiles[quant] = v
    for m in RESOURCE_METRICS:
        for lab, v in client.query(q["resource:" + m.prom], at):
            t.resources.setdefault(m.prom, []).append(({k: lab.get(k, "") for k in m.labels}, v))
    if not t.empty():
        t.seconds = data_seconds(client, job, window, at)
    if t.empty():
        where = f"job={job!r}" if job is not None else "any job"
        raise UserError(
            f"Prometheus at {client.base} has no otelperf metrics for {where} in the {window} "
            f"before {datetime.fromtimestamp(at).astimezone().isoformat(timespec='seconds')} "
            "(check --job, --window and that Prometheus scrapes the service)"
        )
    return t


def keep_what_moved(t: Totals) -> None:
    """Drop what did not move in the window: ``increase()`` is 0 for series that merely exist.

    An operation ran if it has calls; one without calls stays only for its items or bytes
    (with no duration or CPU).  Caches stay if looked up; APIs if called.

    >>> t = Totals(cache_requests={("s", "hit"): 0.0, ("s", "miss"): 2.0})
    >>> keep_what_moved(t); t.cache_requests
    {('s', 'miss'): 2.0}
    """
    for name, f in list(t.operations.items()):
        f.error_types = {k: v for k, v in f.error_types.items() if v > 0}
        if f.calls > 0:
            continue
        if f.items > 0 or f.bytes > 0:
            f.duration_sum, f.cpu_seconds = 0.0, None
        else:
            del t.operations[name]
    t.roots = {k: v for k, v in t.roots.items() if v > 0}
    t.root_duration = {k: v for k, v in t.root_duration.items() if v > 0}
    t.cache_requests = {k: v for k, v in t.cache_requests.items() if v > 0}
    used = {(a, m) for (a, m, _), v in t.api_calls.items() if v > 0}
    t.api_calls = {k: v for k, v in t.api_calls.items() if (k[0], k[1]) in used}
    t.api_tokens = {k: v for k, v in t.api_tokens.items() if (k[0], k[1]) in used}
    t.api_cost = {k: v for k, v in t.api_cost.items() if k in used}


# Prometheus's own default; the interval assumed when the server scrapes no target itself.
DEFAULT_SCRAPE_INTERVAL = 60.0
TIMELINE_STEPS = 60  # points of a window's timeline (plus its start)


def timeline_step(window: str, scrape_interval: float | None) -> tuple[int, float]:
    """``(steps, seconds per step)`` of a window's timeline: steps that tile the window
    exactly, each a sixtieth of the window or more but at least two scrape intervals
    (``increase()`` over a range needs two samples in it); whole milliseconds.  A window
    shorter than that is one step: the report's own ``increase()`` over the window.

    >>> timeline_step("1h", 15.0), timeline_step("2m", 5.0), timeline_step("90s", 60.0)
    ((60, 60.0), (12, 10.0), (1, 90.0))
    """
    length_ms = round(window_seconds(window) * 1000)
    interval = DEFAULT_SCRAPE_INTERVAL if scrape_interval is None else scrape_interval
    shortest_ms = max(length_ms / TIMELINE_STEPS, 2000 * interval)
    count = max(1, min(TIMELINE_STEPS, int(length_ms // shortest_ms)))
    return count, math.ceil(length_ms / count) / 1000


def timeline_queries(step: float, job: str | None) -> dict[str, str]:
    """The PromQL of the timeline: per operation the increase of calls and items over each
    step (pure).

    >>> timeline_queries(10.0, "api")["items"]
    'sum by (operation) (increase(otelperf_operation_items_total{job="api"}[10000ms]))'
    """
    job_matcher = P.eq(N.JOB, job) if job is not None else ""
    span = f"{round(step * 1000)}ms"
    return {
        s.key: P.sum_by((N.OPERATION,), P.increase(P.selector(s.sample, job_matcher), span))
        for s in (CALLS, ITEMS)
    }


def timeline_from_prometheus(
    base_url: str, window: str, job: str | None, at: float, timeout: float = 10.0
) -> list[TimelinePoint]:
    """Cumulative calls and items per operation over ``[at - window, at]``: a range query of
    each step's ``increase()`` (see :func:`timeline_step`), summed from the window's start."""
    client = PrometheusClient(base_url, timeout)
    count, step = timeline_step(window, client.scrape_interval(job))
    # Whole milliseconds, as Prometheus keeps time, so each answer's timestamps match a point.
    step_ms, end_ms = round(step * 1000), round(at * 1000)
    times = [(end_ms - k * step_ms) / 1000 for k in range(count - 1, -1, -1)]
    steps: dict[str, dict[float, dict[str, float]]] = {"calls": {}, "items": {}}
    for key, promql in timeline_queries(step, job).items():
        for lab, values in client.query_range(promql, times[0], times[-1], step):
            op = lab.get(N.OPERATION, "")
            for when, v in values:
                if op and math.isfinite(v) and v > 0:
                    per_op = steps[key].setdefault(round(when, 3), {})
                    per_op[op] = per_op.get(op, 0.0) + v
    points = [TimelinePoint(times[0] - step, {}, {})]
    calls: dict[str, float] = {}
    items: dict[str, float] = {}
    for when in times:
        for op, v in steps["calls"].get(round(when, 3), {}).items():
            calls[op] = calls.get(op, 0.0) + v
        for op, v in steps["items"].get(round(when, 3), {}).items():
            items[op] = items.get(op, 0.0) + v
        points.append(TimelinePoint(when, dict(calls), dict(items)))
    return points
