"""The custom suite: hand-written activation, loss and optimizer, each checked on its own and in use."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    FRAMEWORKS,
    ROOT,
    central_differences,
    each_case,
    each_framework,
    each_mode,
    forward_loss,
    implement_suite,
    installed,
    numpy_training_curve,
    phase,
    torch_flop_counts,
    with_params,
)

from bench.catalog.loader import load_file
from bench.core.contract import Problem
from bench.measure.equivalence import relative_error

SUITE = load_file(ROOT / "suites" / "custom.py")
cus = SUITE.module

# Small enough for finite differences over all 28 parameters, two hidden
# layers to exercise the input gradient through mish, and (seeds 0 and 1)
# residuals on both sides of the Huber threshold.
TINY = {"batch": 6, "width": 3, "depth": 2}
TRAIN_CASE = cus.QUICK[0]
LR = 0.05
DELTA = cus.DELTA

quick_cases = each_case(cus.QUICK)

# Mish from very negative (e^x underflows) to very positive (a naive
# log(1 + e^x) overflows in float32 from x = 89); Huber on both sides of
# |r| = DELTA, at it, and far out in the linear tails.
MISH_POINTS = np.array([-100.0, -20.0, -5.0, -1.5, -0.5, -1e-3, 1e-3, 0.3, 1.0, 3.0, 20.0, 100.0])
HUBER_POINTS = np.array([0.0, 0.25, DELTA - 1e-3, DELTA, DELTA + 1e-3, 2.5, 10.0])
HUBER_POINTS = np.concatenate([-HUBER_POINTS[::-1], HUBER_POINTS[1:]])


def mish_by_definition(x):
    return x * np.tanh(np.logaddexp(0.0, x))  # softplus(x) = log(e^0 + e^x)


def huber_by_definition(r):
    # The same function without a branch: quadratic up to DELTA, linear beyond.
    a = np.abs(r)
    return 0.5 * np.minimum(a, DELTA) ** 2 + DELTA * np.maximum(a - DELTA, 0.0)


def loss_by_definition(prob: Problem) -> float:
    X, y = prob.X.astype(np.float64), prob.y.astype(np.float64)
    ps = [np.asarray(p, dtype=np.float64) for p in prob.params]
    h = X
    for W, b in zip(ps[0:-2:2], ps[1:-2:2], strict=True):
        h = mish_by_definition(h @ W + b)
    return float(np.mean(huber_by_definition(h @ ps[-2] + ps[-1] - y)))


def residuals(prob: Problem) -> np.ndarray:
    X = prob.X.astype(np.float64)
    ps = [np.asarray(p, dtype=np.float64) for p in prob.params]
    h = X
    for W, b in zip(ps[0:-2:2], ps[1:-2:2], strict=True):
        h = cus.mish_numpy(h @ W + b)
    return h @ ps[-2] + ps[-1] - prob.y


def numpy_curve(prob: Problem, momentum: bool = True, steps: int = 20) -> list[float]:
    """The float64 training curve: ``reference`` gradients, the suite's NumPy optimizer (or SGD)."""
    return numpy_training_curve(cus.reference, prob, LR, steps, cus if momentum else None)


