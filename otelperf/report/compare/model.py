"""The comparison: per-operation figures of two periods, the tests, and the verdicts.

Pure (no I/O): :mod:`~otelperf.report.compare.inputs` reads the two sides (report JSON files
or Prometheus windows) into :class:`Side` objects, :func:`compare` judges them with the
statistics of :mod:`~otelperf.report.compare.stats`, and :class:`Comparison` is the result
with its JSON and CSV contract (docs/compare.md).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otelperf.report.compare import stats
from otelperf.report.model import histogram_quantile, json_safe

VERDICTS = ("regressed", "improved", "unchanged", "insufficient_data")
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_EFFECT = 0.1
# Below 30 calls a side the normal approximation of U is rough and a 10 % effect is noise.
DEFAULT_MIN_CALLS = 30


@dataclass(frozen=True)
class Histogram:
    """One operation over one period: calls, errors, the duration sum and cumulative buckets
    (``(le, count)`` ascending, ``inf`` last; empty without calls)."""

    calls: float = 0.0
    errors: float = 0.0
    sum_seconds: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()

    def quantile(self, q: float) -> float | None:
        x = histogram_quantile(q, list(self.buckets)) if self.calls > 0 else math.nan
        return x if math.isfinite(x) else None

    @property
    def mean(self) -> float | None:
        return self.sum_seconds / self.calls if self.calls > 0 else None

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.calls if self.calls > 0 else None


@dataclass(frozen=True)
class Side:
    """One period: what it is (``source``, a JSON object; ``label`` for the text) and its
    operations."""

    label: str
    source: dict[str, Any]
    operations: Mapping[str, Histogram]


@dataclass(frozen=True)
class Settings:
    """What counts as a change: significance level, minimum effect, minimum calls a side."""

    alpha: float = DEFAULT_ALPHA
    min_effect: float = DEFAULT_MIN_EFFECT
    min_calls: float = DEFAULT_MIN_CALLS


@dataclass(frozen=True)
class OperationComparison:
    """One operation's figures on both sides, its two tests and its verdict."""

    operation: str
    verdict: str
    reasons: tuple[str, ...]
    baseline: Histogram
    candidate: Histogram
    latency: stats.MannWhitney | None = None
    errors: stats.Proportions | None = None
    latency_p_adjusted: float | None = None
    error_p_adjusted: float | None = None

    def figures(self) -> dict[str, Any]:
        """The flat JSON object of docs/compare.md (before NaN/integer clean-up)."""
        b, c = self.baseline, self.candidate
        d: dict[str, Any] = {
            "operation": self.operation,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "calls_baseline": b.calls,
            "calls_candidate": c.calls,
            "errors_baseline": b.errors,
            "errors_candidate": c.errors,
            "error_ratio_baseline": b.error_ratio,
            "error_ratio_candidate": c.error_ratio,
        }
        for name, (x, y) in {
            "p50": (b.quantile(0.5), c.quantile(0.5)),
            "p95": (b.quantile(0.95), c.quantile(0.95)),
            "mean": (b.mean, c.mean),
        }.items():
            d[f"{name}_seconds_baseline"] = x
            d[f"{name}_seconds_candidate"] = y
            d[f"{name}_ratio"] = ratio(y, x)
        mw, pr = self.latency, self.errors
        d["latency_u"] = mw.u if mw else None
        d["latency_z"] = mw.z if mw else None
        d["latency_prob_slower"] = mw.prob_slower if mw else None
        d["latency_p_value"] = mw.p_value if mw else None
        d["latency_p_adjusted"] = self.latency_p_adjusted
        d["error_test"] = pr.test if pr else None
        d["error_z"] = pr.z if pr else None
        d["error_p_value"] = pr.p_value if pr else None
        d["error_p_adjusted"] = self.error_p_adjusted
        return d


OPERATION_KEYS = (
    "operation", "verdict", "reasons", "calls_baseline", "calls_candidate", "errors_baseline",
    "errors_candidate", "error_ratio_baseline", "error_ratio_candidate", "p50_seconds_baseline",
    "p50_seconds_candidate", "p50_ratio", "p95_seconds_baseline", "p95_seconds_candidate",
    "p95_ratio", "mean_seconds_baseline", "mean_seconds_candidate", "mean_ratio", "latency_u",
    "latency_z", "latency_prob_slower", "latency_p_value", "latency_p_adjusted", "error_test",
    "error_z", "error_p_value", "error_p_adjusted",
)  # fmt: skip


