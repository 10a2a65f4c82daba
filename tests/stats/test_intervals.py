"""Medians, IQRs and bootstrap intervals of timing samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats import bootstrap, intervals
from bench.stats.intervals import Interval, iqr, median, median_ci, paired_difference, paired_ratio


def test_median_odd_even_and_empty():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([1.0, 2.0, 100.0]) == 2.0  # an outlier does not move it
    assert math.isnan(median([]))


def test_iqr_known_values():
    # Quartiles of 1..5 by linear interpolation are 2 and 4.
    assert iqr([5.0, 1.0, 4.0, 2.0, 3.0]) == 2.0
    # Quartiles of 1..9 are 3 and 7, whatever the extremes do.
    assert iqr([1, 2, 3, 4, 5, 6, 7, 8, 9]) == 4.0
    assert iqr([-1000, 2, 3, 4, 5, 6, 7, 8, 1000]) == 4.0
    assert iqr([7.0, 7.0, 7.0]) == 0.0
    assert math.isnan(iqr([]))


def test_interval_contains_and_width():
    i = Interval(2.0, 1.0, 3.5)
    assert 1.0 in i and 3.5 in i and 2.0 in i
    assert 0.99 not in i and 3.51 not in i
    assert i.width == 2.5
    assert i.level == intervals.CONFIDENCE
    assert 1.0 not in Interval(1.0, math.nan, math.nan)


@pytest.mark.parametrize("seed", range(5))
def test_median_ci_contains_the_median(seed):
    x = np.random.default_rng(seed).lognormal(0.0, 0.5, size=25)
    ci = median_ci(x)
    assert ci.value == float(np.median(x))
    assert ci.low <= ci.value <= ci.high
    assert ci.low < ci.high
    # A percentile interval lies within the range of the data.
    assert x.min() <= ci.low and ci.high <= x.max()


def test_intervals_are_reproducible():
    # The bootstrap is seeded: the same samples always give the same interval.
    x = np.random.default_rng(1).lognormal(size=60)
    a, b = median_ci(x), median_ci(list(x))
    assert (a.low, a.high) == (b.low, b.high)
    num, den, _ = drifting_rounds(4)
    assert paired_ratio(num, den) == paired_ratio(list(num), list(den))
    assert paired_difference(num, den) == paired_difference(num.copy(), den.copy())


@pytest.mark.parametrize("samples", [[], [1.0], [1.0, 2.0]])
def test_median_ci_needs_three_samples(samples):
    ci = median_ci(samples)
    assert math.isnan(ci.low) and math.isnan(ci.high)
    if samples:
        assert ci.value == float(np.median(samples))
    else:
        assert math.isnan(ci.value)


def test_median_ci_of_identical_samples_has_zero_width():
    ci = median_ci([0.25] * 10)
    assert (ci.value, ci.low, ci.high) == (0.25, 0.25, 0.25)
    assert ci.width == 0.0


def test_median_ci_narrows_with_more_samples():
    rng = np.random.default_rng(3)
    small = median_ci(rng.lognormal(0.0, 0.5, size=10))
    large = median_ci(rng.lognormal(0.0, 0.5, size=400))
    assert large.width < small.width / 2


def test_paired_ratio_is_the_median_of_per_round_ratios():
    # Per-round ratios 0.1, 10, 0.1: median 0.1; the ratio of medians would be 1.
    r = paired_ratio([1.0, 10.0, 100.0], [10.0, 1.0, 1000.0])
    assert r.value == pytest.approx(0.1)
    exact = paired_ratio([2.0, 4.0, 6.0, 8.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert exact.value == 2.0
    # Every round's ratio is 2, so every resample's median is 2: the interval is the point.
    assert exact.low == pytest.approx(2.0) and exact.high == pytest.approx(2.0)
    # Over 63 rounds the interval stays at the median of ratios (0.1), away from 1.
    many = paired_ratio([1.0, 10.0, 100.0] * 21, [10.0, 1.0, 1000.0] * 21)
    assert many.value == pytest.approx(0.1)
    assert many.low <= 0.1 + 1e-12 and many.high < 1.0


def test_paired_difference_is_the_median_of_per_round_differences():
    # Per-round differences -2, 2, 5: median 2; the difference of medians would be -1.
    d = paired_difference([1.0, 2.0, 9.0], [3.0, 0.0, 4.0])
    assert d.value == 2.0
    shifted = paired_difference([3.0, 5.0, 4.0, 10.0], [1.0, 3.0, 2.0, 8.0])
    assert shifted.value == 2.0
    assert shifted.low == pytest.approx(2.0) and shifted.high == pytest.approx(2.0)
    # Over 63 rounds the interval stays about 2, away from the difference of medians -1.
    many = paired_difference([1.0, 2.0, 9.0] * 21, [3.0, 0.0, 4.0] * 21)
    assert many.value == 2.0
    assert many.low > -1.0 and many.low <= 2.0 <= many.high


@pytest.mark.parametrize("fn", [paired_ratio, paired_difference])
def test_paired_length_mismatch_raises(fn):
    with pytest.raises(ValueError, match="length"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize("fn", [paired_ratio, paired_difference])
def test_paired_with_too_few_rounds_has_nan_bounds(fn):
    iv = fn([2.0, 4.0], [1.0, 2.0])
    assert not math.isnan(iv.value)
    assert math.isnan(iv.low) and math.isnan(iv.high)
    assert math.isnan(fn([], []).value)


def drifting_rounds(seed: int, n: int = 30):
    """Rounds where the machine's speed drifts a lot and hits both phases alike.

    Round i's forward and gradient share a slowdown factor (lognormal, about
    30 % spread); each has its own 1 % noise on top. The true ratio is 3.
    """
    rng = np.random.default_rng(seed)
    drift = rng.lognormal(0.0, 0.3, size=n)
    den = 1.0 * drift * (1 + 0.01 * rng.standard_normal(n))
    num = 3.0 * drift * (1 + 0.01 * rng.standard_normal(n))
    return num, den, rng


@pytest.mark.parametrize("seed", range(3))
def test_paired_resampling_cancels_shared_drift(seed):
    num, den, rng = drifting_rounds(seed)
    paired = paired_ratio(num, den)
    broken = paired_ratio(num, rng.permutation(den))
    # Within a round the shared drift cancels: the estimate is 3 to about 1 % ...
    assert paired.value == pytest.approx(3.0, rel=0.02)
    assert 3.0 in paired
    # ... while ratios across rounds keep the 30 % drift, in the estimate and
    # in the interval.
    assert abs(broken.value - 3.0) > abs(paired.value - 3.0)
    assert paired.width < 0.25 * broken.width


@pytest.mark.parametrize("seed", range(3))
def test_paired_difference_cancels_shared_additive_drift(seed):
    # A shared additive slowdown (a background job stealing a fixed time per
    # round) cancels from the difference within a round, not across rounds.
    rng = np.random.default_rng(seed)
    n = 30
    drift = rng.exponential(1.0, size=n)
    num = 3.0 + drift + 0.01 * rng.standard_normal(n)
    den = 1.0 + drift + 0.01 * rng.standard_normal(n)
    paired = paired_difference(num, den)
    broken = paired_difference(num, rng.permutation(den))
    assert paired.value == pytest.approx(2.0, abs=0.02)
    assert 2.0 in paired
    assert abs(broken.value - 2.0) > abs(paired.value - 2.0)
    assert paired.width < 0.25 * broken.width


def test_median_ci_coverage_is_near_95_percent(monkeypatch):
    """Over many independent runs the 95% interval should hold the true median ~95% of the time."""
    monkeypatch.setattr(bootstrap, "N_RESAMPLES", 500)
    sigma, n, runs = 0.5, 25, 200
    true_median = 1.0  # of lognormal(mu=0, sigma): exp(mu)
    hits = 0
    for seed in range(runs):
        x = np.random.default_rng(1000 + seed).lognormal(0.0, sigma, size=n)
        hits += true_median in median_ci(x)
    # Binomial(200, 0.95) has a standard deviation of about 3 hits (1.5 %).
    assert 0.90 * runs <= hits <= 0.99 * runs


# --- intervals over processes ------------------------------------------------------------------


def test_one_process_is_the_ordinary_bootstrap():
    x = np.random.default_rng(1).lognormal(size=25)
    assert intervals.process_median_ci([x]) == median_ci(x)
    assert intervals.process_median_ci([x, []]) == median_ci(x)  # an empty process adds nothing


def test_processes_that_disagree_widen_the_interval_to_cover_them():
    rng = np.random.default_rng(2)
    # Three processes whose medians differ by 10 %, each with tight rounds.
    groups = [m * (1 + 0.005 * rng.standard_normal(20)) for m in (1.0, 1.1, 0.95)]
    flat = median_ci(np.concatenate(groups))
    nested = intervals.process_median_ci(groups)
    assert nested.value == flat.value
    assert nested.width > 3 * flat.width
    assert nested.low <= 0.96 and nested.high >= 1.09


def test_the_interval_over_processes_is_a_t_interval_of_their_log_medians():
    groups = [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [4.0, 4.0, 4.0]]
    ci = intervals.process_median_ci(groups)
    # log medians 0, log 2, log 4: standard deviation log 2; t(2) = 4.303.
    half = 4.302653 * math.log(2) / math.sqrt(3)
    assert ci.value == 2.0
    assert ci.low == pytest.approx(2.0 * math.exp(-half), rel=1e-5)
    assert ci.high == pytest.approx(2.0 * math.exp(half), rel=1e-5)
    assert ci.low > 0  # symmetric on a log scale: never at or below zero


def simulated_run(rng, cases: int = 6, k: int = 3, between: float = 0.05, within: float = 0.02):
    """One run: ``cases`` cases of true median 1, each in ``k`` processes with a process effect."""
    return [[np.exp(between * rng.standard_normal()) * np.exp(within * rng.standard_normal(15))
             for _ in range(k)] for _ in range(cases)]


def coverage(intervals) -> float:
    return float(np.mean([1.0 in ci for ci in intervals]))


def test_the_own_variance_interval_holds_its_level_and_the_flat_one_does_not():
    rng = np.random.default_rng(3)
    own, flat = [], []
    for _ in range(60):
        for groups in simulated_run(rng):
            own.append(intervals.process_median_ci(groups))
            flat.append(median_ci(np.concatenate(groups)))
    assert coverage(flat) < 0.6  # rounds of the same processes cannot show the process effect
    assert 0.9 <= coverage(own) <= 0.99


def test_a_pooled_prior_keeps_the_level_and_narrows_the_interval():
    rng = np.random.default_rng(4)
    own, pooled = [], []
    for _ in range(60):
        run = simulated_run(rng)
        prior = intervals.Spread.pooled([intervals.spread(g) for g in run])
        assert prior.df == 12
        for groups in run:
            own.append(intervals.process_median_ci(groups))
            pooled.append(intervals.process_median_ci(groups, prior=prior))
    assert 0.9 <= coverage(pooled) <= 0.99
    # t(2) against t(10): the pooled intervals are about half as wide.
    assert np.median([c.width for c in pooled]) < 0.7 * np.median([c.width for c in own])


def test_the_prior_lends_at_most_prior_df_degrees_of_freedom():
    tight = [[1.0] * 5, [1.01] * 5, [0.99] * 5]
    wide_prior = intervals.Spread(variance=0.25, df=1000)
    capped = intervals.process_median_ci(tight, prior=wide_prior)
    # With the cap the own (tiny) variance keeps 2 of 10 shares.
    own = float(np.var(np.log([1.0, 1.01, 0.99]), ddof=1))
    d0 = intervals.PRIOR_DF
    variance = (d0 * 0.25 + 2 * own) / (d0 + 2)
    from scipy import stats as sps
    half = sps.t.ppf(0.975, d0 + 2) * math.sqrt(variance / 3)
    assert capped.high == pytest.approx(1.0 * math.exp(half), rel=1e-6)


def test_spread_pooling_is_a_median_of_scaled_variances_and_skips_single_processes():
    from scipy import stats as sps

    # Each variance over its sampling distribution's median: with 2 df that is
    # 2 / chi2(2).median = 1 / ln 2.
    scaled = [v * 2 / sps.chi2.median(2) for v in (0.01, 0.012, 0.011, 0.5)]
    pooled = intervals.Spread.pooled([intervals.Spread(v, 2) for v in (0.01, 0.012, 0.011, 0.5)])
    assert pooled == intervals.Spread(pytest.approx(float(np.median(scaled))), 8)
    # One odd case moves a mean 10x, the median not at all beyond its rank.
    assert pooled.variance < 0.02
    one = intervals.Spread.pooled([intervals.Spread(0.01, 2)])
    assert one.variance == pytest.approx(0.02 / sps.chi2.median(2))
    assert intervals.spread([[1.0, 2.0]]).df == 0
    assert intervals.Spread.pooled([intervals.spread([[1.0]])]).df == 0


def test_paired_statistics_take_rounds_per_process():
    num = [2.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    den = [1.0] * 6
    flat = paired_ratio(num, den)
    nested = paired_ratio(num, den, sizes=(3, 3))
    assert flat.value == nested.value == 2.5
    # The two processes' values, a t(1) interval on a log scale (a ratio is
    # positive: its interval never reaches zero).
    half = 12.7062 * abs(math.log(3.0) - math.log(2.0)) / math.sqrt(2) / math.sqrt(2)
    assert nested.low == pytest.approx(2.5 * math.exp(-half), rel=1e-4)
    assert nested.low > 0
    # A difference can be negative: its interval is linear, relative to its size.
    d = paired_difference(num, den, sizes=(3, 3))
    assert d.value == 1.5
    assert d.low == pytest.approx(1.5 - 12.7062 * 1.0 / math.sqrt(2) / math.sqrt(2), rel=1e-4) and d.low < 0
    with pytest.raises(ValueError, match="do not add up"):
        paired_ratio(num, den, sizes=(3, 2))
