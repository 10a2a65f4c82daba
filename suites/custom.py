"""Degrees of flexibility: your own activation, loss and optimizer, in three frameworks.

A template as much as a benchmark: copy this file into your suites folder,
rename it, and replace the pieces below with your own. It shows the three
places where a model can depart from what the frameworks ship, each written
out once per framework from elementary operations (exp, log, tanh, where,
products), never with the framework's built-in version:

1. **A custom activation** (section "1. Activation"): ``mish(x) = x *
   tanh(softplus(x))`` with ``softplus(x) = log(1 + e^x)``, a smooth cousin of
   ReLU. Softplus is written in the overflow-free form ``max(x, 0) + log(1 +
   e^-|x|)``: the naive ``log(1 + e^x)`` gives ``inf`` in float32 from
   ``x = 89``. The frameworks differentiate it through its primitives; the
   float64 reference uses the derivative worked out by hand::

       mish'(x) = tanh(sp) + x * (1 - tanh(sp)^2) * sigmoid(x),   sp = softplus(x)

   (``sigmoid`` is the derivative of softplus). An elementwise function costs
   O(batch x width) operations, nothing next to the matrix products, but each
   primitive is a separate kernel in eager mode (torch eager, TensorFlow
   eager), which a compiler (XLA, torch.compile) fuses into one.

2. **A custom loss** (section "2. Loss"): the Huber loss of the residual
   ``r = prediction - target`` with threshold ``DELTA``::

       huber(r) = r^2 / 2                   if |r| <= DELTA
                  DELTA (|r| - DELTA / 2)   otherwise

   quadratic near zero like the squared error, linear in the tails so that
   outliers pull less; its derivative is ``r`` inside and ``DELTA * sign(r)``
   outside. It has two branches, and the choice depends on the data, so it is
   written with ``where`` (both branches computed, one picked per element),
   never a Python ``if``: ``tf.function``, ``jax.jit`` and ``torch.compile``
   trace the function once with symbolic tensors, whose values are unknown
   when the ``if`` would be decided.

3. **A custom optimizer** (section "3. Optimizer"): SGD with momentum, ``v =
   MOMENTUM * v + g; w = w - lr * v``, instead of the plain ``w = w - lr * g``
   the harness uses by default. A suite that defines ``init_<fw>`` and
   ``update_<fw>`` for every framework it supports, plus ``init_numpy`` and
   ``update_numpy`` for the float64 reference, gets its own optimizer in the
   timed ``step`` phase and in the training curve (see ``bench/catalog/loader.py``).
   Each framework has its own idiom for state: torch updates tensors in place
   (the harness calls ``update_torch`` under ``torch.no_grad()``), TensorFlow
   keeps parameters and velocities in ``tf.Variable`` and ``assign``s to them
   (``update_tensorflow`` runs inside a ``tf.function``), JAX and NumPy are
   functional and return new lists.

The rest (section "4. Model") is the contract every suite fulfils, as in
``mlp_regression``: a multilayer perceptron with ``depth`` hidden mish layers
of ``width`` units (inputs have ``width`` features too) and one output,
regressing random targets ``y ~ N(0, 1)`` under the mean Huber loss; a
float64 reference with backpropagation written out by hand; and the FLOPs of
the matrix products, which are those of the MLP (the activation, loss and
optimizer add elementwise work only), so the theory is R = 3 - 1/depth up
to the small output layer. ``tests/suites/test_suite_custom.py`` checks each piece.
"""

from __future__ import annotations

import itertools

import numpy as np

from bench import Flops, Memory, Problem

DESCRIPTION = "MLP with a hand-written activation (mish), loss (Huber) and optimizer (momentum SGD)"

# Sweeps around a centre (batch 256, width 256, depth 2), one parameter at a
# time, as in mlp_regression but fewer: every case also compiles a momentum
# step, which makes the fixed cost per case a little higher. The 7 cases take
# about 22 s per framework with the default 2 s budget on a 2-core CPU.
_CENTRE = {"batch": 256, "width": 256, "depth": 2}
_SWEEPS = {"batch": [16, 2048], "width": [64, 1024], "depth": [1, 4]}
GRID = [dict(_CENTRE)] + [
    {**_CENTRE, key: value} for key, values in _SWEEPS.items() for value in values
]
QUICK = [
    {"batch": 64, "width": 64, "depth": 2},
    {"batch": 256, "width": 256, "depth": 3},
]
# Largest relative error of loss and gradients against the float64 reference.
# Measured in float32 on the CPU over GRID and QUICK, seeds 0 and 1, in torch
# eager, TensorFlow function/xla/eager and JAX jit: 1.5e-7 to 1.1e-6 (the
# largest at batch 2048 and depth 4), as for the tanh MLP: the hand-written
# activation and loss lose no accuracy. 1e-5 leaves a margin of 9x and still
# fails a model that is 0.1 % wrong.
TOLERANCE = 1e-5

DELTA = 1.0  # Huber threshold: targets ~ N(0, 1), so both branches are used
MOMENTUM = 0.9
# FLOPs per parameter of one update: v = MOMENTUM v + g (2), w = w - lr v (2).
UPDATE_FLOPS = 4