def value_and_derivative(name: str, fn, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fn and its elementwise derivative by the framework's autodiff, in float32, as float64."""
    x32 = points.astype(np.float32)
    if name == "torch":
        import torch

        x = torch.tensor(x32, requires_grad=True)
        out = fn(x)
        (grad,) = torch.autograd.grad(out.sum(), x)
        return out.detach().numpy().astype(np.float64), grad.numpy().astype(np.float64)
    if name == "tensorflow":
        import tensorflow as tf

        @tf.function  # traced: the functions must be graph-safe (no Python if on values)
        def both(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = fn(x)
            return out, tape.gradient(out, x)

        out, grad = both(tf.constant(x32))
        return out.numpy().astype(np.float64), grad.numpy().astype(np.float64)
    import jax
    import jax.numpy as jnp

    out, vjp = jax.jit(lambda x: jax.vjp(fn, x))(jnp.asarray(x32))  # traced, as under jit
    (grad,) = vjp(jnp.ones_like(out))
    return np.asarray(out, np.float64), np.asarray(grad, np.float64)


# --- the model: layout, reference, frameworks, FLOPs -----------------------------


def test_problem_has_the_canonical_layout():
    prob = cus.problem(TINY, seed=0)
    assert prob.X.shape == (6, 3) and prob.y.shape == (6, 1)
    assert prob.names == ("W0", "b0", "W1", "b1", "W2", "b2")
    assert [p.shape for p in prob.params] == [(3, 3), (3,), (3, 3), (3,), (3, 1), (1,)]
    assert all(a.dtype == np.float32 for a in (prob.X, prob.y, *prob.params))


@pytest.mark.parametrize("seed", [0, 1])
def test_reference_gradients_match_central_finite_differences(seed):
    prob = cus.problem(TINY, seed=seed)
    r = np.abs(residuals(prob))
    assert (r < DELTA).any() and (r > DELTA).any()  # both branches of the Huber loss in play
    params = [p.astype(np.float64) for p in prob.params]
    loss, grads = cus.reference(prob)
    assert loss == pytest.approx(loss_by_definition(prob), rel=1e-12)
    assert [g.shape for g in grads] == [p.shape for p in prob.params]
    fd = central_differences(lambda ps: loss_by_definition(with_params(prob, ps)), params, h=1e-6)
    # Truncation error ~h^2, round-off ~1e-16/h: both far below 1e-6.
    assert relative_error(loss, grads, loss, fd) < 1e-6
    assert relative_error(loss, [1.001 * g for g in grads], loss, fd) > 5e-4


@each_framework
@quick_cases
def test_framework_matches_the_reference_within_tolerance(name, case):
    prob = cus.problem(case, seed=0)
    fw, device, impl = implement_suite(SUITE, name, prob, LR)
    loss, grads = impl.loss_and_grads()
    ref_loss, ref_grads = cus.reference(prob)
    assert relative_error(loss, grads, ref_loss, ref_grads) < SUITE.tolerance
    assert [g.shape for g in grads] == [p.shape for p in prob.params]
    assert forward_loss(fw, device, impl) == pytest.approx(ref_loss, rel=SUITE.tolerance)


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
@each_case([TINY, *cus.QUICK, *cus.GRID])
def test_flops_equal_torch_flop_counter(case):
    prob = cus.problem(case, seed=0)
    forward, gradient = torch_flop_counts(cus.loss_torch, prob.params, prob.X, prob.y)
    expected = cus.flops(case)
    assert (forward, gradient) == (expected.forward, expected.gradient)


def test_flops_match_a_hand_count():
    # Two 3x3 hidden layers and a 3x1 output, batch 6: 2*6*9 = 108 FLOPs each, 36 for the output.
    forward = 108 + 108 + 36
    gradient = forward + forward + (108 + 36)  # no input gradient for the first layer
    f = cus.flops(TINY)
    assert (f.forward, f.gradient) == (forward, gradient) == (252, 648)


def test_grid_cases_are_valid_and_few():
    cases = SUITE.cases()
    assert 1 <= len(cases) <= 8
    assert len({c.id for c in cases}) == len(cases)
    assert len(SUITE.cases(quick=True)) == 2
    assert SUITE.frameworks == FRAMEWORKS
    for c in cases:
        assert 2 < cus.flops(c.as_dict()).ratio < 3


# --- degree of flexibility 1: the activation ------------------------------------


def test_numpy_mish_and_its_hand_derivative_are_right():
    x = MISH_POINTS
    np.testing.assert_allclose(cus.mish_numpy(x), mish_by_definition(x), rtol=1e-14, atol=1e-300)
    h = 1e-6
    fd = (mish_by_definition(x + h) - mish_by_definition(x - h)) / (2 * h)
    np.testing.assert_allclose(cus.mish_grad_numpy(x), fd, rtol=1e-8, atol=1e-12)


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
def test_numpy_mish_equals_torchs_builtin_in_float64():
    import torch

    x = torch.tensor(MISH_POINTS, dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.mish(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    np.testing.assert_allclose(cus.mish_numpy(MISH_POINTS), out.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(cus.mish_grad_numpy(MISH_POINTS), grad.numpy(), rtol=1e-12, atol=1e-300)


@each_framework
def test_hand_written_mish_matches_the_float64_reference(name):
    x = MISH_POINTS.astype(np.float32).astype(np.float64)
    value, grad = value_and_derivative(name, getattr(cus, f"mish_{name}"), x)
    assert np.isfinite(value).all() and np.isfinite(grad).all()  # no overflow at +-100
    np.testing.assert_allclose(value, cus.mish_numpy(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad, cus.mish_grad_numpy(x), rtol=1e-6, atol=1e-7)


# --- degree of flexibility 2: the loss -------------------------------------------


def test_numpy_huber_and_its_hand_derivative_are_right():
    r = HUBER_POINTS
    np.testing.assert_allclose(cus.huber_numpy(r), huber_by_definition(r), rtol=1e-15)
    # The kink is in the second derivative only: value and slope meet at +-DELTA.
    assert cus.huber_numpy(np.array([DELTA]))[0] == pytest.approx(DELTA * (DELTA - 0.5 * DELTA))
    assert cus.huber_grad_numpy(np.array([-DELTA, DELTA])).tolist() == [-DELTA, DELTA]
    away = np.abs(np.abs(r) - DELTA) > 1e-4  # central differences need no kink within h
    h = 1e-7
    fd = (huber_by_definition(r + h) - huber_by_definition(r - h)) / (2 * h)
    np.testing.assert_allclose(cus.huber_grad_numpy(r)[away], fd[away], rtol=1e-7, atol=1e-9)


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
def test_numpy_huber_equals_torchs_builtin_in_float64():
    import torch

    r = torch.tensor(HUBER_POINTS, dtype=torch.float64)
    builtin = torch.nn.functional.huber_loss(r, torch.zeros_like(r), reduction="none", delta=DELTA)
    np.testing.assert_allclose(cus.huber_numpy(HUBER_POINTS), builtin.numpy(), rtol=1e-15)


@each_framework
def test_hand_written_huber_matches_the_float64_reference_on_both_sides_of_delta(name):
    r = HUBER_POINTS.astype(np.float32).astype(np.float64)
    assert (np.abs(r) < DELTA).any() and (np.abs(r) > DELTA).any()
    value, grad = value_and_derivative(name, getattr(cus, f"huber_{name}"), r)
    np.testing.assert_allclose(value, cus.huber_numpy(r), rtol=1e-6, atol=0)
    np.testing.assert_allclose(grad, cus.huber_grad_numpy(r), rtol=1e-6, atol=0)


# --- degree of flexibility 3: the optimizer --------------------------------------


def test_numpy_momentum_is_momentum():
    # v1 = g, v2 = 0.9 g + g; the first step is plain SGD's, the second is not.
    w, g, lr = [np.array([1.0, -2.0])], [np.array([0.5, 0.25])], 0.1
    state = cus.init_numpy(w)
    w1, state = cus.update_numpy(w, g, state, lr)
    np.testing.assert_allclose(w1[0], w[0] - lr * g[0])
    w2, state = cus.update_numpy(w1, g, state, lr)
    np.testing.assert_allclose(state[0], (1 + cus.MOMENTUM) * g[0])
    np.testing.assert_allclose(w2[0], w1[0] - lr * (1 + cus.MOMENTUM) * g[0])
    assert cus.MOMENTUM == 0.9


def test_momentum_changes_the_float64_training_curve():
    prob = cus.problem(TRAIN_CASE, seed=0)
    momentum, sgd = numpy_curve(prob), numpy_curve(prob, momentum=False)
    # Losses before steps 1 and 2 agree (the first update is SGD's); after that they part.
    np.testing.assert_allclose(momentum[:2], sgd[:2], rtol=1e-12)
    assert momentum[-1] < 0.5 * sgd[-1]
    assert np.min(np.abs(np.array(momentum[2:]) / np.array(sgd[2:]) - 1)) > 1e-3


@each_mode
def test_momentum_steps_follow_the_float64_training_curve(name, mode):
    prob = cus.problem(TRAIN_CASE, seed=0)
    assert SUITE.optimizer(name) is not None
    curve = implement_suite(SUITE, name, prob, LR, mode)[2].train(20)
    expected = numpy_curve(prob)
    assert curve[-1] < 0.2 * curve[0]  # it learns
    np.testing.assert_allclose(curve, expected, rtol=1e-4)
    # ... and the framework really uses momentum, not the harness's plain SGD.
    sgd = numpy_curve(prob, momentum=False)
    assert abs(curve[-1] / sgd[-1] - 1) > 0.5


@each_framework
def test_without_the_suites_optimizer_the_framework_falls_back_to_sgd(name):
    prob = cus.problem(TRAIN_CASE, seed=0)
    curve = implement_suite(SUITE, name, prob, LR, plain_sgd=True)[2].train(20)
    np.testing.assert_allclose(curve, numpy_curve(prob, momentum=False), rtol=1e-4)


@each_framework
def test_the_timed_step_trains_its_own_copy_with_its_own_velocity(name):
    prob = cus.problem(TRAIN_CASE, seed=0)
    fw, device, impl = implement_suite(SUITE, name, prob, LR)
    step = phase(impl, "step")
    for _ in range(3):
        fw.sync(step.run(None), device)
    ref_loss = cus.reference(prob)[0]
    assert impl.loss_and_grads()[0] == pytest.approx(ref_loss, rel=1e-5)
    # A fresh training run starts from the initial parameters with zero velocity.
    np.testing.assert_allclose(impl.train(3), numpy_curve(prob, steps=3), rtol=1e-5)
