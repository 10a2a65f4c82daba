"""Linear regression by least squares: the simplest model, in three frameworks.

The model
---------
Each of ``batch`` examples has ``features`` inputs, ``X[i, j] ~ N(0, 1)``. The
targets come from a planted linear model plus noise, ``y = X w* + b* + 0.1 e``
with ``w* ~ N(0, 1/features)`` (so that ``X w*`` has unit variance), ``b* ~
N(0, 1)`` and ``e ~ N(0, 1)``: unlike the MLP suites there is something to
learn. The model starts from its own random guess ``w``, ``b`` (drawn like
``w*``, ``b*`` but independently) and predicts ``X w + b``; the loss is the
mean squared error over the batch::

    L(w, b) = 1/N sum_i (x_i . w + b - y_i)^2,    N = batch.

It starts at a few units (about 2 from the weights, plus the squared bias
error: 2 to 13 on this grid) and training drives it down towards the noise
level, 0.01.

Why the gradient is cheap
-------------------------
With the residual ``r = X w + b - y`` (one number per example), the chain
rule gives the gradient in closed form, which ``reference`` computes::

    dL/dw = 2/N X^T r        dL/db = 2/N sum_i r_i

Count the work. The forward pass is one matrix-vector product, ``X w``:
``2 * N * features`` FLOPs (a multiply and an add per entry of ``X``); the
bias, the residual, the squares and the mean are O(N) and negligible. The
backward pass turns ``r`` into ``2/N r`` (O(N)), sums it for ``db`` (O(N)),
and does ONE product of the same size as the forward one, ``X^T r`` for
``dw``. A general layer would need a second one, the gradient with respect
to its input, ``dX = (2/N r) w^T``, but the input here is the data: nothing
asks for its gradient, so autograd skips that product. Hence

    FLOPs(loss and gradient) = 2 N F + 2 N F = 4 N F,   R_theory = 2 exactly,

compared with about 3 for a hidden layer of a deep network (3 - 1/L for the
MLP of ``mlp_regression``, whose first layer is in the same situation as
this one). Both products read all of ``X`` once and do two FLOPs per number
read: they are memory-bound, so the time ratio is also a ratio of bytes
moved, still 2, unless the transposed product ``X^T r`` walks memory less
(or more) kindly than ``X w``. For small problems neither count matters: the
fixed cost of launching a handful of operations dominates, and the measured
R reflects how many operations each phase dispatches.

``w`` is a ``(features, 1)`` matrix, not a vector, and ``y`` is ``(batch, 1)``.
This matters for FLOP counting: with ``w`` of shape ``(features,)`` PyTorch
dispatches ``X @ w`` to ``aten.mv``, which ``torch.utils.flop_counter``
does not count (it reports 0 FLOPs), while a ``(features, 1)`` matrix makes
both ``X @ w`` and the backward ``X^T r`` an ``aten.mm`` of ``2 N F`` FLOPs,
which is exactly what ``flops`` below counts.
"""

from __future__ import annotations

import numpy as np

from bench import Flops, Memory, Problem

DESCRIPTION = "linear regression (y = Xw + b, MSE loss) on a planted linear model plus noise"

# Sweeps around a centre (batch 1024, features 256), one parameter at a time:
# the batch from 16 (pure dispatch overhead, a few microseconds of work) to
# 32768 (32 MiB of X, far beyond the caches), and the features from 16
# (the O(N) elementwise work is no longer negligible next to 2 N F) to 4096.
# The 9 cases take about 25 s per framework with the default 2 s budget on a
# 2-core CPU (about 80 s for all three, plus starting the workers).
_CENTRE = {"batch": 1024, "features": 256}
_SWEEPS = {"batch": [16, 128, 8192, 32768], "features": [16, 64, 1024, 4096]}
GRID = [dict(_CENTRE)] + [
    {**_CENTRE, key: value} for key, values in _SWEEPS.items() for value in values
]
# Small, but not so small that only overhead is measured: in torch eager the
# gradient pays about 75 us of autograd bookkeeping on this 2-core CPU, so at
# batch 256 x features 64 (a 15 us forward) R comes out above 6, whatever the
# FLOPs say. The GRID's small cases show that regime on purpose.
QUICK = [
    {"batch": 1024, "features": 256},
    {"batch": 8192, "features": 256},
    {"batch": 4096, "features": 1024},
]
# Largest relative error of loss and gradients against the float64 reference.
# Measured in float32 on the CPU over GRID and QUICK, seeds 0 and 1, in torch
# eager, TensorFlow function/xla/eager and JAX jit: 7e-8 to 1.9e-6, typically
# 1e-7 to 6e-7, largest for the largest sums (batch 32768: the loss, db and
# X^T r sum over examples; features 4096: X w sums over features). 1e-5
# leaves a margin of 5x and still fails a model that is 0.1 % wrong.
TOLERANCE = 1e-5