# --- 1. Activation: mish(x) = x * tanh(softplus(x)) ---------------------------


def mish_numpy(x):
    return x * np.tanh(np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))))


def mish_grad_numpy(x):
    """d mish / dx, by hand: tanh(sp) + x (1 - tanh(sp)^2) sigmoid(x)."""
    sp = np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))  # softplus
    t = np.tanh(sp)
    sigmoid = np.exp(x - sp)  # = e^x / (1 + e^x), accurate for x of either sign
    return t + x * (1.0 - t**2) * sigmoid


def mish_torch(x):
    import torch

    return x * torch.tanh(torch.clamp(x, min=0.0) + torch.log1p(torch.exp(-torch.abs(x))))


def mish_tensorflow(x):
    import tensorflow as tf

    return x * tf.tanh(tf.maximum(x, 0.0) + tf.math.log1p(tf.exp(-tf.abs(x))))


def mish_jax(x):
    import jax.numpy as jnp

    return x * jnp.tanh(jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x))))


# --- 2. Loss: Huber with threshold DELTA, elementwise (the model takes the mean)


def huber_numpy(r):
    a = np.abs(r)
    return np.where(a <= DELTA, 0.5 * r**2, DELTA * (a - 0.5 * DELTA))


def huber_grad_numpy(r):
    """d huber / dr, by hand: r inside the threshold, DELTA * sign(r) outside."""
    return np.where(np.abs(r) <= DELTA, r, DELTA * np.sign(r))


def huber_torch(r):
    import torch

    a = torch.abs(r)
    return torch.where(a <= DELTA, 0.5 * r**2, DELTA * (a - 0.5 * DELTA))


def huber_tensorflow(r):
    import tensorflow as tf

    a = tf.abs(r)
    return tf.where(a <= DELTA, 0.5 * r**2, DELTA * (a - 0.5 * DELTA))


def huber_jax(r):
    import jax.numpy as jnp

    a = jnp.abs(r)
    return jnp.where(a <= DELTA, 0.5 * r**2, DELTA * (a - 0.5 * DELTA))


# --- 3. Optimizer: SGD with momentum, v = MOMENTUM v + g; w = w - lr v ---------


def init_numpy(params):
    return [np.zeros_like(p) for p in params]


def update_numpy(params, grads, state, lr):
    state = [MOMENTUM * v + g for v, g in zip(state, grads, strict=True)]
    return [p - lr * v for p, v in zip(params, state, strict=True)], state


def init_torch(params):
    import torch

    return [torch.zeros_like(p) for p in params]  # plain tensors: no gradient


def update_torch(params, grads, state, lr):
    # In place, under torch.no_grad() (the harness's): the parameters stay the
    # same leaf tensors, so autograd keeps tracking them at the next step.
    for p, g, v in zip(params, grads, state, strict=True):
        v.mul_(MOMENTUM).add_(g)
        p.sub_(v, alpha=lr)
    return params, state


def init_tensorflow(params):
    import tensorflow as tf

    # Created eagerly by the harness (outside tf.function): variables must not
    # be created anew at every call of a traced function.
    return [tf.Variable(tf.zeros_like(p)) for p in params]


def update_tensorflow(params, grads, state, lr):
    # Runs inside tf.function: only TF ops and variable assignments. assign
    # returns the new value, so the parameter update uses the new velocity.
    for p, g, v in zip(params, grads, state, strict=True):
        new_v = v.assign(MOMENTUM * v + g)
        p.assign_sub(lr * new_v)
    return params, state


def init_jax(params):
    import jax.numpy as jnp

    return [jnp.zeros_like(p) for p in params]


def update_jax(params, grads, state, lr):
    state = [MOMENTUM * v + g for v, g in zip(state, grads, strict=True)]
    return [p - lr * v for p, v in zip(params, state, strict=True)], state


# --- 4. Model: problem, float64 reference, FLOPs, one loss per framework --------


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
    """Loss and gradients in float64, the derivatives of mish and Huber written out."""
    X, y = prob.X.astype(np.float64), prob.y.astype(np.float64)
    Ws = [w.astype(np.float64) for w in prob.params[0::2]]
    bs = [b.astype(np.float64) for b in prob.params[1::2]]
    hs, zs = [X], []
    for W, b in zip(Ws[:-1], bs[:-1], strict=True):
        zs.append(hs[-1] @ W + b)
        hs.append(mish_numpy(zs[-1]))
    r = hs[-1] @ Ws[-1] + bs[-1] - y
    loss = float(np.mean(huber_numpy(r)))

    d = huber_grad_numpy(r) / r.size  # dloss/dout
    grads: list[np.ndarray] = []
    for i in reversed(range(len(Ws))):
        grads = [hs[i].T @ d, d.sum(axis=0), *grads]
        if i > 0:
            d = (d @ Ws[i].T) * mish_grad_numpy(zs[i - 1])  # through mish
    return loss, grads


