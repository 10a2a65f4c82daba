"""MLP regression on random data: the seed's example, in three frameworks.

A multilayer perceptron with ``depth`` hidden tanh layers of ``width`` units
regresses random targets from random inputs with a mean squared error loss
(a network "memorising" noise). Inputs have ``width`` features, so every
hidden layer is a square ``width x width`` matrix product and the FLOP
theory R = 3 - 1/L applies (up to the small output layer).
"""

from __future__ import annotations

import itertools

import numpy as np

from bench import Flops, Memory, Problem

DESCRIPTION = "MLP (tanh hidden layers, MSE loss) regressing random targets"
# Sweeps around a centre (batch 256, width 256, depth 2), one parameter at a
# time: how R moves with the batch (from latency-bound to compute-bound), the
# width (FLOPs grow as width²) and the depth (theory 3 - 1/L rises to 3).
CENTRE = {"batch": 256, "width": 256, "depth": 2}
GRID = (
    [{**CENTRE, "batch": b} for b in (1, 4, 16, 64, 256, 1024, 4096)]
    + [{**CENTRE, "width": w} for w in (32, 64, 128, 512, 1024, 2048)]
    + [{**CENTRE, "depth": d} for d in (1, 4, 8)]
)
QUICK = [
    {"batch": 64, "width": 128, "depth": 2},
    {"batch": 256, "width": 256, "depth": 3},
    {"batch": 1024, "width": 512, "depth": 2},
]
# Largest relative error of loss and gradients against the float64
# reference. float32 round-off (eps 1.2e-7) grows with depth and width; on
# this grid it measures 3e-7 to 8e-7, so 1e-5 leaves room and still catches
# a wrong model (a 0.1 % error fails).
TOLERANCE = 1e-5


def _dims(p: dict) -> list[int]:
    return [p["width"]] * (p["depth"] + 1) + [1]


def problem(p: dict, seed: int) -> Problem:
    """Inputs and targets ~ N(0, 1); LeCun-normal weights, small random biases."""
    rng = np.random.default_rng(seed)
    dims = _dims(p)
    X = rng.standard_normal((p["batch"], dims[0]))
    y = rng.standard_normal((p["batch"], 1))
    params, names = [], []
    for i, (m, n) in enumerate(itertools.pairwise(dims)):
        params += [rng.standard_normal((m, n)) / np.sqrt(m), 0.1 * rng.standard_normal(n)]
        names += [f"W{i}", f"b{i}"]
    as32 = [a.astype(np.float32) for a in (X, y, *params)]
    return Problem(as32[0], as32[1], tuple(as32[2:]), tuple(names))


def reference(prob: Problem) -> tuple[float, list[np.ndarray]]:
    """Loss and gradients in float64, backpropagation written out by hand."""
    X, y = prob.X.astype(np.float64), prob.y.astype(np.float64)
    Ws = [w.astype(np.float64) for w in prob.params[0::2]]
    bs = [b.astype(np.float64) for b in prob.params[1::2]]
    hs = [X]
    for W, b in zip(Ws[:-1], bs[:-1], strict=True):
        hs.append(np.tanh(hs[-1] @ W + b))
    r = hs[-1] @ Ws[-1] + bs[-1] - y
    loss = float(np.mean(r**2))

    d = 2.0 * r / r.size  # dloss/dout
    grads: list[np.ndarray] = []
    for i in reversed(range(len(Ws))):
        grads = [hs[i].T @ d, d.sum(axis=0), *grads]
        if i > 0:
            d = (d @ Ws[i].T) * (1.0 - hs[i] ** 2)  # through tanh
    return loss, grads


def flops(p: dict) -> Flops:
    """Matrix-product FLOPs (what dominates and what FLOP counters count).

    Forward: 2*B*m*n per layer. Gradient: the forward, plus dW = X^T dY
    (2*B*m*n) for every layer, plus dX = dY W^T (2*B*m*n) for every layer but
    the first, whose input needs no gradient.
    """
    B, dims = p["batch"], _dims(p)
    layers = [2 * B * m * n for m, n in itertools.pairwise(dims)]
    forward = sum(layers)
    return Flops(forward=forward, gradient=forward + sum(layers) + sum(layers[1:]))


def memory(p: dict) -> Memory:
    """Analytic bytes (float32) of what the backward pass keeps, and of each phase's peak.

    Saved: the backward pass needs each layer's input (X and the ``depth``
    tanh outputs, for dW and for tanh' = 1 - h²), every weight but the first
    (for dX; X needs no gradient, so W0 is not needed) and the residual of
    the loss.

    Peaks, in eager execution (one array per operation, freed when no longer
    referenced), with a = batch x width x 4 bytes, one activation:

    - forward: a hidden layer holds its input, the product ``h W`` and the
      sum ``h W + b`` at once: 3a (2a with one hidden layer, whose input X
      was resident before the call);
    - gradient: the backward pass starts with every kept activation plus two
      working arrays (the incoming gradient and the one it computes),
      (depth + 2) a; it ends holding every weight gradient (depth x width² x 4)
      plus one working array. The peak is the larger of the two: activations
      dominate when batch > width, weight gradients when batch < width.
    """
    B, dims = p["batch"], _dims(p)
    w, d = p["width"], p["depth"]
    weights = sum(m * n for m, n in itertools.pairwise(dims))
    saved = B * w * (d + 1) + (weights - dims[0] * dims[1]) + B
    a = B * w
    return Memory(
        saved=4 * saved,
        forward=4 * (2 if d == 1 else 3) * a,
        gradient=4 * max((d + 2) * a, d * w * w + a),
    )


def loss_torch(params, X, y):
    import torch

    h = X
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        h = torch.tanh(h @ W + b)
    return torch.mean((h @ params[-2] + params[-1] - y) ** 2)


def loss_tensorflow(params, X, y):
    import tensorflow as tf

    h = X
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        h = tf.tanh(h @ W + b)
    return tf.reduce_mean((h @ params[-2] + params[-1] - y) ** 2)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    h = X
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        h = jnp.tanh(h @ W + b)
    return jnp.mean((h @ params[-2] + params[-1] - y) ** 2)
