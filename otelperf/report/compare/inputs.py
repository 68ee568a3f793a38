"""The two sides of ``otelperf compare``: report JSON files or Prometheus windows, read into
:class:`~otelperf.report.compare.model.Side` objects.  Every mistake is a one-line
:class:`~otelperf.errors.UserError` naming the argument or the file.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from otelperf.errors import UserError
from otelperf.generate.promql import MAX_DURATION_SECONDS
from otelperf.report.compare.model import Histogram, Side
from otelperf.report.model import Totals
from otelperf.report.sources.fetch import reason
from otelperf.report.sources.prometheus import (
    PrometheusClient,
    keep_what_moved,
    parse_time,
    queries,
)
from otelperf.report.sources.series import BUCKETS, CALLS, DURATION_SUM

# --- Prometheus windows --------------------------------------------------------------------


def parse_range(text: str, what: str) -> tuple[float, float]:
    """``START..END`` (each Unix seconds or RFC 3339) as Unix seconds, END after START.

    >>> parse_range("1700000000..2023-11-14T23:13:20Z", "--baseline")
    (1700000000.0, 1700003600.0)
    """
    t = str(text).strip()
    if t.count("..") != 1:
        raise UserError(f"{what}={text!r} is not a range START..END (RFC 3339 or Unix seconds)")
    start_text, end_text = (x.strip() for x in t.split(".."))
    if not start_text or not end_text:
        raise UserError(f"{what}={text!r} needs both START and END (START..END)")
    start = parse_time(start_text, f"{what} START")
    end = parse_time(end_text, f"{what} END")
    if end - start < 0.001:
        raise UserError(f"{what}={text!r}: END must be after START")
    if end - start > MAX_DURATION_SECONDS:
        raise UserError(f"{what}={text!r} is out of range: Prometheus refuses a range over 292y")
    return start, end


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def side_from_prometheus(
    client: PrometheusClient, job: str | None, start: float, end: float, what: str
) -> Side:
    """Calls, errors, duration sums and buckets of every operation over ``[start, end]``:
    ``increase()`` over the range, evaluated at ``end``, summed over instances."""
    window = f"{round((end - start) * 1000)}ms"
    q = queries(window, job)
    t = Totals()
    for series in (CALLS, DURATION_SUM, BUCKETS):
        for lab, v in client.query(q[series.key], end):
            if not math.isnan(v):
                series.add(t, lab, v)
    keep_what_moved(t)
    ops = {
        name: Histogram(f.calls, f.errors, f.duration_sum, tuple(sorted(f.buckets.items())))
        for name, f in t.operations.items()
        if f.calls > 0
    }
    if not ops:
        where = f"job={job!r}" if job is not None else "any job"
        raise UserError(
            f"{what}: Prometheus at {client.base} has no otelperf operation calls for {where} "
            f"between {_iso(start)} and {_iso(end)} (check the range and --job)"
        )
    source = {"kind": "prometheus", "target": client.base, "job": job, "start": start,
              "end": end}  # fmt: skip
    label = f"{_iso(start)} .. {_iso(end)}"
    return Side(label, source, ops)


# --- report JSON files ---------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def side_from_file(path: str, what: str) -> Side:
    """An ``otelperf report --format json`` file with bucket counts (``buckets``,
    ``sum_seconds`` per operation)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a name it cannot encode
        raise UserError(f"{what} {path}: cannot read it ({reason(exc)})") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        first = str(exc).splitlines()[0][:80] if str(exc) else "unparsable"
        raise UserError(f"{what} {path} is not JSON ({first})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("operations"), list):
        raise UserError(
            f'{what} {path} is not an `otelperf report --format json` file (no "operations" '
            "list at the top)"
        )
    ops: dict[str, Histogram] = {}
    for i, op in enumerate(doc["operations"]):
        name, hist = _operation(op, f"{what} {path}: operations[{i}]")
        if name in ops:
            raise UserError(f"{what} {path}: operation {name!r} appears twice")
        ops[name] = hist
    # A file name with undecodable bytes (lone surrogates) would fail the output's write.
    shown = path.encode("utf-8", "backslashreplace").decode("utf-8")
    source = {"kind": "file", "path": shown, "report_source": doc.get("source")}
    return Side(shown, source, ops)


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    v = float(x)
    return v if math.isfinite(v) and v >= 0 else None


def _operation(op: Any, where: str) -> tuple[str, Histogram]:
    if not isinstance(op, dict) or not isinstance(op.get("operation"), str):
        raise UserError(f'{where} is not an operation of a report (no "operation" name)')
    name = op["operation"]
    where = f"{where} ({name!r})"
    calls, errors = _number(op.get("calls")), _number(op.get("errors"))
    if calls is None or errors is None or errors > calls:
        raise UserError(f'{where}: "calls" and "errors" must be counts, errors <= calls')
    if "buckets" not in op or "sum_seconds" not in op:
        raise UserError(
            f'{where} has no bucket counts ("buckets", "sum_seconds"): write both '
            "reports with this otelperf's `otelperf report --format json`"
        )
    total = _number(op["sum_seconds"]) if op["sum_seconds"] is not None else 0.0
    if total is None:
        raise UserError(f'{where}: "sum_seconds" must be a number >= 0')
    raw = op["buckets"]
    if not isinstance(raw, list):
        raise UserError(f'{where}: "buckets" must be a list of [le, count] pairs')
    buckets: list[tuple[float, float]] = []
    for pair in raw:
        le = math.inf if isinstance(pair, list) and len(pair) == 2 and pair[0] == "+Inf" else None
        if le is None and isinstance(pair, list) and len(pair) == 2:
            le = _number(pair[0])
        count = _number(pair[1]) if isinstance(pair, list) and len(pair) == 2 else None
        if le is None or count is None or (buckets and le <= buckets[-1][0]):
            raise UserError(
                f'{where}: "buckets" must be [le, cumulative count] pairs with le increasing '
                f'and "+Inf" last; got {json.dumps(pair)[:40]}'
            )
        buckets.append((le, count))
    if buckets and not math.isinf(buckets[-1][0]):
        raise UserError(f'{where}: "buckets" must end with the "+Inf" bucket')
    if calls > 0 and not buckets:
        raise UserError(f"{where} has {calls:g} calls but no bucket counts")
    return name, Histogram(calls, errors, total, tuple(buckets))