def flops(p: dict) -> Flops:
    """Matrix-product FLOPs, as for the MLP: the custom pieces are elementwise.

    Forward: 2*B*m*n per layer. Gradient: the forward, plus dW = H^T dZ for
    every layer, plus dH = dZ W^T for every layer but the first, whose input
    needs no gradient.
    """
    B, dims = p["batch"], _dims(p)
    layers = [2 * B * m * n for m, n in itertools.pairwise(dims)]
    forward = sum(layers)
    return Flops(forward=forward, gradient=forward + sum(layers) + sum(layers[1:]))


def memory(p: dict) -> Memory:
    """Analytic bytes of what the backward pass keeps, and of each phase's peak.

    As for the tanh MLP, every matrix product keeps its input (for dW) and
    its weight (for the gradient of its input), except the first layer's
    weight W0: its input X is data and needs no gradient. What differs is
    what the hand-written pieces keep, because the frameworks differentiate
    them through their primitives, each keeping what its own derivative
    needs. For mish, ``z * tanh(sp)`` with ``sp = max(z, 0) + log1p(e)``,
    ``e = exp(-|z|)``, on the pre-activation ``z`` of a layer:

    - the product ``z * t`` keeps both factors, ``z`` and ``t = tanh(sp)``
      (tanh also keeps ``t``, its output: the same array);
    - ``max(z, 0)`` and ``|z|`` keep their input ``z`` (again the same array),
      to know the sign; ``exp`` keeps its output ``e``, which ``log1p`` keeps
      too, as its input (1 / (1 + e)).

    So a mish layer keeps three arrays of ``B x width`` (``z``, ``e``, ``t``)
    where tanh keeps one, plus its output ``h``, which the next product keeps
    as its input: four per hidden layer. A fused mish (one operation with
    the hand-written derivative of ``reference``) would keep only ``z``.

    Huber, ``where(|r| <= DELTA, r^2 / 2, DELTA (|r| - DELTA / 2))``: ``|r|`` and
    ``r^2`` keep the residual ``r`` (B floats), and ``where`` keeps its
    condition, to send the gradient to the branch it picked: ``B`` booleans
    of one byte each.

    Saved: ``X`` + 4 arrays per hidden layer, every weight but W0, the
    residual (4 bytes each) and the mask (1 byte each). The momentum
    optimizer keeps one velocity per parameter, but between steps (the
    ``step`` phase's state), not in the forward pass: it adds nothing here.

    Peaks, in eager execution (one array per operation, freed when no longer
    referenced), with a = batch x width numbers, one activation (``X`` and
    the parameters are resident before the call):

    - forward: mish's primitives make temporaries of the size of ``z``.
      Python evaluates ``max(z, 0) + log1p(exp(-|z|))`` left to right, so
      ``max(z, 0)`` is made first and waits for the right-hand side, whose
      chain ``|z|``, ``-|z|``, ``exp``, ``log1p`` holds two arrays at once
      (each operation's input and output). A hidden layer thus holds its
      input ``h``, ``z``, ``max(z, 0)`` and two working arrays: 5 a (4 a
      with one hidden layer, whose input X was resident before the call);
    - gradient: the forward pass keeps four arrays per hidden layer (``z``,
      ``e``, ``t``, ``h``; see above), 4 a per layer. The backward pass
      starts by replacing the last ``h`` by its gradient (the output layer's
      input gradient), then the product ``z * t`` computes both of its
      input gradients: every kept array plus two working arrays, (4 depth +
      2) a. It ends, as the MLP's, holding every weight gradient (depth x
      width² x 4) plus one working array. The peak is the larger of the two.

    Huber's temporaries (``|r|``, ``r^2``, both branches, the mask, and
    their gradients) are vectors of ``batch`` numbers, since the prediction
    is ``(batch, 1)``: each is 1/width of an activation, and they are all
    freed before the backward pass reaches mish, so they never set a peak.
    """
    B, dims = p["batch"], _dims(p)
    w, d = p["width"], p["depth"]
    weights = sum(m * n for m, n in itertools.pairwise(dims))
    kept = 4 * B * w * d  # z, e = exp(-|z|), t = tanh(sp), h = mish(z) per hidden layer
    saved = 4 * (B * w + kept + (weights - dims[0] * dims[1]) + B) + B
    a = B * w
    return Memory(
        saved=saved,
        forward=4 * (4 if d == 1 else 5) * a,
        gradient=4 * max((4 * d + 2) * a, d * w * w + a),
    )


def loss_torch(params, X, y):
    import torch

    h = X
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        h = mish_torch(h @ W + b)
    return torch.mean(huber_torch(h @ params[-2] + params[-1] - y))


def loss_tensorflow(params, X, y):
    import tensorflow as tf

    h = X
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        h = mish_tensorflow(h @ W + b)
    return tf.reduce_mean(huber_tensorflow(h @ params[-2] + params[-1] - y))


def loss_jax(params, X, y):
    import jax.numpy as jnp

    h = X
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        h = mish_jax(h @ W + b)
    return jnp.mean(huber_jax(h @ params[-2] + params[-1] - y))
