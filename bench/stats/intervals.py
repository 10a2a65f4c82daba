"""Summary statistics of timing samples, with their confidence intervals.

Timing distributions are skewed (a few slow rounds when the machine is busy),
so every location is a median, every spread an IQR. The interval of a median
of one set of values is the percentile bootstrap (``bench.stats.bootstrap``,
the one bootstrap: it needs no normality), or above BOOTSTRAP_LIMIT values the
distribution-free one of order statistics; over several worker processes it
is a t interval of the processes' medians (``process_median_ci``). Paired
statistics (R, the derived backward time) are medians of per-round ratios or
differences.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.stats import bootstrap
from bench.stats.bootstrap import CONFIDENCE, FloatArray, Samples

# Above this many values the CI of a median is the distribution-free one of order
# statistics: the bootstrap would hold 2000 resamples of every value in memory.
BOOTSTRAP_LIMIT = 5000


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval (NaN bounds when too few samples)."""

    value: float
    low: float
    high: float
    level: float = CONFIDENCE

    def __contains__(self, x: float) -> bool:
        return self.low <= x <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low


def median(samples: Samples) -> float:
    """Median of the samples (NaN when empty)."""
    return float(np.median(samples)) if len(samples) else math.nan


def iqr(samples: Samples) -> float:
    """Interquartile range: the spread of the middle half of the samples."""
    if not len(samples):
        return math.nan
    q1, q3 = np.quantile(samples, [0.25, 0.75])
    return float(q3 - q1)


# A prior spread pooled from the run's other cases counts as at most this many
# degrees of freedom: the cases differ (small ones are noisier), so the own
# processes keep a say. Chosen from reruns on the 2-core VM (docs/measurements.md).
PRIOR_DF = 4


@dataclass(frozen=True)
class Spread:
    """The variance of one quantity between processes, on a relative scale, with its degrees of freedom.

    Relative: log values for positive quantities (times, ratios), values over
    the estimate's size otherwise, so that cases of different sizes pool.
    """

    variance: float
    df: int

    @staticmethod
    def pooled(spreads: Sequence[Spread]) -> Spread:
        """The variance the cases share, robust to a few odd ones, with their degrees of freedom together.

        The median of the cases' variances, each over the median of its
        sampling distribution (a variance with ``df`` degrees of freedom is
        sigma^2 chi^2(df) / df, whose median is below sigma^2): one case with a
        slow process then cannot widen every other case's interval, as it
        does through a mean (seen on the 2-core VM: one JAX process at R 1.7
        against 2.6 gave all of its run's JAX cases 17-26 % half-widths).
        """
        usable = [s for s in spreads if s.df > 0 and s.variance == s.variance]
        if not usable:
            return Spread(math.nan, 0)
        scaled = [s.variance * s.df / _chi2_median(s.df) for s in usable]
        return Spread(median(scaled), sum(s.df for s in usable))


@functools.cache
def _chi2_median(df: int) -> float:
    from scipy import stats as sps  # scipy is slow to import; only needed here

    return float(sps.chi2.median(df))


def process_values(groups: Sequence[Samples], log: bool = True) -> tuple[float, FloatArray, bool]:
    """The median of all values, each group's median on the relative scale ``Spread`` uses, and
    whether that scale is the log one (it is when asked and every median is positive).

    Empty groups are left out; NaN with no values.
    """
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not arrays:
        return math.nan, np.array([]), log
    value = median(np.concatenate(arrays))
    m = np.array([np.median(a) for a in arrays])
    if log and value > 0 and (m > 0).all():
        return value, np.log(m), True
    return value, (m / abs(value) if value else m), False


def spread(groups: Sequence[Samples], log: bool = True) -> Spread:
    """The between-process spread of the groups' medians (df 0 with fewer than two groups)."""
    _, x, _ = process_values(groups, log)
    return Spread(float(np.var(x, ddof=1)), len(x) - 1) if len(x) > 1 else Spread(math.nan, 0)


