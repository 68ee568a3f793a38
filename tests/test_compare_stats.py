"""The statistics of ``otelperf compare`` against SciPy (when the dev extra has it), textbook
examples worked by hand, brute force, and simulation (calibration under no change, power
under a planted one); then the verdict rules on hand-made histograms."""

from __future__ import annotations

import math
import random

import pytest

from otelperf._names import DEFAULT_DURATION_BUCKETS
from otelperf.report.compare.model import (
    Histogram,
    Settings,
    Side,
    aligned_counts,
    compare,
)
from otelperf.report.compare.stats import (
    fisher_exact,
    holm,
    mann_whitney_buckets,
    normal_sf,
    two_proportions,
    two_sided_p,
)

BOUNDS = (*DEFAULT_DURATION_BUCKETS, math.inf)


def bucket_counts(rng: random.Random, n: int, median: float, sigma: float = 0.6) -> list[int]:
    """``n`` log-normal latencies binned into otelperf's default buckets (per-bucket counts)."""
    counts = [0] * len(BOUNDS)
    for _ in range(n):
        x = rng.lognormvariate(math.log(median), sigma)
        counts[next(i for i, le in enumerate(BOUNDS) if x <= le)] += 1
    return counts


def expand(counts: list[int]) -> list[int]:
    """One value per call: its bucket's index (the ties a histogram makes)."""
    return [i for i, c in enumerate(counts) for _ in range(c)]


# --- normal distribution, textbook values -------------------------------------------------------


def test_normal_tail_textbook_values():
    assert normal_sf(0.0) == 0.5
    assert math.isclose(normal_sf(1.959963984540054), 0.025, rel_tol=1e-12)
    assert math.isclose(two_sided_p(2.5758293035489), 0.01, rel_tol=1e-10)
    # erfc keeps the far tail (1 - cdf would round to 0): P(Z > 10) = 7.619853e-24.
    assert math.isclose(normal_sf(10.0), 7.619853024160527e-24, rel_tol=1e-12)


# --- Mann-Whitney U on buckets ------------------------------------------------------------------


def test_u_by_brute_force_over_all_pairs():
    rng = random.Random(1)
    for _ in range(20):
        a = bucket_counts(rng, rng.randint(1, 60), 0.05)
        b = bucket_counts(rng, rng.randint(1, 60), 0.07)
        xs, ys = expand(a), expand(b)
        u = sum((y > x) + 0.5 * (y == x) for x in xs for y in ys)
        mw = mann_whitney_buckets(a, b)
        assert mw.u == u and mw.prob_slower == u / (len(xs) * len(ys))


def test_hand_worked_example_with_ties():
    # Baseline 3 calls in bucket 0 and 1 in bucket 1; candidate 1 in bucket 1, 3 in bucket 2.
    # U = 1 * (3 + 1/2) + 3 * 4 = 15.5 of 16 pairs; N = 8, ties: t = 3, 2, 3 ->
    # sum(t^3 - t) = 24 + 6 + 24 = 54; var = 16/12 * (9 - 54/56) = 10.714285...
    # z = (15.5 - 8 - 0.5) / sqrt(var) = 2.138539...
    mw = mann_whitney_buckets([3, 1, 0], [0, 1, 3])
    var = 16 / 12 * (9 - 54 / 56)
    assert mw.u == 15.5
    assert math.isclose(mw.z, 7 / math.sqrt(var), rel_tol=1e-12)
    assert math.isclose(mw.p_value, math.erfc(7 / math.sqrt(var) / math.sqrt(2)), rel_tol=1e-12)


def test_mann_whitney_matches_scipy_with_ties():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(2)
    for i in range(40):
        n1, n2 = rng.randint(5, 400), rng.randint(5, 400)
        a = bucket_counts(rng, n1, 0.05)
        b = bucket_counts(rng, n2, 0.05 * rng.choice((1.0, 1.1, 1.3, 0.8)))
        want = scipy_stats.mannwhitneyu(expand(b), expand(a), alternative="two-sided",
                                        method="asymptotic", use_continuity=True)  # fmt: skip
        got = mann_whitney_buckets(a, b)
        assert got.u == want.statistic, i
        assert math.isclose(got.p_value, want.pvalue, rel_tol=1e-9, abs_tol=1e-300), i


