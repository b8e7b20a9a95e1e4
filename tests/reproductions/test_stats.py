"""The statistics behind the verdicts, against closed forms and independent scipy routines."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from reproductions import stats


def test_t_interval_matches_the_closed_form_quantiles_of_t_with_one_and_two_degrees_of_freedom():
    # t with 1 df is Cauchy: q = tan(pi (p - 1/2)); with 2 df q = (2p - 1) / sqrt(2 p (1 - p))
    for xs, q in (([1.0, 3.0], math.tan(math.pi * 0.475)),
                  ([1.0, 2.0, 6.0], (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025))):
        m = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
        lo, hi = stats.t_interval(xs, 0.95)
        assert lo == pytest.approx(m - q * sd / math.sqrt(len(xs)), rel=1e-9)
        assert hi == pytest.approx(m + q * sd / math.sqrt(len(xs)), rel=1e-9)


def test_t_interval_agrees_with_scipys_own_ttest_confidence_interval():
    xs = [0.458, 1.950, 0.803, 0.573, 1.032]
    for level in (0.95, 0.99):
        ci = sps.ttest_1samp(xs, 0.0).confidence_interval(level)
        assert stats.t_interval(xs, level) == pytest.approx((ci.low, ci.high), rel=1e-12)


def test_p_value_matches_the_closed_form_for_two_degrees_of_freedom():
    xs = [0.5, 1.0, 2.5]
    n, m = 3, sum(xs) / 3
    t = m / (math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) / math.sqrt(n))
    assert stats.t_test_p(xs) == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t), rel=1e-9)
    assert stats.t_test_p([1.0]) is None  # one seed: no test


def test_pairing_decides_where_the_unpaired_test_says_nothing():
    # seeds move both arms together by far more than the 1-point gain between them
    base = [60.0, 65.0, 70.0, 62.0, 68.0]
    gain = [1.0, 1.2, 0.9, 1.1, 1.0]
    treated = [b + g for b, g in zip(base, gain)]
    assert sps.ttest_ind(treated, base).pvalue > 0.5
    diffs = stats.paired_differences(treated, base)
    assert diffs == pytest.approx(gain)
    assert stats.t_test_p(diffs) < 1e-4
    lo, hi = stats.t_interval(diffs)
    assert 0.8 < lo < 1.04 < hi < 1.3


def test_paired_differences_refuse_arms_with_different_seed_counts():
    with pytest.raises(ValueError, match="same seeds"):
        stats.paired_differences([1.0, 2.0], [1.0])


def test_holm_against_a_hand_computed_example_and_capped_at_one():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]
    assert stats.holm([0.02]) == [0.02]


def test_bonferroni_level_spreads_alpha_over_the_family():
    assert stats.bonferroni_level(0.95, 5) == pytest.approx(0.99)
    assert stats.bonferroni_level(0.95, 1) == pytest.approx(0.95)


def test_bootstrap_with_two_seeds_spans_the_two_values():
    # resampled means: x (1/4), (x+y)/2 (1/2), y (1/4): the 2.5th and 97.5th percentiles are x and y
    assert stats.bootstrap_interval([0.2, 1.4]) == pytest.approx((0.2, 1.4))


def test_bootstrap_matches_the_exact_resampling_distribution():
    xs = [0.1, 0.5, 0.9, 2.0]
    means = sorted(sum(c) / 4 for c in itertools.product(xs, repeat=4))  # all 256 equally likely resamples
    exact = (np.percentile(means, 2.5), np.percentile(means, 97.5))
    assert stats.bootstrap_interval(xs, n_resamples=40000) == pytest.approx(exact, abs=0.03)


# ---------------------------------------------------------------- verdict rules at their boundaries

def test_difference_verdict_boundaries():
    assert stats.difference_verdict(0.9, 0.0499, "higher") == "reproduced"
    assert stats.difference_verdict(-0.9, 0.0499, "higher") == "contradicted"
    assert stats.difference_verdict(-0.9, 0.0499, "lower") == "reproduced"
    assert stats.difference_verdict(0.9, 0.05, "higher") == "inconclusive"  # p = alpha does not reject
    assert stats.difference_verdict(0.9, None, "higher") == "inconclusive"  # one seed: no test


def test_value_verdict_boundaries():
    # NLL (lower is better), paper 78.01 +- 2
    assert stats.value_verdict(80.01, None, 78.01, 2.0, "lower") == "reproduced"  # exactly at the tolerance
    assert stats.value_verdict(80.02, None, 78.01, 2.0, "lower") == "contradicted"  # one seed, worse side
    assert stats.value_verdict(80.5, (79.0, 82.0), 78.01, 2.0, "lower") == "inconclusive"  # interval reaches in
    assert stats.value_verdict(75.0, (74.0, 76.0), 78.01, 2.0, "lower") == "inconclusive"  # better than the paper
    assert stats.value_verdict(0.90, (0.89, 0.905), 0.95, 0.01, "higher") == "contradicted"


def test_bound_verdict_boundaries():
    assert stats.bound_verdict([4, 5, 16], 4, "higher") == "reproduced"  # equal meets the bound
    assert stats.bound_verdict([3, 5], 4, "higher") == "inconclusive"
    assert stats.bound_verdict([3, 2], 4, "higher") == "contradicted"
    assert stats.bound_verdict([1.1], 1.10, "lower") == "reproduced"
    assert stats.bound_verdict([1.1435], 1.10, "lower") == "contradicted"
