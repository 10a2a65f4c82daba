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


def _resampled_medians(groups: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Medians of ``N_RESAMPLES`` hierarchical resamples of ``groups``.

    Each resample draws as many groups as there are, with replacement, then
    inside each drawn group as many values as it has, with replacement, and
    pools them. With one group this is the ordinary bootstrap of its values.
    """
    sizes = np.array([len(g) for g in groups])
    flat = np.concatenate(groups)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    k, widest = len(groups), int(sizes.max())
    chosen = rng.integers(0, k, size=(N_RESAMPLES, k)) if k > 1 else np.zeros((N_RESAMPLES, 1), int)
    n = sizes[chosen][..., None]  # (resamples, k, 1): size of each drawn group
    picks = offsets[chosen][..., None] + np.floor(rng.random((N_RESAMPLES, k, widest)) * n).astype(int)
    values = flat[np.minimum(picks, len(flat) - 1)]
    # Slots past a drawn group's own size are padding: they do not vote.
    values = np.where(np.arange(widest) < n, values, np.nan).reshape(N_RESAMPLES, -1)
    return np.nanmedian(values, axis=1)


def _interval(value: float, resampled: np.ndarray) -> Interval:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return Interval(value, float(low), float(high))


def hierarchical_median_ci(groups: Sequence[Sequence[float]], log: bool = True) -> Interval:
    """Median of all values, with a 95% CI that resamples groups, then values within them.

    The groups are worker processes and the values their rounds: much of a
    timing's variance is between processes (memory layout, thread placement,
    the machine's state when each ran), which rounds of one process cannot
    show. Resampling processes first puts that variance into the interval, as
    pyperf does by spreading a benchmark over many processes. Fewer than 3
    values in all gives NaN bounds. ``log``: the values are positive (times,
    ratios), so the small-sample widening works on a log scale; a difference
    passes False.
    """
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not arrays:
        return Interval(math.nan, math.nan, math.nan)
    value = median(np.concatenate(arrays))
    if sum(len(a) for a in arrays) < 3:
        return Interval(value, math.nan, math.nan)
    ci = _interval(value, _resampled_medians(arrays, np.random.default_rng(SEED)))
    f = small_sample_factor(len(arrays))
    if f == 1.0:
        return ci
    if log and ci.low > 0:
        # Times and ratios are positive and skewed: widen on a log scale, so
        # that a wide interval never reaches zero or below.
        return Interval(value, value * (ci.low / value) ** f, value * (ci.high / value) ** f)
    return Interval(value, value - f * (value - ci.low), value + f * (ci.high - value))


def small_sample_factor(groups: int) -> float:
    """How much wider a bootstrap interval over few groups must be to hold its level.

    Resampling k groups sees only (k - 1)/k of their variance, and with few
    groups the spread of their median is itself uncertain (Student's t, not
    the normal). Measured coverage of the true median by the plain percentile
    interval: 52 % with 2 processes, 75 % with 3, 84 % with 4, 92 % with 6
    (tests/test_stats.py simulates it). The factor t(k-1) / z * sqrt(k / (k-1))
    corrects both; one group gets none (its between-process spread is unknown).
    """
    if groups < 2:
        return 1.0
    from scipy import stats as sps  # scipy is slow to import; only needed here

    z = sps.norm.ppf(0.5 + CONFIDENCE / 2)
    return float(sps.t.ppf(0.5 + CONFIDENCE / 2, groups - 1) / z * math.sqrt(groups / (groups - 1)))


def median_ci(samples: Sequence[float]) -> Interval:
    """Median of the samples with a bootstrap 95% confidence interval."""
    return hierarchical_median_ci([samples])


def ratio_of_medians(num: Sequence[float], den: Sequence[float]) -> Interval:
    """median(num) / median(den) for two independent samples, with a bootstrap 95% CI.

    Unlike ``paired_ratio`` the samples come from different runs, so each side
    is resampled on its own.
    """
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    value = median(a) / median(b) if len(a) and len(b) else math.nan
    if min(len(a), len(b)) < 3:
        return Interval(value, math.nan, math.nan)
    rng = np.random.default_rng(SEED)
    return _interval(value, _resampled_medians([a], rng) / _resampled_medians([b], rng))


def paired_ratio(num: Sequence[float], den: Sequence[float], sizes: Sequence[int] = ()) -> Interval:
    """The median over rounds of ``num[i] / den[i]``, with a bootstrap 95% CI.

    ``num[i]`` and ``den[i]`` were measured in the same round, so a slowdown
    of the machine that hits the round hits both and cancels in their ratio.
    Taking the median of the per-round ratios keeps that cancellation; a ratio
    of the two medians would divide numbers from different rounds. ``sizes``
    (rounds per process, in order) makes the interval hierarchical.
    """
    a, b = _paired(num, den)
    return hierarchical_median_ci(split(a / b, sizes))


def paired_difference(num: Sequence[float], den: Sequence[float], sizes: Sequence[int] = ()) -> Interval:
    """The median over rounds of ``num[i] - den[i]``, with a bootstrap 95% CI (see ``paired_ratio``)."""
    a, b = _paired(num, den)
    return hierarchical_median_ci(split(a - b, sizes), log=False)


def split(values: Sequence[float], sizes: Sequence[int]) -> list[np.ndarray]:
    """``values`` cut into consecutive groups of ``sizes`` (one group when ``sizes`` is empty)."""
    x = np.asarray(values, dtype=float)
    if not len(sizes):
        return [x]
    if sum(sizes) != len(x):
        raise ValueError(f"group sizes {list(sizes)} do not add up to {len(x)} values")
    return np.split(x, np.cumsum(sizes)[:-1])


def _paired(num: Sequence[float], den: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} != {len(b)}")
    return a, b