def ratio(after: float | None, before: float | None) -> float | None:
    """after / before; None when either is unknown or before is 0."""
    if after is None or before is None or before == 0:
        return None
    return after / before


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: :meth:`to_dict` is the JSON contract of docs/compare.md."""

    baseline: Side
    candidate: Side
    settings: Settings
    operations: tuple[OperationComparison, ...]
    tests: int = 0  # p-values in the Holm family

    @property
    def regressed(self) -> bool:
        """True when any operation regressed: ``otelperf compare`` then exits with status 1."""
        return any(o.verdict == "regressed" for o in self.operations)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: plain types, unknown figures as None (never NaN)."""
        return {
            "baseline": json_safe(self.baseline.source),
            "candidate": json_safe(self.candidate.source),
            "settings": {
                "alpha": self.settings.alpha,
                "min_effect": self.settings.min_effect,
                "min_calls": json_safe(float(self.settings.min_calls)),
                "correction": "holm",
                "tests": self.tests,
            },
            "summary": {v: sum(o.verdict == v for o in self.operations) for v in VERDICTS},
            "operations": [json_safe(o.figures()) for o in self.operations],
        }

    def to_json(self) -> str:
        """The contract as text: sorted keys, two-space indent, trailing newline."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    def to_csv(self) -> str:
        """The operations as CSV: the JSON keys as columns, ``reasons`` joined with ``;``,
        empty cells for null, floats as ``repr``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(OPERATION_KEYS)
        for row in self.to_dict()["operations"]:
            cells = []
            for k in OPERATION_KEYS:
                v = row[k]
                if isinstance(v, list):
                    v = ";".join(v)
                cells.append("" if v is None else repr(v) if isinstance(v, float) else str(v))
            w.writerow(cells)
        return buf.getvalue()


def compare(baseline: Side, candidate: Side, settings: Settings | None = None) -> Comparison:
    """Judge every operation seen on either side (pure).

    Operations with fewer than ``min_calls`` calls on a side are ``insufficient_data`` and not
    tested.  Every other operation gets two tests (latency: Mann-Whitney U on the buckets;
    errors: two proportions), and the p-values of all of them are Holm-adjusted together.
    """
    s = settings or Settings()
    empty = Histogram()
    names = sorted(set(baseline.operations) | set(candidate.operations))
    tested: list[tuple[str, Histogram, Histogram, stats.MannWhitney, stats.Proportions]] = []
    rows: list[OperationComparison] = []
    for name in names:
        b = baseline.operations.get(name, empty)
        c = candidate.operations.get(name, empty)
        if b.calls < s.min_calls or c.calls < s.min_calls:
            rows.append(OperationComparison(name, "insufficient_data", (), b, c))
            continue
        per_b, per_c = aligned_counts(b.buckets, c.buckets)
        mw = stats.mann_whitney_buckets(per_b, per_c)
        pr = stats.two_proportions(b.errors, b.calls, c.errors, c.calls)
        tested.append((name, b, c, mw, pr))
    adjusted = stats.holm([p for t in tested for p in (t[3].p_value, t[4].p_value)])
    for i, (name, b, c, mw, pr) in enumerate(tested):
        lat_adj, err_adj = adjusted[2 * i], adjusted[2 * i + 1]
        reasons = _reasons(b, c, mw, pr, lat_adj, err_adj, s)
        rows.append(
            OperationComparison(name, _verdict(reasons), reasons, b, c, mw, pr, lat_adj, err_adj)
        )
    rows.sort(key=lambda r: (VERDICTS.index(r.verdict), r.operation))
    return Comparison(baseline, candidate, s, tuple(rows), tests=len(adjusted))


def _reasons(
    b: Histogram,
    c: Histogram,
    mw: stats.MannWhitney,
    pr: stats.Proportions,
    lat_adj: float,
    err_adj: float,
    s: Settings,
) -> tuple[str, ...]:
    """Why an operation changed: the significant shifts that are also large enough."""
    up, down = 1.0 + s.min_effect, 1.0 - s.min_effect
    ratios = [
        r
        for r in (ratio(c.mean, b.mean), ratio(c.quantile(0.95), b.quantile(0.95)))
        if r is not None
    ]
    out: list[str] = []
    if lat_adj < s.alpha and mw.z > 0 and any(r >= up for r in ratios):
        out.append("slower")
    if lat_adj < s.alpha and mw.z < 0 and any(r <= down for r in ratios):
        out.append("faster")
    rb, rc = b.errors / b.calls, c.errors / c.calls
    if err_adj < s.alpha and rc > rb and rc >= rb * up:
        out.append("more_errors")
    if err_adj < s.alpha and rc < rb and rc <= rb * down:
        out.append("fewer_errors")
    return tuple(out)


def _verdict(reasons: Sequence[str]) -> str:
    # A gate errs towards "regressed": slower but fewer errors is still a regression.
    if "slower" in reasons or "more_errors" in reasons:
        return "regressed"
    return "improved" if reasons else "unchanged"


def aligned_counts(
    baseline: Sequence[tuple[float, float]], candidate: Sequence[tuple[float, float]]
) -> tuple[list[float], list[float]]:
    """Per-bucket counts of both sides over the bounds they share.

    Cumulative counts are exact at every bound a side has, so two histograms with different
    boundaries (a changed ``duration_buckets``) are compared on the common ones (``+Inf`` is
    always one).  Small decreases (Prometheus extrapolation) are evened out as Prometheus does.

    >>> aligned_counts([(0.1, 2), (0.5, 5), (math.inf, 6)], [(0.5, 1), (math.inf, 4)])
    ([5.0, 1.0], [1.0, 3.0])
    """
    common = sorted({le for le, _ in baseline} & {le for le, _ in candidate})

    def per_bucket(pairs: Sequence[tuple[float, float]]) -> list[float]:
        cum = dict(pairs)
        out, prev = [], 0.0
        for le in common:
            v = max(prev, float(cum[le]))
            out.append(v - prev)
            prev = v
        return out

    return per_bucket(baseline), per_bucket(candidate)
