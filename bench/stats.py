"""Summary statistics of timing samples, with bootstrap confidence intervals.

Timing distributions are skewed (a few slow rounds when the machine is busy),
so every location is a median, every spread an IQR, and every interval a
percentile bootstrap: it needs no normality. Paired statistics (R, the derived
backward time) are medians of per-round ratios or differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 2000
# Fixed so that the same samples always give the same interval.
SEED = 20261125


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


def median(samples: Sequence[float]) -> float:
    """Median of the samples (NaN when empty)."""
    return float(np.median(samples)) if len(samples) else math.nan


def iqr(samples: Sequence[float]) -> float:
    """Interquartile range: the spread of the middle half of the samples."""
    if not len(samples):
        return math.nan
    q1, q3 = np.percentile(samples, [25, 75])
    return float(q3 - q1)


def _bootstrap(data: tuple[np.ndarray, ...], statistic, value: float) -> Interval:
    from scipy import stats as sps  # scipy is slow to import; only needed here

    if min(len(d) for d in data) < 3:
        return Interval(value, math.nan, math.nan)
    res = sps.bootstrap(
        data,
        statistic,
        n_resamples=N_RESAMPLES,
        vectorized=True,
        confidence_level=CONFIDENCE,
        # BCa's jackknife is erratic for medians of small samples; the
        # percentile method is the robust choice here.
        method="percentile",
        rng=np.random.default_rng(SEED),
    )
    return Interval(value, float(res.confidence_interval.low), float(res.confidence_interval.high))


def median_ci(samples: Sequence[float]) -> Interval:
    """Median of the samples with a bootstrap 95% confidence interval."""
    x = np.asarray(samples, dtype=float)

    def stat(a: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(a, axis=axis)

    return _bootstrap((x,), stat, median(x))


def ratio_of_medians(num: Sequence[float], den: Sequence[float]) -> Interval:
    """median(num) / median(den) for two independent samples, with a bootstrap 95% CI.

    Unlike ``paired_ratio`` the samples come from different runs, so each side
    is resampled on its own.
    """
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)

    def stat(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(x, axis=axis) / np.median(y, axis=axis)

    value = median(a) / median(b) if len(a) and len(b) else math.nan
    return _bootstrap((a, b), stat, value)


def paired_ratio(num: Sequence[float], den: Sequence[float]) -> Interval:
    """The median over rounds of ``num[i] / den[i]``, with a bootstrap 95% CI.

    ``num[i]`` and ``den[i]`` were measured in the same round, so a slowdown
    of the machine that hits the round hits both and cancels in their ratio.
    Taking the median of the per-round ratios keeps that cancellation; a ratio
    of the two medians would divide numbers from different rounds.
    """
    a, b = _paired(num, den)
    return median_ci(a / b)


def paired_difference(num: Sequence[float], den: Sequence[float]) -> Interval:
    """The median over rounds of ``num[i] - den[i]``, with a bootstrap 95% CI."""
    a, b = _paired(num, den)
    return median_ci(a - b)


def _paired(num: Sequence[float], den: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} != {len(b)}")
    return a, b
