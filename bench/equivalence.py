"""The check every case passes before it is timed: same loss, same gradients."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def relative_error(
    loss: float,
    grads: Sequence[np.ndarray],
    ref_loss: float,
    ref_grads: Sequence[np.ndarray],
) -> float:
    """Largest relative error over the loss and each gradient array.

    Each array is compared as ``max|x - ref| / max|ref|``: relative to the
    array's scale, so tiny entries (near-zero gradients) cannot blow it up.
    A shape mismatch or a missing gradient is an infinite error; NaN is NaN.
    """
    if len(grads) != len(ref_grads):
        return float("inf")
    errors = [abs(loss - ref_loss) / max(abs(ref_loss), np.finfo(np.float64).tiny)]
    for g, r in zip(grads, ref_grads, strict=True):
        g, r = np.asarray(g, dtype=np.float64), np.asarray(r, dtype=np.float64)
        if g.shape != r.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(r))), np.finfo(np.float64).tiny) if r.size else 1.0
        errors.append(float(np.max(np.abs(g - r))) / scale if r.size else 0.0)
    if any(np.isnan(errors)):
        return float("nan")
    return max(errors)
