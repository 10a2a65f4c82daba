"""Whether two sets of samples differ: the Mann-Whitney U test, over many rows at once.

``bench compare`` tests every matching case of two runs (100,000 or more at
fleet scale); rows with the same numbers of samples are stacked
(``bench.stats.bootstrap.by_lengths``) and tested in one call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bench.stats.bootstrap import FloatArray, as_arrays, by_lengths, stack

# scipy's exact Mann-Whitney test is used when a side has at most this many samples;
# above, its normal approximation with the tie correction, which is vectorised here.
EXACT_MWU = 8


def mannwhitney_p(base: Sequence[object], new: Sequence[object]) -> FloatArray:
    """Per row: the two-sided Mann-Whitney U p-value of the two samples (NaN where a side is empty).

    Each p-value is the one ``scipy.stats.mannwhitneyu`` gives for that row alone:
    with more than EXACT_MWU samples on both sides scipy uses the normal
    approximation with a per-row tie correction, which it vectorises over rows;
    smaller rows (where scipy may choose the exact test) are tested one by one.
    """
    from scipy import stats as sps

    a, b = as_arrays(base), as_arrays(new)
    p = np.full(len(a), math.nan)
    for (na, nb), rows in by_lengths(a, b).items():
        if not na or not nb:
            continue
        x, y = stack(a, rows, na), stack(b, rows, nb)
        finite = ~(np.isnan(x).any(axis=1) | np.isnan(y).any(axis=1))
        if na > EXACT_MWU and nb > EXACT_MWU:
            if finite.any():
                p[rows[finite]] = sps.mannwhitneyu(x[finite], y[finite], alternative="two-sided",
                                                   axis=1).pvalue
            continue
        for i in rows[finite]:
            p[i] = float(sps.mannwhitneyu(a[i], b[i], alternative="two-sided").pvalue)
    return p
