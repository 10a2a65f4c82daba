"""The equivalence check, and the float64 reference and FLOP count of the MLP suite."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import ROOT, as64, central_differences

from bench.catalog.loader import load_file
from bench.core.contract import Problem
from bench.measure.equivalence import relative_error

SUITE_FILE = ROOT / "suites" / "mlp_regression.py"


@pytest.fixture(scope="module")
def mlp():
    return load_file(SUITE_FILE).module


# --- relative_error --------------------------------------------------------------------------


def grads_like(seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 2)), rng.standard_normal(2)]


def test_identical_is_zero():
    g = grads_like()
    assert relative_error(1.5, g, 1.5, [a.copy() for a in g]) == 0.0
    assert relative_error(0.0, [], 0.0, []) == 0.0
    assert relative_error(1.0, [np.zeros((0, 3))], 1.0, [np.zeros((0, 3))]) == 0.0


def test_gradient_error_is_relative_to_the_gradients_scale():
    g = grads_like()
    scale = max(float(np.max(np.abs(a))) for a in g)
    # Perturb one entry of each array by 1e-3 of the whole gradient's largest entry.
    for k in range(len(g)):
        bumped = [a.copy() for a in g]
        bumped[k].flat[0] += 1e-3 * scale
        assert relative_error(1.0, bumped, 1.0, g) == pytest.approx(1e-3)
        # The same relative perturbation at any scale gives the same error.
        for c in (1e-8, 1e8):
            got = relative_error(c, [c * a for a in bumped], c, [c * a for a in g])
            assert got == pytest.approx(1e-3)
    # The largest difference wins, whichever array holds it.
    two = [a.copy() for a in g]
    two[0].flat[0] += 1e-4 * scale
    two[1].flat[-1] -= 5e-3 * scale
    assert relative_error(1.0, two, 1.0, g) == pytest.approx(5e-3)


def test_near_zero_entries_and_arrays_cannot_blow_it_up():
    # An entry 100 % off elementwise but 1e-12 of the gradient's scale.
    got, ref = [np.array([1.0, 2e-12])], [np.array([1.0, 1e-12])]
    assert relative_error(1.0, got, 1.0, ref) == pytest.approx(1e-12)
    # A whole array near zero (an output bias gradient that nearly cancels over the
    # batch): its round-off is measured against the whole gradient, not its own sum.
    ref = [np.array([[0.5, -2.0], [1.0, 0.25]]), np.array([1e-9])]
    got = [ref[0].copy(), np.array([3e-9])]
    assert relative_error(1.0, got, 1.0, ref) == pytest.approx(2e-9 / 2.0)


def test_loss_error_is_relative_and_the_larger_wins():
    g = grads_like()
    assert relative_error(2.0, g, 1.0, g) == pytest.approx(1.0)
    assert relative_error(100.5, g, 100.0, g) == pytest.approx(0.005)
    assert relative_error(-100.5, g, -100.0, g) == pytest.approx(0.005)
    scale = max(float(np.max(np.abs(a))) for a in g)
    off = [g[0], g[1] + 0.5 * scale]
    assert relative_error(100.5, off, 100.0, g) == pytest.approx(0.5)
    assert relative_error(0.0, g, 0.0, g) == 0.0
    assert relative_error(1e-3, g, 0.0, g) > 1e100  # any error against a zero loss is huge


def test_shape_mismatch_and_missing_gradient_are_infinite():
    g = grads_like()
    assert relative_error(1.0, [g[0].T, g[1]], 1.0, g) == math.inf
    assert relative_error(1.0, [g[0], g[1][None, :]], 1.0, g) == math.inf
    assert relative_error(1.0, g[:1], 1.0, g) == math.inf
    assert relative_error(1.0, [*g, g[1]], 1.0, g) == math.inf
    assert relative_error(1.0, [], 1.0, g) == math.inf


def test_nan_loss_propagates():
    g = grads_like()
    assert math.isnan(relative_error(math.nan, g, 1.0, g))
    assert math.isnan(relative_error(1.0, g, math.nan, g))


def test_nan_gradient_propagates():
    # Python's max(x, nan) is x: folding array errors with max() must not drop a NaN.
    g = grads_like()
    bad = [g[0].copy(), g[1]]
    bad[0][1, 1] = math.nan
    assert math.isnan(relative_error(1.0, bad, 1.0, g))
    assert math.isnan(relative_error(1.0, [g[0], np.full_like(g[1], math.nan)], 1.0, g))
    assert math.isnan(relative_error(1.0, g, 1.0, bad))
    # A NaN is not hidden by a larger finite error elsewhere either.
    assert math.isnan(relative_error(5.0, bad, 1.0, g))


# --- the MLP suite's float64 reference -------------------------------------------------------

TINY = {"batch": 4, "width": 3, "depth": 2}


def loss_by_hand(prob: Problem) -> float:
    """depth=2: two tanh layers of width 3, then a linear output, mean squared error."""
    W0, b0, W1, b1, W2, b2 = (np.asarray(p, dtype=np.float64) for p in prob.params)
    X, y = prob.X.astype(np.float64), prob.y.astype(np.float64)
    h1 = np.tanh(X @ W0 + b0)
    h2 = np.tanh(h1 @ W1 + b1)
    out = h2 @ W2 + b2
    return float(np.mean((out - y) ** 2))


def test_problem_has_the_declared_shapes(mlp):
    prob = mlp.problem(TINY, seed=0)
    assert prob.X.shape == (4, 3) and prob.y.shape == (4, 1)
    assert prob.names == ("W0", "b0", "W1", "b1", "W2", "b2")
    assert [p.shape for p in prob.params] == [(3, 3), (3,), (3, 3), (3,), (3, 1), (1,)]
    assert all(a.dtype == np.float32 for a in (prob.X, prob.y, *prob.params))
    # Same seed, same arrays: every framework starts from the same model.
    again = mlp.problem(TINY, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(prob.params, again.params, strict=True))


def test_reference_loss_is_the_forward_pass(mlp):
    prob = mlp.problem(TINY, seed=1)
    loss, grads = mlp.reference(prob)
    assert loss == pytest.approx(loss_by_hand(prob), rel=1e-12)
    assert [g.shape for g in grads] == [p.shape for p in prob.params]
    assert all(g.dtype == np.float64 for g in grads)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_gradients_match_central_finite_differences(mlp, seed):
    prob = as64(mlp.problem(TINY, seed=seed))
    loss, grads = mlp.reference(prob)
    fd = central_differences(lambda ps: loss_by_hand(as64(prob, ps)), prob.params, h=1e-6)
    # Truncation error ~h^2, round-off ~1e-16/h: both far below 1e-6.
    assert relative_error(loss, grads, loss_by_hand(prob), fd) < 1e-6
    # And a gradient 0.1 % off would be caught at that tolerance.
    wrong = [1.001 * g for g in grads]
    assert relative_error(loss, wrong, loss_by_hand(prob), fd) == pytest.approx(1e-3, rel=1e-2)


# --- the MLP suite's FLOP count --------------------------------------------------------------


def test_flops_match_a_hand_count(mlp):
    # dims 3 -> 3 -> 3 -> 1, batch 4: matrix products of 2*B*m*n FLOPs.
    square = 2 * 4 * 3 * 3  # 72, each of the two hidden layers
    out = 2 * 4 * 3 * 1  # 24, the output layer
    forward = 2 * square + out  # 168
    # Gradient: the forward, dW for all three layers, dX for all but the first.
    gradient = forward + (2 * square + out) + (square + out)  # 432
    f = mlp.flops(TINY)
    assert (f.forward, f.gradient) == (forward, gradient) == (168, 432)
    assert f.ratio == pytest.approx(18 / 7)


def exact_ratio(depth: int, width: int) -> float:
    """R with the output layer kept: L square layers of w^2, one w x 1 output layer.

    forward = 2B(L w^2 + w); gradient = 2 forward + 2B((L - 1) w^2 + w),
    so R = ((3L - 1) w + 3) / (L w + 1), which tends to 3 - 1/L as w grows.
    """
    L, w = depth, width
    return ((3 * L - 1) * w + 3) / (L * w + 1)


@pytest.mark.parametrize("depth", [1, 2, 4, 7])
@pytest.mark.parametrize("width", [3, 128, 512])
@pytest.mark.parametrize("batch", [1, 64])
def test_theory_ratio_has_the_exact_output_layer_term(mlp, depth, width, batch):
    f = mlp.flops({"batch": batch, "width": width, "depth": depth})
    assert f.ratio == pytest.approx(exact_ratio(depth, width), rel=1e-12)
    assert f.forward == 2 * batch * (depth * width**2 + width)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_theory_ratio_approaches_three_minus_one_over_depth(mlp, depth):
    limit = 3 - 1 / depth
    gaps = [abs(mlp.flops({"batch": 8, "width": w, "depth": depth}).ratio - limit) for w in (16, 256, 4096)]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-3
    # The output layer's share is about 1/w: the gap shrinks ~16x per 16x width.
    assert gaps[1] == pytest.approx(gaps[0] / 16, rel=0.1)
