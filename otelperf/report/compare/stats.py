"""The statistics of ``otelperf compare``: pure functions on counts, stdlib ``math`` only.

No I/O and no SciPy at run time (the test suite checks these against SciPy).  The choices and
why they fit histogram data are in docs/compare.md:

* :func:`mann_whitney_buckets`: Mann-Whitney U on bucketed latencies.  A histogram keeps only
  which bucket each call fell in, so every bucket is one group of ties; U, the tie-corrected
  variance and the normal approximation (with continuity correction, as SciPy's
  ``mannwhitneyu(method="asymptotic")``) need nothing else.
* :func:`two_proportions`: errors out of calls on each side.  The pooled two-proportion z-test
  when every expected cell of the 2x2 table is at least 5 (Cochran's rule), Fisher's exact
  test otherwise, where the normal approximation is poor.
* :func:`holm`: Holm-Bonferroni adjusted p-values over every test of a comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Cochran's rule: the z-test's normal approximation is trusted from 5 expected per cell.
MIN_EXPECTED_FOR_Z = 5.0


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z, through ``erfc`` (accurate far into the tail).

    >>> round(normal_sf(1.959963984540054), 6)
    0.025
    """
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z.

    >>> round(two_sided_p(-1.959963984540054), 6)
    0.05
    """
    return min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))


@dataclass(frozen=True)
class MannWhitney:
    """Mann-Whitney U of the candidate against the baseline.

    ``u``: pairs (candidate call, baseline call) where the candidate is slower, ties counting
    half; ``prob_slower`` = u / (n1 n2), the probability that a random candidate call is slower
    than a random baseline call (0.5: no shift); ``z`` > 0 means the candidate is slower.
    """

    u: float
    z: float
    p_value: float
    prob_slower: float


def mann_whitney_buckets(baseline: Sequence[float], candidate: Sequence[float]) -> MannWhitney:
    """Two-sided Mann-Whitney U test from per-bucket (not cumulative) counts of two samples.

    ``baseline[i]`` and ``candidate[i]`` count calls in the same bucket ``i``, buckets in
    ascending order.  Counts may be fractional (``increase()`` over a window): the formulas
    only weight buckets.  Each bucket is one tie group: the variance is
    ``n1 n2 / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1)))`` with ``t`` the calls in a bucket.
    No calls on a side, or every call in one bucket, is no evidence: p = 1.

    >>> mw = mann_whitney_buckets([3, 1, 0], [0, 1, 3])
    >>> mw.u, mw.prob_slower
    (15.5, 0.96875)
    """
    if len(baseline) != len(candidate):
        raise ValueError("baseline and candidate need the same buckets")
    n1 = float(sum(baseline))
    n2 = float(sum(candidate))
    if n1 <= 0 or n2 <= 0:
        return MannWhitney(0.0, 0.0, 1.0, math.nan)
    u = 0.0
    below = 0.0  # baseline calls in lower buckets
    ties = 0.0
    for a, b in zip(baseline, candidate, strict=True):
        u += b * (below + a / 2.0)
        below += a
        t = a + b
        ties += t * t * t - t
    n = n1 + n2
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))
    prob = u / (n1 * n2)
    if var <= 0:
        return MannWhitney(u, 0.0, 1.0, prob)
    d = u - mean
    # Continuity correction: U moves in steps of 1/2 under ties; shrink |d| by 0.5 (SciPy too).
    z = math.copysign(max(abs(d) - 0.5, 0.0), d) / math.sqrt(var)
    return MannWhitney(u, z, two_sided_p(z), prob)


@dataclass(frozen=True)
class Proportions:
    """A two-sided test of errors_candidate / calls_candidate against the baseline's ratio.

    ``test`` is ``"z"`` (pooled two-proportion z-test; ``z`` > 0: more errors in the
    candidate) or ``"fisher"`` (Fisher's exact test; ``z`` is None).
    """

    test: str
    z: float | None
    p_value: float


def two_proportions(
    errors_baseline: float, calls_baseline: float, errors_candidate: float, calls_candidate: float
) -> Proportions:
    """Are the error ratios different?  Pooled z-test, or Fisher's exact test when an expected
    cell of the 2x2 table is below 5 (Cochran's rule).

    >>> r = two_proportions(10, 1000, 50, 1000)
    >>> r.test, round(r.z, 3)
    ('z', 5.243)
    """
    n1, n2 = float(calls_baseline), float(calls_candidate)
    e1, e2 = float(errors_baseline), float(errors_candidate)
    if n1 <= 0 or n2 <= 0:
        return Proportions("z", 0.0, 1.0)
    n = n1 + n2
    bad = e1 + e2
    good = n - bad
    expected = min(n1, n2) * min(bad, good) / n
    if expected < MIN_EXPECTED_FOR_Z:
        return Proportions("fisher", None, fisher_exact(e1, n1, e2, n2))
    pooled = bad / n
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = (e2 / n2 - e1 / n1) / se
    return Proportions("z", z, two_sided_p(z))


def fisher_exact(
    errors_baseline: float, calls_baseline: float, errors_candidate: float, calls_candidate: float
) -> float:
    """Two-sided p of Fisher's exact test on ``[[e1, n1 - e1], [e2, n2 - e2]]`` (counts rounded
    to whole calls): the probability, with both margins fixed, of a table as likely as the
    observed one or less (SciPy's definition, same relative tolerance 1e-7).

    >>> round(fisher_exact(1, 10, 9, 10), 6)
    0.001093
    """
    n1, n2 = round(calls_baseline), round(calls_candidate)
    e1, e2 = round(errors_baseline), round(errors_candidate)
    if n1 <= 0 or n2 <= 0:
        return 1.0
    k = e1 + e2
    n = n1 + n2

    def log_pmf(x: int) -> float:  # hypergeometric: x errors among the baseline's n1 calls
        return _log_choose(n1, x) + _log_choose(n2, k - x) - _log_choose(n, k)

    observed = log_pmf(e1)
    # The support has at most min(n1, n2, k, n - k) + 1 tables; only small ones get here.
    cutoff = observed + math.log1p(1e-7)
    total = 0.0
    for x in range(max(0, k - n2), min(k, n1) + 1):
        lp = log_pmf(x)
        if lp <= cutoff:
            total += math.exp(lp)
    return min(1.0, total)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Rejecting every hypothesis whose adjusted p is below alpha keeps the chance of even one
    false rejection among them at most alpha, whatever their dependence.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