def problem(p: dict, seed: int) -> Problem:
    """X ~ N(0, 1); y from a planted (w*, b*) plus noise 0.1; an independent random start."""
    rng = np.random.default_rng(seed)
    n, f = p["batch"], p["features"]
    X = rng.standard_normal((n, f))
    w_true = rng.standard_normal((f, 1)) / np.sqrt(f)
    b_true = rng.standard_normal(1)
    y = X @ w_true + b_true + 0.1 * rng.standard_normal((n, 1))
    w = rng.standard_normal((f, 1)) / np.sqrt(f)
    b = rng.standard_normal(1)
    as32 = [a.astype(np.float32) for a in (X, y, w, b)]
    return Problem(as32[0], as32[1], (as32[2], as32[3]), ("w", "b"))


def reference(prob: Problem) -> tuple[float, list[np.ndarray]]:
    """Loss and the closed-form gradient in float64: 2/N X^T r and 2/N sum(r)."""
    X, y = prob.X.astype(np.float64), prob.y.astype(np.float64)
    w, b = (a.astype(np.float64) for a in prob.params)
    r = X @ w + b - y
    n = X.shape[0]
    loss = float(np.mean(r**2))
    return loss, [2.0 / n * (X.T @ r), 2.0 / n * r.sum(axis=0)]


def flops(p: dict) -> Flops:
    """One (N x F) @ (F x 1) product forward; one more, X^T r, for dw (X needs no gradient)."""
    product = 2 * p["batch"] * p["features"]
    return Flops(forward=product, gradient=2 * product)


def memory(p: dict) -> Memory:
    """Analytic bytes (float32) of what the backward pass keeps, and of each phase's peak.

    Saved: the backward pass computes ``dw = 2/N X^T r`` and ``db = 2/N sum(r)``,
    so it needs the input ``X`` (the product keeps its input for dw) and the
    residual ``r`` (the square keeps its input, for d(r^2)/dr = 2 r). The
    product would keep its weight ``w`` too, but only to compute dX, and ``X``
    is data that needs no gradient: ``w`` is not kept. ``X`` is resident
    anyway, but it is saved all the same, so it counts: ``B * F + B`` numbers,
    the saved bytes are dominated by ``X`` itself.

    Peaks, in eager execution (one array per operation, freed when no longer
    referenced), in vectors of ``B`` numbers (``X`` and the parameters are
    resident before the call, so only what the call makes counts):

    - forward: ``mean((X w + b - y) ** 2)`` is a chain of operations, each
      reading the vector the previous one made: ``X w``, then ``+ b``, then
      ``- y``, then ``** 2``. Each result is freed once the next one exists,
      so two vectors live at once: 2 B;
    - gradient: the forward pass now keeps the residual ``r``. The backward
      pass of the mean spreads the scalar gradient into a vector (``1/N``
      per example); the backward pass of the square then computes
      ``grad * (2 * r ** 1)`` as autograd writes it, three operations whose
      results all live until the product is done: ``r``, the incoming
      gradient and those three, 5 B. The pass ends holding the gradient of
      the residual, ``dw`` (F numbers) and ``db`` (one): B + F + 1. The peak
      is the larger of the two (5 B unless F > 4 B).
    """
    B, F = p["batch"], p["features"]
    return Memory(
        saved=4 * (B * F + B),
        forward=4 * 2 * B,
        gradient=4 * max(5 * B, B + F + 1),
    )


def loss_torch(params, X, y):
    import torch

    w, b = params
    return torch.mean((X @ w + b - y) ** 2)


def loss_tensorflow(params, X, y):
    import tensorflow as tf

    w, b = params
    return tf.reduce_mean((X @ w + b - y) ** 2)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    w, b = params
    return jnp.mean((X @ w + b - y) ** 2)
