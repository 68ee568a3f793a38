"""Report figures from a Prometheus server over a window, across all instances of a job.

Each figure is one instant query at the end of the window: counters as
``sum by (labels) (increase(name[window]))`` and quantiles as Prometheus computes them,
``histogram_quantile(q, sum by (le, operation) (increase(name_bucket[window])))``, so the
report shows what a Grafana panel over the same window shows.  Resource gauges are the
window's highest value (``max_over_time``), the worst moment being what a health check cares
about.  The results fill the same :class:`otelperf.report.Totals` a scrape does.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from otelperf import _names as N
from otelperf.report import (
    RESOURCE_METRICS,
    OperationFigures,
    Totals,
    _error,
    _reason,
)

QUANTILES = (0.5, 0.95, 0.99)
_DURATION = re.compile(r"^(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?$")
_UNIT_SECONDS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1,
                 "ms": 0.001}  # fmt: skip


def parse_window(text: str) -> str:
    """A Prometheus duration (``90s``, ``1h30m``, ``7d``, ``1500ms``), checked here so a typo
    is a clear error rather than a PromQL parse error.

    >>> parse_window("1h30m")
    '1h30m'
    """
    t = str(text).strip()
    if not t or not _DURATION.match(t) or window_seconds(t) <= 0:
        raise _error(f"--window={text!r} is not a Prometheus duration like 30m, 1h, 7d or 1500ms")
    return t


def window_seconds(window: str) -> float:
    """Seconds in a Prometheus duration string."""
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", window))


def parse_time(text: str) -> float:
    """Unix seconds (``1700000000.5``) or RFC 3339 (``2026-11-22T05:00:00Z``)."""
    t = str(text).strip()
    try:
        x = float(t)
    except ValueError:
        try:
            x = datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise _error(f"--at={text!r} is neither Unix seconds nor an RFC 3339 time") from None
    if not math.isfinite(x) or x < 0:
        raise _error(f"--at={text!r} is not a valid time")
    return x


def _selector(job: str | None) -> str:
    if job is None:
        return ""
    escaped = job.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{{N.JOB}="{escaped}"}}'


class PrometheusClient:
    """Instant queries over HTTP; every failure is a one-line error naming the server."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise _error(f"--prometheus={base_url!r} is not an http:// or https:// URL")
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str, at: float) -> list[tuple[dict[str, str], float]]:
        """``[(labels, value)]`` of an instant vector query at ``at``."""
        body = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"}).encode()
        req = urllib.request.Request(
            self.base + "/api/v1/query", data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            doc = _json(raw)
            if doc is not None and doc.get("status") == "error":
                raise _error(
                    f"Prometheus at {self.base} rejected a query ({doc.get('errorType', 'error')}"
                    f": {doc.get('error', '')}); query was: {promql}"
                ) from None
            raise _error(
                f"--prometheus {self.base} answered HTTP {exc.code} {exc.reason} on "
                "/api/v1/query (is it a Prometheus server?)"
            ) from None
        except urllib.error.URLError as exc:
            raise _error(f"cannot reach --prometheus {self.base}: {_reason(exc.reason)}") from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise _error(f"cannot reach --prometheus {self.base}: {_reason(exc)}") from None
        doc = _json(raw)
        if doc is None or doc.get("status") != "success" or not isinstance(doc.get("data"), dict):
            raise _error(
                f"--prometheus {self.base} did not answer like a Prometheus server on "
                "/api/v1/query (no JSON with status success)"
            )
        data = doc["data"]
        if data.get("resultType") != "vector":
            raise _error(f"Prometheus at {self.base} returned {data.get('resultType')!r} for "
                         f"an instant query: {promql}")  # fmt: skip
        out = []
        for item in data.get("result", []):
            try:
                out.append((dict(item["metric"]), float(item["value"][1])))
            except (KeyError, IndexError, TypeError, ValueError):
                raise _error(f"Prometheus at {self.base} returned a malformed sample") from None
        return out


def _json(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def queries(window: str, job: str | None) -> dict[str, str]:
    """The PromQL of every figure, by a short key (pure; tests and docs show them)."""
    sel = _selector(job)
    d = N.OPERATION_DURATION.prom

    def inc(name: str, by: tuple[str, ...]) -> str:
        return f"sum by ({', '.join(by)}) (increase({name}{sel}[{window}]))"

    q = {
        "calls": inc(d + "_count", (N.OPERATION, N.OUTCOME, N.ERROR_TYPE)),
        "duration_sum": inc(d + "_sum", (N.OPERATION,)),
        "items": inc(N.OPERATION_ITEMS.prom, (N.OPERATION,)),
        "bytes": inc(N.OPERATION_BYTES.prom, (N.OPERATION,)),
        "cpu": inc(N.OPERATION_CPU.prom, (N.OPERATION,)),
        "critical_path": inc(N.CRITICAL_PATH.prom, (N.ROOT_OPERATION, N.OPERATION)),
        "self_time": inc(N.SELF_TIME.prom, (N.ROOT_OPERATION, N.OPERATION)),
        "root_duration": inc(N.ROOT_DURATION.prom, (N.ROOT_OPERATION,)),
        "cache": inc(N.CACHE_REQUESTS.prom, (N.CACHE, N.RESULT)),
        "api_calls": inc(N.API_CALLS.prom, (N.API, N.MODEL, N.OUTCOME)),
        "api_tokens": inc(N.API_TOKENS.prom, (N.API, N.MODEL, N.TOKEN_TYPE)),
        "api_cost": inc(N.API_COST.prom, (N.API, N.MODEL)),
    }
    for quant in QUANTILES:
        q[f"p{quant:g}"] = (
            f"histogram_quantile({quant:g}, {inc(d + '_bucket', ('le', N.OPERATION))})"
        )
    for m in RESOURCE_METRICS:
        by = ", ".join(m.labels)
        q["resource:" + m.prom] = f"max by ({by}) (max_over_time({m.prom}{sel}[{window}]))"
    return q


def totals_from_prometheus(
    base_url: str, window: str, job: str | None, at: float, timeout: float = 10.0
) -> Totals:
    """Figures over ``[at - window, at]`` across every instance of ``job`` (all jobs: None)."""
    client = PrometheusClient(base_url, timeout)
    q = queries(window, job)
    t = Totals()

    def op(name: str) -> OperationFigures:
        return t.op(name)

    for lab, v in client.query(q["calls"], at):
        name = lab.get(N.OPERATION)
        if name is None or v <= 0:
            continue
        f = op(name)
        f.calls += v
        if lab.get(N.OUTCOME) == N.OUTCOME_ERROR:
            f.errors += v
            et = lab.get(N.ERROR_TYPE, "")
            f.error_types[et] = f.error_types.get(et, 0.0) + v
    active = set(t.operations)  # operations that ran in the window
    for key, attr in (("duration_sum", "duration_sum"), ("items", "items"), ("bytes", "bytes")):
        for lab, v in client.query(q[key], at):
            name = lab.get(N.OPERATION)
            if name is not None and (name in active or (attr != "duration_sum" and v > 0)):
                setattr(op(name), attr, getattr(op(name), attr) + v)
    for lab, v in client.query(q["cpu"], at):
        name = lab.get(N.OPERATION)
        if name is not None and name in active:
            f = op(name)
            f.cpu_seconds = (f.cpu_seconds or 0.0) + v
    for quant in QUANTILES:
        for lab, v in client.query(q[f"p{quant:g}"], at):
            name = lab.get(N.OPERATION)
            if name is not None and name in active:
                f = op(name)
                if f.quantiles is None:
                    f.quantiles = {}
                f.quantiles[quant] = v

    def pairs(key: str, *labels: str) -> dict[Any, float]:
        out: dict[Any, float] = {}
        for lab, v in client.query(q[key], at):
            k = tuple(lab.get(x, "") for x in labels)
            out[k if len(k) > 1 else k[0]] = v
        return out

    t.critical_path = pairs("critical_path", N.ROOT_OPERATION, N.OPERATION)
    t.self_time = pairs("self_time", N.ROOT_OPERATION, N.OPERATION)
    t.root_duration = pairs("root_duration", N.ROOT_OPERATION)
    t.cache_requests = {k: v for k, v in pairs("cache", N.CACHE, N.RESULT).items() if v > 0}
    t.api_calls = pairs("api_calls", N.API, N.MODEL, N.OUTCOME)
    t.api_tokens = pairs("api_tokens", N.API, N.MODEL, N.TOKEN_TYPE)
    t.api_cost = pairs("api_cost", N.API, N.MODEL)
    # Keep only what moved in the window: increase() is 0 for series that merely exist.
    used = {(a, m) for (a, m, _), v in t.api_calls.items() if v > 0}
    t.api_calls = {k: v for k, v in t.api_calls.items() if (k[0], k[1]) in used}
    t.api_tokens = {k: v for k, v in t.api_tokens.items() if (k[0], k[1]) in used}
    t.api_cost = {k: v for k, v in t.api_cost.items() if k in used}
    for m in RESOURCE_METRICS:
        for lab, v in client.query(q["resource:" + m.prom], at):
            t.resources.setdefault(m.prom, []).append(({k: lab.get(k, "") for k in m.labels}, v))
    if t.empty():
        where = f"job={job!r}" if job is not None else "any job"
        raise _error(
            f"Prometheus at {client.base} has no otelperf metrics for {where} in the {window} "
            f"before {datetime.fromtimestamp(at).astimezone().isoformat(timespec='seconds')} "
            "(check --job, --window and that Prometheus scrapes the service)"
        )
    return t
