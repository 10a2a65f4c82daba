"""One self-attention block with an MLP, regressing random targets from a sequence.

The model is one transformer block, written out with plain matrix products so
that every framework runs exactly the same arithmetic on the same arrays:

    X                        (batch, seq, dim), X ~ N(0, 1)
    Q, K, V = X Wq + bq, X Wk + bk, X Wv + bv            three dim x dim products
    P = softmax(Q K^T / sqrt(dim))   (batch, seq, seq)   one row per query, over the keys
    H = X + (P V) Wo + bo            attention, then a residual connection
    G = H + tanh(H W1 + b1) W2 + b2  MLP dim -> 4 dim -> dim, then a residual
    out = mean_seq(G) Wout + bout    (batch, 1)
    loss = mean((out - y)^2)         y ~ N(0, 1), MSE

It is single-head, has biases on every dense layer, no masking and no layer
norm (a layer norm would add elementwise work the FLOP count ignores and a
backward pass the reference would have to write out; it is left out).

The key bias bk always gets a zero gradient: it adds q_t . bk to every score
of query t's row, and softmax ignores a constant added to a row. It is kept,
as in the usual layout; its float32 gradient is pure round-off, which is one
reason bench compares gradients in the max norm over all parameters, not
array by array.

Where the FLOPs go, with B = batch, T = seq, D = dim, F = 4 D (a product of an
m x k by a k x n matrix costs 2 m k n):

    Q, K, V, output projections  4 x 2 B T D^2
    scores Q K^T and P V         2 x 2 B T^2 D       <- the seq^2 terms
    MLP                          2 x 2 B T D F = 16 B T D^2
    output layer                 2 B D               (negligible)

so the forward pass costs about 24 B T D^2 + 4 B T^2 D: the MLP and projections
dominate while T < 6 D, the attention scores beyond. The backward pass of each
product computes two products of the same size (one for each factor), except
the Q, K, V projections of the input X, which needs no gradient: those need
only the weight gradient. Hence

    gradient = 3 forward - 6 B T D^2

and the theoretical ratio R = gradient / forward lies between 2.75 (short
sequences, T << D) and 3 (long sequences, the seq^2 terms dominating).
"""

from __future__ import annotations

import numpy as np

from bench import Flops, Memory, Problem

DESCRIPTION = "one self-attention block + tanh MLP (residuals, MSE loss) regressing random targets"
# Sweeps around a centre (batch 8, seq 128, dim 128), one parameter at a time:
# 10 cases, where the product of these values would be 3 x 5 x 4 = 60. The
# largest gradient (seq 512) takes about 80 ms on 2 CPU cores; the full grid
# runs in about 2 minutes for all three frameworks at the default budget.
_CENTRE = {"batch": 8, "seq": 128, "dim": 128}
GRID = [
    _CENTRE,
    *({**_CENTRE, "batch": b} for b in (2, 32)),
    *({**_CENTRE, "seq": t} for t in (32, 64, 256, 512)),
    *({**_CENTRE, "dim": d} for d in (32, 64, 256)),
]
QUICK = [
    {"batch": 8, "seq": 64, "dim": 64},
    {"batch": 4, "seq": 128, "dim": 64},
    {"batch": 8, "seq": 32, "dim": 128},
]
# Largest relative error of loss and gradients against the float64 reference
# (on the CPU, seeds 0-4, every case of GRID and QUICK). torch and JAX measure
# 1e-7 to 1.2e-6; softmax adds nothing visible. TensorFlow measures up to 3e-6,
# all of it in the gradient of the last bias b2: a sum of batch x seq terms,
# seq of them identical for each sample (the mean over the sequence hands every
# position the same 1/seq share), whose round-off TensorFlow's float32 CPU
# reduction lets grow with the number of terms (4096 terms: 3e-6; 8192, tried
# while sizing the grid: up to 9e-6). 2e-5 keeps a margin of 6 on this grid and
# still fails a wrong model by a factor of 50 (a 0.1 % error is 1e-3).
TOLERANCE = 2e-5

