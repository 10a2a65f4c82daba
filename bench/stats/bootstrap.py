"""Statistics of many rows of samples at once: bootstrap CIs of medians and the Mann-Whitney U test.

``bench compare`` calls every matching case of two runs, 100,000 or more at
fleet scale; a Python loop with one bootstrap and one test per row takes a
quarter of an hour there. Here rows with the same number of samples are
stacked into one 2-D array and each statistic is one NumPy operation over it.

The bootstrap is the percentile bootstrap of ``bench.stats.intervals`` (2000 resamples,
the same seed and the same uniform draws), computed on each row's samples
sorted: a resample's median is then the mean of two order statistics of the
row, picked by the sorted draws, so one gather per row replaces a sort of
2000 resamples. Drawing positions in the sorted samples instead of positions
in round order is the same resampling distribution (the samples are treated
as exchangeable either way), so the intervals agree with ``bench.stats.intervals`` up to
Monte Carlo noise, not to the last digit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from bench.stats import intervals

# Rows per chunk: chunk x N_RESAMPLES medians of float64 stay near 64 MB.
CHUNK = 4000
# Fewer samples on a side than this admit no interval (NaN bounds), as in bench.stats.intervals.
MIN_CI = 3
# scipy's exact Mann-Whitney test is used when a side has at most this many samples;
# above, its normal approximation with the tie correction, which is vectorised here.
EXACT_MWU = 8


def as_arrays(values: Sequence[object]) -> list[np.ndarray]:
    """Each row's samples as a float array (None and empty rows as empty arrays)."""
    return [np.asarray(v if v is not None else (), dtype=float) for v in values]


@lru_cache(maxsize=64)
def _median_picks(sizes: tuple[int, ...]) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """For each size in ``sizes``, drawn in this order from one generator seeded as bench.stats.intervals:
    the two positions (in the sorted samples) whose mean is each resample's median."""
    rng = np.random.default_rng(intervals.SEED)
    out = []
    for n in sizes:
        draws = np.floor(rng.random((intervals.N_RESAMPLES, 1, n)) * n).astype(np.intp).reshape(-1, n)
        draws.sort(axis=1)
        out.append((draws[:, (n - 1) // 2], draws[:, n // 2]))
    return tuple(out)


def _groups(*sides: list[np.ndarray]) -> dict[tuple[int, ...], np.ndarray]:
    """Row indices grouped by the sample counts of every side."""
    lengths = np.array([[len(x) for x in side] for side in sides], dtype=np.intp).T.reshape(-1, len(sides))
    out: dict[tuple[int, ...], list[int]] = {}
    for i, key in enumerate(map(tuple, lengths)):
        out.setdefault(key, []).append(i)
    return {k: np.asarray(v, dtype=np.intp) for k, v in out.items()}


def _stack(side: list[np.ndarray], rows: np.ndarray, n: int) -> np.ndarray:
    return np.vstack([side[i] for i in rows]) if n else np.empty((len(rows), 0))


def _resampled(sorted_rows: np.ndarray, picks: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    lo, hi = picks
    # np.take along the columns: a tenth of the time of fancy indexing (x[:, lo]) here.
    return (np.take(sorted_rows, lo, axis=1) + np.take(sorted_rows, hi, axis=1)) / 2


def _percentiles(resampled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - intervals.CONFIDENCE) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail], axis=1)
    return low, high


def _medians(x: np.ndarray) -> np.ndarray:
    return np.median(x, axis=1) if x.shape[1] else np.full(len(x), math.nan)


def median_cis(samples: Sequence[object]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the median of its samples with a 95% bootstrap CI (NaN bounds under MIN_CI samples)."""
    side = as_arrays(samples)
    value, low, high = (np.full(len(side), math.nan) for _ in range(3))
    for (n,), rows in _groups(side).items():
        x = _stack(side, rows, n)
        value[rows] = _medians(x)
        if n < MIN_CI or not np.isfinite(x).all():
            if n >= MIN_CI:  # a NaN among the samples: the row's own bootstrap (bench.stats.intervals)
                for i in rows:
                    ci = intervals.median_ci(side[i])
                    low[i], high[i] = ci.low, ci.high
            continue
        (picks,) = _median_picks((n,))
        for start in range(0, len(rows), CHUNK):
            part = slice(start, start + CHUNK)
            low[rows[part]], high[rows[part]] = _percentiles(_resampled(np.sort(x[part], axis=1), picks))
    return value, low, high


def ratio_of_medians(num: Sequence[object], den: Sequence[object]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: median(num) / median(den), two independent samples, with a 95% bootstrap CI."""
    a, b = as_arrays(num), as_arrays(den)
    value, low, high = (np.full(len(a), math.nan) for _ in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        for (na, nb), rows in _groups(a, b).items():
            x, y = _stack(a, rows, na), _stack(b, rows, nb)
            value[rows] = _medians(x) / _medians(y)
            if min(na, nb) < MIN_CI:
                continue
            finite = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
            for i in rows[~finite]:  # a NaN among the samples: the row's own bootstrap (bench.stats.intervals)
                ci = intervals.ratio_of_medians(a[i], b[i])
                low[i], high[i] = ci.low, ci.high
            good = rows[finite]
            x, y = x[finite], y[finite]
            pa, pb = _median_picks((na, nb))
            for start in range(0, len(good), CHUNK):
                part = slice(start, start + CHUNK)
                r = _resampled(np.sort(x[part], axis=1), pa) / _resampled(np.sort(y[part], axis=1), pb)
                low[good[part]], high[good[part]] = _percentiles(r)
    return value, low, high


def mannwhitney_p(base: Sequence[object], new: Sequence[object]) -> np.ndarray:
    """Per row: the two-sided Mann-Whitney U p-value of the two samples (NaN where a side is empty).

    Each p-value is the one ``scipy.stats.mannwhitneyu`` gives for that row alone:
    with more than EXACT_MWU samples on both sides scipy uses the normal
    approximation with a per-row tie correction, which it vectorises over rows;
    smaller rows (where scipy may choose the exact test) are tested one by one.
    """
    from scipy import stats as sps

    a, b = as_arrays(base), as_arrays(new)
    p = np.full(len(a), math.nan)
    for (na, nb), rows in _groups(a, b).items():
        if not na or not nb:
            continue
        x, y = _stack(a, rows, na), _stack(b, rows, nb)
        finite = ~(np.isnan(x).any(axis=1) | np.isnan(y).any(axis=1))
        if na > EXACT_MWU and nb > EXACT_MWU:
            if finite.any():
                p[rows[finite]] = sps.mannwhitneyu(x[finite], y[finite], alternative="two-sided",
                                                   axis=1).pvalue
            continue
        for i in rows[finite]:
            p[i] = float(sps.mannwhitneyu(a[i], b[i], alternative="two-sided").pvalue)
    return p
