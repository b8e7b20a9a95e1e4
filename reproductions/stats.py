"""The statistics behind every verdict: paired intervals over seeds, multiplicity, verdict rules.

All distributions come from scipy.stats; this module is the only place that imports it, and
only inside the functions, so a machine with torch alone can still train (the runner then
writes "claims not computed — run analyse").

Why these choices:

* Arms are compared **paired by seed**: seed s gives every arm the same initialisation and data
  order, so the seed-to-seed noise they share cancels in the per-seed difference. The interval
  is the one-sample t-interval of those differences (the paired t-interval).
* A card makes several difference claims at once; the **verdict** uses Holm's step-down
  adjustment of the paired-t p-values (controls the family-wise error at ``alpha``, uniformly
  more powerful than Bonferroni), and the **interval shown** is the simultaneous Bonferroni
  interval (each at ``1 - alpha/m``), since Holm has no matching interval. Holm can reject
  while the Bonferroni interval still touches zero; the page says which rule gave the verdict.
* The paired **bootstrap** over seeds (percentile) is reported beside the t-interval as a check
  that does not assume normal differences; with 5 seeds it is too narrow to decide anything on
  its own, so it never drives a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
ALPHA = 0.05


def paired_differences(a: Sequence[float], b: Sequence[float], scale: float = 1.0) -> list[float]:
    """``scale * (a_s - b_s)`` for each seed s; the two arms must list the same seeds in the same order."""
    if len(a) != len(b):
        raise ValueError(f"paired arms need the same seeds: {len(a)} values against {len(b)}")
    return [scale * (x - y) for x, y in zip(a, b)]


def mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def t_interval(xs: Sequence[float], level: float = 1 - ALPHA) -> tuple[float, float] | None:
    """Two-sided t-interval for the mean of `xs` at `level`; None with fewer than two values."""
    from scipy import stats

    n = len(xs)
    if n < 2:
        return None
    m = mean(xs)
    se = stats.sem(xs)
    if se == 0:
        return (float(m), float(m))
    q = stats.t.ppf(0.5 + level / 2, df=n - 1)
    return (float(m - q * se), float(m + q * se))


def t_test_p(xs: Sequence[float]) -> float | None:
    """Two-sided p-value of the one-sample t-test of mean 0 (the paired t-test on differences)."""
    from scipy import stats

    if len(xs) < 2:
        return None
    if stats.sem(xs) == 0:
        return 0.0 if mean(xs) != 0 else 1.0
    return float(stats.ttest_1samp(xs, 0.0).pvalue)


def bootstrap_interval(xs: Sequence[float], level: float = 1 - ALPHA, n_resamples: int = 9999,
                       seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean, resampling seeds (the paired differences)."""
    import numpy as np
    from scipy import stats

    if len(xs) < 2:
        return None
    if len(set(xs)) == 1:
        return (xs[0], xs[0])
    res = stats.bootstrap((np.asarray(xs, dtype=float),), np.mean, confidence_level=level,
                          n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given), capped at 1."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))  # monotone in the sorted order
        adjusted[i] = running
    return adjusted


def bonferroni_level(level: float, m: int) -> float:
    """Per-interval level that makes `m` intervals hold simultaneously at `level`."""
    return 1 - (1 - level) / max(1, m)


# ---------------------------------------------------------------- verdict rules

def difference_verdict(estimate: float, p_adjusted: float | None, direction: str, alpha: float = ALPHA) -> str:
    """Reproduced: the adjusted test rejects 0 with the estimate on the paper's side; contradicted:
    it rejects on the other side; inconclusive otherwise (or with no test: fewer than two seeds)."""
    if p_adjusted is None or p_adjusted >= alpha or estimate == 0:
        return INCONCLUSIVE
    return REPRODUCED if (estimate > 0) == (direction == "higher") else CONTRADICTED


def value_verdict(estimate: float, interval: tuple[float, float] | None, paper: float, tolerance: float,
                  direction: str) -> str:
    """Reproduced: the estimate is within ``paper ± tolerance``; contradicted: the whole interval (the
    estimate itself with one seed) lies beyond the tolerance on the worse side; inconclusive otherwise."""
    if abs(estimate - paper) <= tolerance:
        return REPRODUCED
    lo, hi = interval or (estimate, estimate)
    if direction == "higher" and hi < paper - tolerance:
        return CONTRADICTED
    if direction == "lower" and lo > paper + tolerance:
        return CONTRADICTED
    return INCONCLUSIVE


def bound_verdict(per_seed: Sequence[float], bound: float, direction: str) -> str:
    """A bound is met on a seed when its value is at least (direction "higher") or at most ("lower")
    `bound`. Reproduced: met on every seed; contradicted: missed on every seed; inconclusive: mixed."""
    met = [(v >= bound) if direction == "higher" else (v <= bound) for v in per_seed]
    if not met:
        return INCONCLUSIVE
    if all(met):
        return REPRODUCED
    return CONTRADICTED if not any(met) else INCONCLUSIVE


@dataclass(frozen=True)
class DifferenceTest:
    """One difference claim's numbers before adjustment."""

    estimate: float
    interval: tuple[float, float] | None  # unadjusted, at `level`
    p: float | None
    n: int


def test_difference(diffs: Sequence[float], level: float = 1 - ALPHA) -> DifferenceTest:
    return DifferenceTest(mean(diffs), t_interval(diffs, level), t_test_p(diffs), len(diffs))


test_difference.__test__ = False  # a statistics function, not a pytest test