PARAM_NAMES = ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo", "W1", "b1", "W2", "b2", "Wout", "bout")


def _hidden(dim: int) -> int:
    return 4 * dim


def problem(p: dict, seed: int) -> Problem:
    """Inputs and targets ~ N(0, 1); LeCun-normal weights, small random biases."""
    rng = np.random.default_rng(seed)
    B, T, D = p["batch"], p["seq"], p["dim"]
    F = _hidden(D)
    X = rng.standard_normal((B, T, D))
    y = rng.standard_normal((B, 1))
    shapes = [(D, D)] * 4 + [(D, F), (F, D), (D, 1)]  # Wq Wk Wv Wo W1 W2 Wout
    params = []
    for fan_in, fan_out in shapes:
        params += [rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in),
                   0.1 * rng.standard_normal(fan_out)]
    as32 = [a.astype(np.float32) for a in (X, y, *params)]
    return Problem(as32[0], as32[1], tuple(as32[2:]), PARAM_NAMES)


def _flat(a: np.ndarray) -> np.ndarray:
    """(batch, seq, n) -> (batch * seq, n): every position is one row of a dense layer."""
    return a.reshape(-1, a.shape[-1])


def _dense_grads(x: np.ndarray, d: np.ndarray) -> list[np.ndarray]:
    """Weight and bias gradients of ``x @ W + b`` given ``d`` = dloss/d(output)."""
    return [_flat(x).T @ _flat(d), _flat(d).sum(axis=0)]


def reference(prob: Problem) -> tuple[float, list[np.ndarray]]:
    """Loss and gradients in float64, backpropagation written out by hand."""
    X, y = prob.X.astype(np.float64), prob.y.astype(np.float64)
    Wq, bq, Wk, bk, Wv, bv, Wo, bo, W1, b1, W2, b2, Wout, bout = (
        p.astype(np.float64) for p in prob.params
    )
    T, D = X.shape[1], X.shape[2]
    scale = 1.0 / np.sqrt(D)

    # Forward pass, keeping what the backward pass needs.
    Q, K, V = X @ Wq + bq, X @ Wk + bk, X @ Wv + bv
    S = (Q @ K.transpose(0, 2, 1)) * scale  # (B, T, T): query t against key s
    E = np.exp(S - S.max(axis=-1, keepdims=True))  # the max cancels, but keeps exp finite
    P = E / E.sum(axis=-1, keepdims=True)
    A = P @ V
    H = X + A @ Wo + bo
    Z = np.tanh(H @ W1 + b1)
    G = H + Z @ W2 + b2
    m = G.mean(axis=1)  # (B, D)
    r = m @ Wout + bout - y
    loss = float(np.mean(r**2))

    # Backward pass: each d<name> is dloss/d<name>, same shape as <name>.
    dout = 2.0 * r / r.size
    g_out = [m.T @ dout, dout.sum(axis=0)]
    dm = dout @ Wout.T
    # The mean over the sequence hands every position 1/T of dm.
    dG = np.broadcast_to(dm[:, None, :] / T, G.shape)
    # G = H + Z W2 + b2: the residual passes dG straight to H.
    g_2 = _dense_grads(Z, dG)
    dU = (dG @ W2.T) * (1.0 - Z**2)  # through tanh, U = H W1 + b1
    g_1 = _dense_grads(H, dU)
    dH = dG + dU @ W1.T
    # H = X + A Wo + bo: X needs no gradient.
    g_o = _dense_grads(A, dH)
    dA = dH @ Wo.T
    # A = P V.
    dP = dA @ V.transpose(0, 2, 1)
    dV = P.transpose(0, 2, 1) @ dA
    # Softmax backward, row by row: dS = P * (dP - <dP, P>), from the Jacobian
    # diag(P) - P P^T of each row.
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))
    # S = scale Q K^T.
    dQ = (dS @ K) * scale
    dK = (dS.transpose(0, 2, 1) @ Q) * scale
    g_q, g_k, g_v = _dense_grads(X, dQ), _dense_grads(X, dK), _dense_grads(X, dV)
    return loss, [*g_q, *g_k, *g_v, *g_o, *g_1, *g_2, *g_out]


