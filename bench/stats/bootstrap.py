"""The one bootstrap: percentile confidence intervals of medians, for many rows of samples at once.

``bench compare`` calls every matching case of two runs, 100,000 or more at
fleet scale; a Python loop with one bootstrap per row takes a quarter of an
hour there. Here rows with the same number of samples are stacked into one
2-D array and each statistic is one NumPy operation over it. One row is the
same call with one row (``bench.stats.intervals.median_ci``).

The bootstrap is the percentile bootstrap (N_RESAMPLES resamples, a fixed
seed), computed on each row's samples sorted: a resample's median is then
the mean of two order statistics of the row, picked by the sorted draws, so
one gather per row replaces a sort of every resample. Drawing positions in
the sorted samples instead of positions in round order is the same
resampling distribution: the samples are treated as exchangeable either way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

# The arrays of this package: samples and statistics (float64), row indices (intp).
FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
# Samples as a caller holds them: a sequence of floats or a float array.
Samples = Sequence[float] | FloatArray

CONFIDENCE = 0.95
N_RESAMPLES = 2000
# Fixed so that the same samples always give the same interval.
SEED = 20261125
# Rows per chunk: chunk x N_RESAMPLES medians of float64 stay near 64 MB.
CHUNK = 4000
# Fewer samples on a side than this admit no interval (NaN bounds).
MIN_CI = 3


def as_arrays(values: Sequence[object]) -> list[FloatArray]:
    """Each row's samples as a float array (None and empty rows as empty arrays)."""
    return [np.asarray(v if v is not None else (), dtype=float) for v in values]


def by_lengths(*sides: list[FloatArray]) -> dict[tuple[int, ...], IndexArray]:
    """Row indices grouped by the sample counts of every side: the rows that stack together."""
    lengths = np.array([[len(x) for x in side] for side in sides], dtype=np.intp).T.reshape(-1, len(sides))
    out: dict[tuple[int, ...], list[int]] = {}
    for i, key in enumerate(map(tuple, lengths)):
        out.setdefault(key, []).append(i)
    return {k: np.asarray(v, dtype=np.intp) for k, v in out.items()}


def stack(side: list[FloatArray], rows: IndexArray, n: int) -> FloatArray:
    """The rows ``rows`` of ``side``, each of ``n`` samples, as one (rows, n) array."""
    return np.vstack([side[i] for i in rows]) if n else np.empty((len(rows), 0))


@lru_cache(maxsize=64)
def _median_picks(sizes: tuple[int, ...], resamples: int, seed: int
                  ) -> tuple[tuple[IndexArray, IndexArray], ...]:
    """For each size in ``sizes``, drawn in this order from one generator seeded with ``seed``:
    the two positions (in the sorted samples) whose mean is each resample's median.

    Keyed by the resample count and seed too, so that a changed N_RESAMPLES never reads stale picks.
    """
    rng = np.random.default_rng(seed)
    out: list[tuple[IndexArray, IndexArray]] = []
    for n in sizes:
        draws = np.floor(rng.random((resamples, 1, n)) * n).astype(np.intp).reshape(-1, n)
        draws.sort(axis=1)
        out.append((draws[:, (n - 1) // 2], draws[:, n // 2]))
    return tuple(out)


def _picks(*sizes: int) -> tuple[tuple[IndexArray, IndexArray], ...]:
    return _median_picks(tuple(sizes), N_RESAMPLES, SEED)


def _resampled(sorted_rows: FloatArray, picks: tuple[IndexArray, IndexArray]) -> FloatArray:
    """Each row's resampled medians: the mean of the two picked order statistics."""
    lo, hi = picks
    # np.take along the columns: a tenth of the time of fancy indexing (x[:, lo]) here. Halves
    # before the sum: two values near the float maximum must not add up to infinity.
    return np.take(sorted_rows, lo, axis=1) * 0.5 + np.take(sorted_rows, hi, axis=1) * 0.5


def _percentiles(resampled: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The percentile interval of each row's resampled statistic."""
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail], axis=1)
    return low, high


def _medians(x: FloatArray) -> FloatArray:
    if not x.shape[1]:
        return np.full(len(x), math.nan)
    medians: FloatArray = np.median(x, axis=1)  # numpy types a median along an axis as Any
    return medians


def _finite(x: FloatArray) -> npt.NDArray[np.bool_]:
    """Rows whose samples are all numbers: a NaN (or an infinity) admits no interval."""
    finite: npt.NDArray[np.bool_] = np.all(np.isfinite(x), axis=1)  # numpy types it Any along an axis
    return finite


def median_cis(samples: Sequence[object]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row: the median of its samples with a 95% bootstrap CI.

    The bounds are NaN for a row with fewer than MIN_CI samples or with a
    sample that is not a finite number (the rows are validated times: a NaN
    among them is a broken row, whose median says nothing either).
    """
    side = as_arrays(samples)
    value, low, high = (np.full(len(side), math.nan) for _ in range(3))
    for (n,), rows in by_lengths(side).items():
        x = stack(side, rows, n)
        value[rows] = _medians(x)
        if n < MIN_CI:
            continue
        good = _finite(x)
        x, rows = x[good], rows[good]
        (picks,) = _picks(n)
        for start in range(0, len(rows), CHUNK):
            part = slice(start, start + CHUNK)
            low[rows[part]], high[rows[part]] = _percentiles(_resampled(np.sort(x[part], axis=1), picks))
    return value, low, high


def ratio_of_medians(num: Sequence[object], den: Sequence[object]
                     ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row: median(num) / median(den), two independent samples, each side resampled on its own,
    with a 95% bootstrap CI (NaN bounds as ``median_cis`` gives them, on either side)."""
    a, b = as_arrays(num), as_arrays(den)
    value, low, high = (np.full(len(a), math.nan) for _ in range(3))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for (na, nb), rows in by_lengths(a, b).items():
            x, y = stack(a, rows, na), stack(b, rows, nb)
            value[rows] = _medians(x) / _medians(y)
            if min(na, nb) < MIN_CI:
                continue
            good = _finite(x) & _finite(y)
            x, y, rows = x[good], y[good], rows[good]
            pa, pb = _picks(na, nb)
            for start in range(0, len(rows), CHUNK):
                part = slice(start, start + CHUNK)
                r = _resampled(np.sort(x[part], axis=1), pa) / _resampled(np.sort(y[part], axis=1), pb)
                low[rows[part]], high[rows[part]] = _percentiles(r)
    return value, low, high
