"""The check every case passes before it is timed: same loss, same gradients."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_TINY = np.finfo(np.float64).tiny


def relative_error(
    loss: float,
    grads: Sequence[np.ndarray],
    ref_loss: float,
    ref_grads: Sequence[np.ndarray],
) -> float:
    """The larger of the loss's relative error and the gradient's.

    The gradient is compared as one vector over all parameters, in the max
    norm: ``max|g - ref| / max|ref|``. Comparing each array on its own scale
    would be fragile: an output bias gradient is a sum over the batch that
    can nearly cancel, and float32 round-off relative to a near-zero sum
    looks large although the model is right.

    A shape mismatch or a missing gradient is an infinite error; NaN is NaN.
    """
    if len(grads) != len(ref_grads):
        return float("inf")
    loss_error = abs(loss - ref_loss) / max(abs(ref_loss), _TINY)
    worst_diff, scale = 0.0, 0.0
    for g, r in zip(grads, ref_grads, strict=True):
        g, r = np.asarray(g, dtype=np.float64), np.asarray(r, dtype=np.float64)
        if g.shape != r.shape:
            return float("inf")
        if r.size:
            diff = float(np.max(np.abs(g - r)))
            if np.isnan(diff):  # max() below would silently drop a NaN
                return float("nan")
            worst_diff = max(worst_diff, diff)
            scale = max(scale, float(np.max(np.abs(r))))
    if np.isnan(loss_error):
        return float("nan")
    return max(loss_error, worst_diff / max(scale, _TINY) if worst_diff else 0.0)
