"""1-D convolutional regression on random data, in three frameworks.

The model
---------
Each example is a sequence of ``length`` time steps with ``channels`` features
per step, ``X[b, t, c] ~ N(0, 1)``, stored "channels last" as
``(batch, length, channels)`` (TensorFlow and JAX call this layout NWC). The
network applies ``depth`` convolution layers, each with ``channels`` filters
of width ``kernel``, stride 1 and tanh activations; then it averages every
channel over the remaining time steps (a global mean pool) and a dense layer
maps those ``channels`` numbers to one output, compared with a random target
``y ~ N(0, 1)`` by the mean squared error. As in ``mlp_regression`` the network
memorises noise: what matters is the arithmetic, not what it learns.

Padding is 'valid' (no zero padding): a layer sees only real inputs, so its
output is ``kernel - 1`` steps shorter than its input, and after layer ``i``
(counting from 1) ``length - i * (kernel - 1)`` steps remain. 'valid' avoids
the frameworks' differing conventions for 'same' padding with even kernels,
and every multiplication counted below is one that is really done.

A convolution layer is a small MLP layer applied at every time step to a
window of ``kernel`` consecutive inputs, with the same weights everywhere:
``z[b, t, o] = bias[o] + sum_j sum_c h[b, t + j, c] * W[j, c, o]``. (This is
cross-correlation, which is what all three frameworks compute under the name
"convolution".) The weights are stored once, as ``W[j, c_in, c_out]`` of shape
``(kernel, channels, channels)``, the layout TensorFlow's ``tf.nn.conv1d`` and
JAX's ``conv_general_dilated`` with ``("NWC", "WIO", "NWC")`` take as is;
PyTorch wants ``(batch, channels, length)`` inputs and ``(c_out, c_in,
kernel)`` weights, so its loss permutes both (views of the same memory;
gradients flow back through the permutation to the canonical layout).

Where the FLOPs go
------------------
A layer whose output has ``L_out`` steps does ``2 * B * L_out * K * C * C``
FLOPs (one multiply and one add per weight, per output step, per example).
The backward pass of a layer computes two products of the same size:

- the weight gradient, ``dW[j] = sum over b, t of h[b, t + j]^T dz[b, t]``;
- the input gradient, ``dh[b, t + j] += dz[b, t] W[j]^T``, needed by every
  layer but the first, whose input is the data.

So, as for the MLP, R = FLOPs(gradient) / FLOPs(forward) is about
``3 - 1/depth`` when the convolutions dominate, a little below it here: with
'valid' padding the first layer, the one without an input gradient, has the
longest output and so the largest share. The dense head (``2 * B * C`` FLOPs)
is negligible, and bias adds, tanh and the mean pool (O(B * L * C) each) are
not counted, as ``torch.utils.flop_counter`` does not count them either.

The float64 reference turns each layer into one matrix product by im2col
(every window of ``K`` steps unrolled into a row) and back-propagates through
it by hand; ``tests/suites/test_suite_conv_regression.py`` checks it against finite
differences and checks ``flops`` against torch's FLOP counter.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bench import Flops, Memory, Problem

DESCRIPTION = "1-D CNN ('valid' conv + tanh layers, mean pool, dense, MSE) regressing random targets"

# Sweeps around a centre (batch 32, length 128, channels 64, depth 3, kernel 5),
# one parameter at a time: a full product would be 243 cases. On a quiet
# 2-core CPU the centre's gradient takes 8-10 ms and the largest cases'
# (batch 128, length 512, channels 128) 26-42 ms; the 11 cases in three
# frameworks take about 2 min 10 s with the default 2 s budget, most of it
# the fixed cost per case (budget, compilation, warm-up, float64 reference).
_CENTRE = {"batch": 32, "length": 128, "channels": 64, "depth": 3, "kernel": 5}
_SWEEPS = {
    "batch": [8, 128],
    "length": [32, 512],
    "channels": [16, 128],
    "depth": [1, 6],
    "kernel": [3, 9],
}
GRID = [dict(_CENTRE)] + [
    {**_CENTRE, key: value} for key, values in _SWEEPS.items() for value in values
]
QUICK = [
    {"batch": 4, "length": 16, "channels": 8, "depth": 2, "kernel": 3},
    {"batch": 8, "length": 32, "channels": 16, "depth": 3, "kernel": 5},
    {"batch": 16, "length": 64, "channels": 32, "depth": 2, "kernel": 4},
]
# Largest relative error of loss and gradients against the float64 reference.
# A pre-activation sums K*C products and a weight or bias gradient sums over
# all B*L_out positions, so float32 round-off (eps 1.2e-7) grows with the
# sizes. Measured on GRID and QUICK (seed 0, CPU): JAX 6e-8 to 4.8e-7,
# TensorFlow 6e-8 to 2.4e-7, torch 1.3e-7 to 1.0e-6, the largest in torch's
# last-layer bias gradient at batch 128 (a sum of 128*116 terms) and depth 6.
# 1e-5 keeps a 10x margin and still catches a wrong model (0.1 % off fails).
TOLERANCE = 1e-5


def _lengths(p: dict) -> list[int]:
    """Sequence length entering each layer, then after the last one."""
    shrink = p["kernel"] - 1  # 'valid' padding: each layer drops kernel - 1 steps
    lengths = [p["length"] - i * shrink for i in range(p["depth"] + 1)]
    if lengths[-1] < 1:
        raise ValueError(f"length {p['length']} too short for {p['depth']} layers of kernel {p['kernel']}")
    return lengths


def problem(p: dict, seed: int) -> Problem:
    """Inputs and targets ~ N(0, 1); LeCun-normal weights, small random biases."""
    _lengths(p)  # fail early on an impossible case
    rng = np.random.default_rng(seed)
    B, L, C, K = p["batch"], p["length"], p["channels"], p["kernel"]
    X = rng.standard_normal((B, L, C))
    y = rng.standard_normal((B, 1))
    params, names = [], []
    for i in range(p["depth"]):
        # LeCun normal: variance 1/fan_in, and a filter's fan-in is K * C inputs.
        params += [rng.standard_normal((K, C, C)) / np.sqrt(K * C), 0.1 * rng.standard_normal(C)]
        names += [f"W{i}", f"b{i}"]
    params += [rng.standard_normal((C, 1)) / np.sqrt(C), 0.1 * rng.standard_normal(1)]
    names += ["W_out", "b_out"]
    as32 = [a.astype(np.float32) for a in (X, y, *params)]
    return Problem(as32[0], as32[1], tuple(as32[2:]), tuple(names))


def _im2col(h: np.ndarray, K: int) -> np.ndarray:
    """The windows of a 'valid' convolution as the rows of one matrix.

    ``(B, L, C) -> (B * L_out, K * C)``: row ``(b, t)`` holds ``h[b, t : t + K]``
    flattened tap by tap, the same order as ``W.reshape(K * C, C_out)``, so a
    whole layer becomes one matrix product (with the same FLOP count).
    """
    B, L, C = h.shape
    windows = sliding_window_view(h, K, axis=1)  # (B, L_out, C, K), a view: [b, t, c, j] = h[b, t + j, c]
    return windows.transpose(0, 1, 3, 2).reshape(B * (L - K + 1), K * C)  # a copy, (j, c) order


def reference(prob: Problem) -> tuple[float, list[np.ndarray]]:
    """Loss and gradients in float64, backpropagation written out by hand."""
    X, y = prob.X.astype(np.float64), prob.y.astype(np.float64)
    params = [a.astype(np.float64) for a in prob.params]
    Ws, bs = params[0:-2:2], params[1:-2:2]
    W_out, b_out = params[-2], params[-1]
    B = X.shape[0]

    # Forward, keeping every layer's windows (its input, unrolled) and its
    # output (tanh values) for the backward pass.
    h, cols, hs = X, [], []
    for W, b in zip(Ws, bs, strict=True):
        K, C_in, C_out = W.shape
        cols.append(_im2col(h, K))
        z = cols[-1] @ W.reshape(K * C_in, C_out) + b  # (B * L_out, C_out)
        h = np.tanh(z).reshape(B, -1, C_out)
        hs.append(h)
    pooled = h.mean(axis=1)  # (B, C): mean over the remaining time steps
    r = pooled @ W_out + b_out - y
    loss = float(np.mean(r**2))

    # Backward. The dense head first, exactly as in the MLP.
    d = 2.0 * r / r.size  # dloss/dout
    grads = [pooled.T @ d, d.sum(axis=0)]
    # The mean spreads its gradient evenly over the L_out steps it averaged.
    dh = np.broadcast_to((d @ W_out.T)[:, None, :] / h.shape[1], h.shape)
    for i in reversed(range(len(Ws))):
        W = Ws[i]
        K, C_in, C_out = W.shape
        dz = (dh * (1.0 - hs[i] ** 2)).reshape(-1, C_out)  # through tanh: tanh' = 1 - tanh^2
        # z = cols @ W, so dW = cols^T dz: every window times its output's gradient,
        # summed over batch and time (the weights are shared by all of them).
        grads = [(cols[i].T @ dz).reshape(W.shape), dz.sum(axis=0), *grads]
        if i > 0:  # the first layer's input is the data: no gradient needed
            dcols = (dz @ W.reshape(K * C_in, C_out).T).reshape(B, -1, K, C_in)
            # col2im, the transpose of im2col: input step t + j appeared in
            # window t as tap j, so its gradient gathers from every window it was in.
            L_out = dcols.shape[1]
            dh = np.zeros((B, L_out + K - 1, C_in))
            for j in range(K):
                dh[:, j : j + L_out] += dcols[:, :, j]
    return loss, grads


def flops(p: dict) -> Flops:
    """Convolution and matrix-product FLOPs, as ``torch.utils.flop_counter`` counts them.

    Forward: ``2 * B * L_out * K * C * C`` per conv layer (``L_out`` its output
    length) plus ``2 * B * C`` for the dense head. Gradient: the forward, plus
    the weight gradient of every layer (the same count again), plus the input
    gradient of every layer but the first conv layer, whose input is the data.
    Bias adds, tanh, the mean pool and the loss's elementwise work are not
    counted (FlopCounterMode ignores them; they are O(B * L * C)).
    """
    B, C, K = p["batch"], p["channels"], p["kernel"]
    convs = [2 * B * L_out * K * C * C for L_out in _lengths(p)[1:]]
    dense = 2 * B * C * 1
    forward = sum(convs) + dense
    weight_grads = sum(convs) + dense
    input_grads = sum(convs[1:]) + dense
    return Flops(forward=forward, gradient=forward + weight_grads + input_grads)


def memory(p: dict) -> Memory:
    """Analytic bytes (float32) of what the backward pass keeps, and of each phase's peak.

    Saved, layer by layer (``L_i`` the length after layer ``i``, ``L_0 = length``):

    - every convolution keeps its input, for the weight gradient (each
      window times its output's gradient): ``X`` for the first layer, the
      previous layer's tanh output for the others;
    - every convolution keeps its weights ``(K, C, C)``, for the input
      gradient. The first layer's input is data and needs no gradient, so
      its weights are not needed in principle, but a convolution's backward
      pass is one operation that computes the input, weight and bias
      gradients together (torch's ``convolution_backward``), and it keeps its
      input and weights whichever of them are asked for: all ``depth``
      weights count;
    - tanh keeps its output ``h``, since tanh' = 1 - h^2. It is the next
      layer's input, the same array, so it counts once;
    - the mean pool keeps nothing (its gradient is the upstream one spread
      evenly over ``L_d`` steps); the dense head keeps its input, the pooled
      ``(B, C)`` matrix, and its weight ``(C, 1)``, since the pooled values
      need a gradient; the squared error keeps its residual ``(B, 1)``.

    So ``B C (L_0 + L_1 + ... + L_d) + depth K C^2 + B C + C + B`` numbers.

    Peaks, in eager execution (one array per operation, freed when no longer
    referenced), with ``a_i = B C L_i`` numbers (the activation after layer
    ``i``; ``a_0`` the input's) and ``W = K C^2`` (one layer's weights); ``X``
    and the parameters are resident before the call. On the CPU a torch
    convolution makes several arrays, not one: ``conv1d`` wants contiguous
    arrays, so it copies the permuted views (``X.permute(0, 2, 1)`` for the
    first layer, a copy of ``a_0``; every ``W.permute(2, 1, 0)``, a copy of
    ``W``), and oneDNN, which computes it, copies the input and the weights
    again into its blocked layout (channels in groups of 16 on this CPU) and
    writes its output in that layout before copying it back to torch's. So:

    - forward: layer ``i`` holds its input and oneDNN's copy of it (for the
      first layer, torch's copy of ``X`` and oneDNN's), torch's and
      oneDNN's copies of the weights, and its blocked output: ``2 a_{i-1} +
      a_i + 2 W``. The lengths shrink, so the first layer sets the peak:
      ``2 a_0 + a_1 + 2 W``;
    - gradient: the forward pass keeps the tanh outputs ``h_1 .. h_d``. The
      backward pass frees each ``h_i`` once tanh's backward has used it, and
      computes layer ``i``'s weight gradient after its input gradient
      ``dh_{i-1}``, holding ``h_1 .. h_{i-1}``, the output gradient ``dz_i``
      and ``dh_{i-1}``, oneDNN's copies of ``dz_i`` and of the input, torch's
      copy of the weights, oneDNN's blocked weight gradient and the weight
      gradients of the ``d - i`` layers above: ``a_1 + .. + a_{i-1} + 2 a_i +
      2 a_{i-1} + (d - i + 2) W`` (for the first layer, whose input needs no
      gradient, torch's and oneDNN's copies of ``X`` take the place of
      ``dh_0`` and its copy). The peak is the largest over the layers,
      usually the last: about ``(d + 3)`` activations against the forward
      pass's 3.

    This is within 0.1 % on one thread for every GRID case and two of the
    three QUICK ones. It leaves out two things of oneDNN's own. On several
    threads its weight gradient takes a scratch buffer (none on one
    thread; on two, about one more ``W`` plus 8 to 20 KB): up to 3 % more
    on this grid, but from 4 % more to 3.5 times as much on the small QUICK
    cases (peaks of 35 to 700 KB). And a channel
    count that is not a multiple of 16 is padded to one in the blocked
    copies, and some copies change: the QUICK case with 8 channels measures
    10 % over in the forward pass and 40 % in the gradient, on one thread.
    """
    B, C, K, d = p["batch"], p["channels"], p["kernel"], p["depth"]
    lengths = _lengths(p)
    hidden = B * C * sum(lengths[1:])  # the tanh outputs
    saved = B * C * lengths[0] + hidden + d * K * C * C + B * C + C + B
    a = [B * C * n for n in lengths]
    W = K * C * C
    backward = [sum(a[1:i]) + 2 * a[i] + 2 * a[i - 1] + (d - i + 2) * W for i in range(1, d + 1)]
    return Memory(
        saved=4 * saved,
        forward=4 * (2 * a[0] + a[1] + 2 * W),
        gradient=4 * max(backward),
    )


def loss_torch(params, X, y):
    import torch
    import torch.nn.functional as F

    h = X.permute(0, 2, 1)  # (B, L, C) -> (B, C, L), the layout conv1d takes: a view
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        # (K, C_in, C_out) -> (C_out, C_in, K); conv1d is cross-correlation too.
        h = torch.tanh(F.conv1d(h, W.permute(2, 1, 0), b))
    pooled = h.mean(dim=2)
    return torch.mean((pooled @ params[-2] + params[-1] - y) ** 2)


def loss_tensorflow(params, X, y):
    import tensorflow as tf

    h = X  # NWC, filters (K, C_in, C_out): the canonical layout, no transposes
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        h = tf.tanh(tf.nn.conv1d(h, W, stride=1, padding="VALID") + b)
    pooled = tf.reduce_mean(h, axis=1)
    return tf.reduce_mean((pooled @ params[-2] + params[-1] - y) ** 2)


def loss_jax(params, X, y):
    import jax.numpy as jnp
    from jax import lax

    h = X
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        z = lax.conv_general_dilated(
            h, W, window_strides=(1,), padding="VALID", dimension_numbers=("NWC", "WIO", "NWC")
        )
        h = jnp.tanh(z + b)
    pooled = jnp.mean(h, axis=1)
    return jnp.mean((pooled @ params[-2] + params[-1] - y) ** 2)