def test_no_evidence_cases():
    assert mann_whitney_buckets([0, 0], [3, 1]).p_value == 1.0  # an empty side
    same = mann_whitney_buckets([0, 5, 0], [0, 9, 0])  # every call in one bucket
    assert (same.u, same.z, same.p_value, same.prob_slower) == (22.5, 0.0, 1.0, 0.5)
    with pytest.raises(ValueError):
        mann_whitney_buckets([1], [1, 2])


def test_calibrated_under_no_change_and_powerful_under_a_planted_one():
    """p-values are uniform when nothing changed (ties and all), and a 1.3x slowdown of
    300 calls a side is found nearly always."""
    rng = random.Random(3)
    null = [
        mann_whitney_buckets(bucket_counts(rng, 200, 0.05), bucket_counts(rng, 200, 0.05)).p_value
        for _ in range(1000)
    ]
    # Binomial(1000, q): 4 standard deviations either side.
    for q in (0.05, 0.2, 0.5):
        got = sum(p < q for p in null)
        sd = math.sqrt(1000 * q * (1 - q))
        assert abs(got - 1000 * q) < 4 * sd, (q, got)
    found = sum(
        mann_whitney_buckets(bucket_counts(rng, 300, 0.05), bucket_counts(rng, 300, 0.065)).p_value
        < 0.05
        for _ in range(200)
    )
    assert found >= 180


# --- two proportions --------------------------------------------------------------------------


def test_pooled_z_by_hand():
    # 10/1000 vs 50/1000: pooled 0.03, se = sqrt(0.03 * 0.97 * 2/1000) = 0.0076288...
    r = two_proportions(10, 1000, 50, 1000)
    se = math.sqrt(0.03 * 0.97 * 0.002)
    assert r.test == "z" and math.isclose(r.z, 0.04 / se, rel_tol=1e-12)
    assert math.isclose(r.p_value, math.erfc(0.04 / se / math.sqrt(2)), rel_tol=1e-12)
    assert two_proportions(20, 1000, 10, 1000).z < 0  # fewer errors: negative


def test_z_test_matches_scipy_chi_square_without_correction():
    scipy_stats = pytest.importorskip("scipy.stats")
    for e1, n1, e2, n2 in ((10, 1000, 50, 1000), (120, 5000, 95, 4000), (30, 300, 41, 350)):
        chi2, p, _, _ = scipy_stats.chi2_contingency([[e1, n1 - e1], [e2, n2 - e2]],
                                                     correction=False)  # fmt: skip
        r = two_proportions(e1, n1, e2, n2)
        assert r.test == "z" and math.isclose(r.z**2, chi2, rel_tol=1e-9)
        assert math.isclose(r.p_value, p, rel_tol=1e-9)


def test_fisher_for_small_counts_textbook_and_scipy():
    # The lady tasting tea (Fisher 1935): [[3, 1], [1, 3]] -> two-sided p = 34/70.
    assert math.isclose(fisher_exact(3, 4, 1, 4), 34 / 70, rel_tol=1e-12)
    r = two_proportions(0, 40, 3, 40)  # expected errors 1.5 a side: Fisher
    assert r.test == "fisher" and r.z is None
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(4)
    for _ in range(30):
        n1, n2 = rng.randint(1, 300), rng.randint(1, 300)
        e1, e2 = rng.randint(0, min(n1, 6)), rng.randint(0, min(n2, 6))
        _, want = scipy_stats.fisher_exact([[e1, n1 - e1], [e2, n2 - e2]])
        assert math.isclose(fisher_exact(e1, n1, e2, n2), want, rel_tol=1e-9), (e1, n1, e2, n2)


# --- Holm ----------------------------------------------------------------------------------------


def test_holm_by_hand():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1, then never below a smaller p
    assert holm([]) == []


# --- verdicts -------------------------------------------------------------------------------------


def hist(per_bucket: list[float], errors: float = 0, mean: float | None = None) -> Histogram:
    """A histogram over BOUNDS from per-bucket counts; the mean defaults to bucket midpoints."""
    cum, running, total = [], 0.0, 0.0
    for i, (le, c) in enumerate(zip(BOUNDS, per_bucket, strict=False)):
        running += c
        low = BOUNDS[i - 1] if i else 0.0
        total += c * ((low + le) / 2 if math.isfinite(le) else low)
        cum.append((le, running))
    cum += [(le, running) for le in BOUNDS[len(cum) :]]
    calls = running
    return Histogram(calls, errors, (mean * calls) if mean is not None else total, tuple(cum))