def flops(p: dict) -> Flops:
    """FLOPs of the matrix products, as ``torch.utils.flop_counter.FlopCounterMode`` counts them.

    Counted: every matrix product (mm, bmm), 2 m k n for an m x k by k x n
    product. Not counted: softmax, tanh, bias additions, residual additions,
    the scaling by 1/sqrt(dim), the mean, the loss.

    Forward: the projections X Wq, X Wk, X Wv and A Wo (2 B T D^2 each), the
    scores Q K^T and the mixing P V (2 B T^2 D each), the MLP (2 B T D F each
    layer) and the output layer (2 B D).

    Gradient: the forward, plus two products of the same size for every
    product (one per factor), except the Q, K, V projections, whose input X
    needs no gradient and which therefore need only the weight gradient.
    """
    B, T, D = p["batch"], p["seq"], p["dim"]
    F = _hidden(D)
    projection = 2 * B * T * D * D  # each of Wq, Wk, Wv, Wo
    scores = 2 * B * T * T * D  # each of Q K^T and P V
    mlp = 2 * B * T * D * F  # each of W1, W2
    output = 2 * B * D
    forward = 4 * projection + 2 * scores + 2 * mlp + output
    backward = 2 * forward - 3 * projection  # no dX for the Q, K, V projections
    return Flops(forward=forward, gradient=forward + backward)


def memory(p: dict) -> Memory:
    """Analytic bytes (float32) of what the backward pass keeps, and of each phase's peak.

    Saved, following the forward pass (B = batch, T = seq, D = dim, F = 4 D):

    - ``X Wq``, ``X Wk``, ``X Wv``: a product keeps its input for the weight
      gradient, so ``X`` is kept (once: the three share it, B T D). It would
      keep its weight only to compute dX, and ``X`` is data: Wq, Wk and Wv
      are not kept;
    - ``Q K^T``: both factors need a gradient, so it keeps both, ``Q`` and
      ``K`` (2 B T D);
    - softmax keeps its output ``P`` (B T^2), since its backward pass is
      ``P * (dP - <dP, P>)``; ``P V`` keeps ``P`` (the same array) and ``V``
      (B T D). The scaling by 1/sqrt(D) is by a constant and keeps nothing;
    - ``A Wo``: ``A = P V`` and ``Wo`` (B T D + D^2); ``H W1``: ``H`` and
      ``W1`` (B T D + D F); tanh keeps its output ``Z`` (B T F, for
      tanh' = 1 - Z^2), which ``Z W2`` keeps too, with ``W2`` (F D);
    - bias and residual additions keep nothing; the mean over the sequence
      keeps nothing; the output layer keeps the mean ``m`` (B D) and ``Wout``
      (D); the squared error keeps its residual (B).

    In all ``(6 D + F) B T + B T^2 + 2 D^2 + 2 D F + B D + D + B`` numbers,
    that is ``10 B T D + B T^2 + 9 D^2 + B D + D + B``.

    Peaks, in eager execution (one array per operation, freed when no longer
    referenced), with a = B T D, s = B T^2 and z = B T F numbers (an
    activation, a score matrix, an MLP hidden layer); ``X`` and the weights
    are resident before the call. ``loss_torch`` names ``Q``, ``K``, ``V``,
    ``P``, ``H`` and ``G``, so each of these lives until the function
    returns; the unnamed results (``X Wq`` before its bias, ``Q K^T`` before
    its scaling, ``P V``, ...) are freed as soon as the next operation has
    read them.

    - forward: the MLP holds ``Q``, ``K``, ``V``, ``P`` and ``H`` (4 a + s)
      while ``H W1`` and ``H W1 + b1`` (then that sum and its tanh) live
      together: 4 a + s + 2 z. Before it, the attention holds ``Q``, ``K``,
      ``V`` and two score matrices at once (``Q K^T`` and its scaled copy,
      then the scaled copy and its softmax): 3 a + 2 s, the larger only when
      seq > 9 dim, beyond this grid;
    - gradient: the forward pass now keeps ``A = P V`` too, and the tanh
      output ``Z``: 5 a + s + z. The backward pass starts with the gradient
      of ``G`` (the mean's, spread over the sequence: a), then ``Z W2``'s
      weight gradient (F D) and input gradient (z), then tanh's (z), all
      live at once: 6 a + s + 3 z + F D. Later the attention's backward
      holds ``Q``, ``K``, the gradient of ``V``, ``P``, the gradient of ``P``
      and the softmax's (3 a + 3 s) beside the weight gradients made so far
      (``Wo``, ``W1``, ``W2``: 9 D^2): the larger only when seq exceeds
      about 7.5 dim, beyond this grid. The peak is the larger of the two.
    """
    B, T, D = p["batch"], p["seq"], p["dim"]
    F = _hidden(D)
    kept = (5 * D + F) * B * T + B * T * T + B * D + B  # Q K V A H Z, P, m, residual
    saved = B * T * D + kept + (D * D + 2 * D * F + D)  # X, activations, Wo W1 W2 Wout
    a, s, z = B * T * D, B * T * T, B * T * F
    return Memory(
        saved=4 * saved,
        forward=4 * max(4 * a + s + 2 * z, 3 * a + 2 * s),
        gradient=4 * max(6 * a + s + 3 * z + F * D, 3 * a + 3 * s + D * D + 2 * D * F),
    )