def process_median_ci(groups: Sequence[Samples], log: bool = True, prior: Spread | None = None
                      ) -> Interval:
    """Median of all values, with a 95% CI that holds the variation between processes.

    The groups are worker processes and the values their rounds. Much of a
    timing's variance is between processes and moments (this VM's host
    changes speed for seconds at a time), and rounds of one process cannot
    show it. With two or more groups the interval is a Student t interval over
    the groups' medians, as pyperf reports values from many processes; each
    process's median carries its own rounds' noise, so the interval holds both.

    Three processes give a variance with 2 degrees of freedom, and t(2) makes
    an interval 2.2 times as wide as the normal one. ``prior``, the spread
    pooled over the run's other cases of the same kind, lends up to
    ``PRIOR_DF`` more (the moderated variance of empirical Bayes, as limma
    does for few replicates). One group gives ``median_ci`` of its rounds,
    which covers that process only. Fewer than 3 values give NaN
    bounds. ``log``: the values are positive (times, ratios) and the interval
    is symmetric on a log scale, so it never reaches zero.
    """
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if len(arrays) < 2:
        return median_ci(arrays[0] if arrays else ())
    value, x, on_log = process_values(arrays, log)
    k, own = len(x), float(np.var(x, ddof=1))
    variance, df = own, k - 1
    if prior is not None and prior.df > 0 and prior.variance == prior.variance:
        d0 = min(prior.df, PRIOR_DF)
        variance, df = (d0 * prior.variance + (k - 1) * own) / (d0 + k - 1), d0 + k - 1
    from scipy import stats as sps  # scipy is slow to import; only needed here

    half = float(sps.t.ppf(0.5 + CONFIDENCE / 2, df)) * math.sqrt(variance / k)
    if on_log:
        return Interval(value, value * math.exp(-half), value * math.exp(half))
    scale = abs(value) if value else 1.0
    return Interval(value, value - half * scale, value + half * scale)


def median_ci(samples: Samples) -> Interval:
    """Median of the samples with a 95% confidence interval (``median_cis`` of one row).

    The percentile bootstrap, or above BOOTSTRAP_LIMIT samples the order
    statistics' interval; NaN bounds under 3 samples or with a NaN among them.
    """
    value, low, high = median_cis([samples])
    return Interval(float(value[0]), float(low[0]), float(high[0]))


def median_cis(samples: Sequence[object]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row: ``median_ci``, for many rows at once (``bench.stats.bootstrap.median_cis``, whose
    NaN rules it keeps), as arrays of the medians and the bounds."""
    rows = bootstrap.as_arrays(samples)
    large = {i: x for i, x in enumerate(rows) if len(x) > BOOTSTRAP_LIMIT}
    value, low, high = bootstrap.median_cis([x if i not in large else () for i, x in enumerate(rows)])
    for i, x in large.items():
        value[i] = median(x)
        low[i], high[i] = order_statistic_ci(x)
    return value, low, high


def order_statistic_ci(values: Samples) -> tuple[float, float]:
    """The distribution-free 95% CI of a median: the order statistics that the count of values
    below the median (binomial, n and 1/2) reaches with 2.5 % and 97.5 % probability.

    It needs no resamples, so it holds for any number of values; NaN bounds
    with a value that is not a finite number, as the bootstrap's.
    """
    from scipy import stats as sps  # scipy is slow to import; only needed here

    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n < bootstrap.MIN_CI or not np.isfinite(x).all():
        return math.nan, math.nan
    tail = (1 - CONFIDENCE) / 2
    j = int(sps.binom.ppf(tail, n, 0.5))  # x_(j) and x_(n-j+1), counted from 1
    return float(x[max(j - 1, 0)]), float(x[min(n - j, n - 1)])


def ratio_of_medians(num: Samples, den: Samples) -> Interval:
    """median(num) / median(den) for two independent samples, with a bootstrap 95% CI.

    Unlike ``paired_ratio`` the samples come from different runs, so each side
    is resampled on its own (``bench.stats.bootstrap.ratio_of_medians`` of one row).
    """
    value, low, high = bootstrap.ratio_of_medians([num], [den])
    return Interval(float(value[0]), float(low[0]), float(high[0]))


def paired_ratio(num: Samples, den: Samples, sizes: Sequence[int] = (),
                 prior: Spread | None = None) -> Interval:
    """The median over rounds of ``num[i] / den[i]``, with a bootstrap 95% CI.

    ``num[i]`` and ``den[i]`` were measured in the same round, so a slowdown
    of the machine that hits the round hits both and cancels in their ratio.
    Taking the median of the per-round ratios keeps that cancellation; a ratio
    of the two medians would divide numbers from different rounds. ``sizes``
    (rounds per process, in order) and ``prior`` make it an interval over
    processes (``process_median_ci``).
    """
    a, b = _paired(num, den)
    return process_median_ci(split(a / b, sizes), prior=prior)


def paired_difference(num: Samples, den: Samples, sizes: Sequence[int] = (),
                      prior: Spread | None = None) -> Interval:
    """The median over rounds of ``num[i] - den[i]``, with a 95% CI (see ``paired_ratio``)."""
    a, b = _paired(num, den)
    return process_median_ci(split(a - b, sizes), log=False, prior=prior)


def split(values: Samples, sizes: Sequence[int]) -> list[FloatArray]:
    """``values`` cut into consecutive groups of ``sizes`` (one group when ``sizes`` is empty)."""
    x = np.asarray(values, dtype=float)
    if not len(sizes):
        return [x]
    if sum(sizes) != len(x):
        raise ValueError(f"group sizes {list(sizes)} do not add up to {len(x)} values")
    return np.split(x, np.cumsum(sizes)[:-1])


def _paired(num: Samples, den: Samples) -> tuple[FloatArray, FloatArray]:
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} != {len(b)}")
    return a, b