def at(index: int, n: float) -> list[float]:
    """``n`` calls in bucket ``index`` (0.05 s is index 8, 0.1 s is 9, 0.25 s is 10)."""
    return [0.0] * index + [n]


def side(**ops: Histogram) -> Side:
    return Side("x", {"kind": "test"}, ops)


def test_verdict_rules():
    base = hist([0.0] * 8 + [300, 300])  # 600 calls in (0.025, 0.05] and (0.05, 0.1]
    slower = hist([0.0] * 8 + [200, 300, 100])  # a third of them one bucket up
    faster = hist([0.0] * 7 + [100, 300, 200])
    result = compare(
        side(a=base, b=base, c=base, d=hist(at(9, 600), errors=6), e=base, tiny=hist(at(9, 10))),
        side(a=slower, b=faster, c=base, d=hist(at(9, 600), errors=36), e=hist(at(9, 29))),
    )  # fmt: skip
    got = {o.operation: (o.verdict, o.reasons) for o in result.operations}
    assert got == {
        "a": ("regressed", ("slower",)), "d": ("regressed", ("more_errors",)),
        "b": ("improved", ("faster",)), "c": ("unchanged", ()),
        "e": ("insufficient_data", ()), "tiny": ("insufficient_data", ()),
    }  # fmt: skip
    # Ordered by verdict, then name; four operations tested, two tests each.
    assert [o.operation for o in result.operations] == ["a", "d", "b", "c", "e", "tiny"]
    assert result.tests == 8 and result.regressed


def test_significant_but_smaller_than_min_effect_is_unchanged():
    # 100 000 calls a side: moving 3 % of calls one bucket up is highly significant but the
    # mean moves 2 %: below the default 10 %, above 1 %.
    n = 100_000
    base = hist([0.0] * 9 + [n / 2, n / 2])
    cand = hist([0.0] * 9 + [n / 2 - 3000, n / 2 + 3000])
    r = compare(side(op=base), side(op=cand)).operations[0]
    assert r.latency is not None and r.latency_p_adjusted is not None
    assert r.latency_p_adjusted < 1e-10 and r.verdict == "unchanged"
    assert compare(side(op=base), side(op=cand), Settings(min_effect=0.01)).regressed


def test_holm_correction_turns_a_lone_weak_signal_unchanged_among_many():
    # A shift with raw p ~ 0.01: significant alone (2 tests), not among 20 operations (40 tests).
    base = hist([0.0] * 9 + [60, 60])
    cand = hist([0.0] * 9 + [40, 80])  # mean x1.13
    alone = compare(side(op=base), side(op=cand)).operations[0]
    assert alone.latency is not None and 0.005 < alone.latency.p_value < 0.02
    assert alone.verdict == "regressed"
    many = {f"quiet{i:02d}": base for i in range(19)}
    crowd = compare(side(op=base, **many), side(op=cand, **many))
    op = next(o for o in crowd.operations if o.operation == "op")
    assert crowd.tests == 40 and op.verdict == "unchanged"
    assert op.latency_p_adjusted == pytest.approx(min(1.0, 40 * op.latency.p_value))  # type: ignore[union-attr]


def test_more_errors_wins_over_faster():
    base = hist([0.0] * 8 + [300, 300], errors=6)
    cand = hist([0.0] * 7 + [100, 300, 200], errors=40)
    r = compare(side(op=base), side(op=cand)).operations[0]
    assert (r.verdict, r.reasons) == ("regressed", ("faster", "more_errors"))


def test_different_bucket_boundaries_are_compared_on_the_shared_ones():
    b = [(0.1, 2.0), (0.5, 5.0), (math.inf, 6.0)]
    c = [(0.25, 1.0), (0.5, 1.0), (math.inf, 4.0)]
    assert aligned_counts(b, c) == ([5.0, 1.0], [1.0, 3.0])
    # Cumulative counts that dip (increase() extrapolation) are evened out, never negative.
    assert aligned_counts([(1.0, 5.0), (math.inf, 4.9)], [(1.0, 1.0), (math.inf, 2.0)]) == (
        [5.0, 0.0],
        [1.0, 1.0],
    )