def loss_torch(params, X, y):
    import torch

    Wq, bq, Wk, bk, Wv, bv, Wo, bo, W1, b1, W2, b2, Wout, bout = params
    Q, K, V = X @ Wq + bq, X @ Wk + bk, X @ Wv + bv
    # torch.softmax subtracts each row's max before exp (numerically stable).
    P = torch.softmax((Q @ K.transpose(-2, -1)) * K.shape[-1] ** -0.5, dim=-1)
    H = X + (P @ V) @ Wo + bo
    G = H + torch.tanh(H @ W1 + b1) @ W2 + b2
    return torch.mean((G.mean(dim=1) @ Wout + bout - y) ** 2)


def loss_tensorflow(params, X, y):
    import tensorflow as tf

    Wq, bq, Wk, bk, Wv, bv, Wo, bo, W1, b1, W2, b2, Wout, bout = params
    Q, K, V = X @ Wq + bq, X @ Wk + bk, X @ Wv + bv
    # tf.nn.softmax subtracts each row's max before exp (numerically stable).
    P = tf.nn.softmax(tf.matmul(Q, K, transpose_b=True) * K.shape[-1] ** -0.5, axis=-1)
    H = X + (P @ V) @ Wo + bo
    G = H + tf.tanh(H @ W1 + b1) @ W2 + b2
    return tf.reduce_mean((tf.reduce_mean(G, axis=1) @ Wout + bout - y) ** 2)


def loss_jax(params, X, y):
    import jax
    import jax.numpy as jnp

    Wq, bq, Wk, bk, Wv, bv, Wo, bo, W1, b1, W2, b2, Wout, bout = params
    Q, K, V = X @ Wq + bq, X @ Wk + bk, X @ Wv + bv
    # jax.nn.softmax subtracts each row's max before exp (numerically stable).
    P = jax.nn.softmax((Q @ jnp.swapaxes(K, -2, -1)) * K.shape[-1] ** -0.5, axis=-1)
    H = X + (P @ V) @ Wo + bo
    G = H + jnp.tanh(H @ W1 + b1) @ W2 + b2
    return jnp.mean((G.mean(axis=1) @ Wout + bout - y) ** 2)
