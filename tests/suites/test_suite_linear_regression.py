"""The linear_regression suite: its closed-form reference, its three losses, training and FLOPs."""

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
    torch_flop_counts,
    with_params,
)

from bench.catalog.loader import load_file
from bench.core.contract import Problem
from bench.measure.equivalence import relative_error

SUITE = load_file(ROOT / "suites" / "linear_regression.py")
lin = SUITE.module

TINY = {"batch": 7, "features": 4}
TRAIN_CASE = lin.QUICK[0]
LR = 0.05  # stable: the Hessian 2/N X^T X has eigenvalues near 2 (up to about 4)

quick_cases = each_case(lin.QUICK)


def loss_by_loops(prob: Problem) -> float:
    """The definition, one example and one feature at a time: no matrix products."""
    X, y = prob.X.astype(np.float64), prob.y.astype(np.float64)
    w, b = (np.asarray(p, dtype=np.float64) for p in prob.params)
    total = 0.0
    for i in range(X.shape[0]):
        pred = b[0] + sum(X[i, j] * w[j, 0] for j in range(X.shape[1]))
        total += (pred - y[i, 0]) ** 2
    return total / X.shape[0]


def test_problem_has_the_canonical_layout():
    prob = lin.problem(TINY, seed=0)
    assert prob.X.shape == (7, 4) and prob.y.shape == (7, 1)
    assert prob.names == ("w", "b")
    # w is a (features, 1) matrix, not a vector: see the module docstring.
    assert [p.shape for p in prob.params] == [(4, 1), (1,)]
    assert all(a.dtype == np.float32 for a in (prob.X, prob.y, *prob.params))
    again = lin.problem(TINY, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(prob.params, again.params, strict=True))
    assert np.array_equal(prob.y, again.y)


def test_targets_come_from_a_planted_model_that_training_can_find():
    # Least squares on a large batch recovers a fit down to the noise level 0.1^2.
    prob = lin.problem({"batch": 4096, "features": 8}, seed=0)
    X = np.hstack([prob.X, np.ones((4096, 1), np.float32)]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(X, prob.y.astype(np.float64), rcond=None)
    best = float(np.mean((X @ coef - prob.y) ** 2))
    assert 0.008 < best < 0.012
    assert lin.reference(prob)[0] > 10 * best  # the random start is far from it


@pytest.mark.parametrize("seed", [0, 1])
def test_reference_gradients_match_central_finite_differences(seed):
    prob = lin.problem(TINY, seed=seed)
    params = [p.astype(np.float64) for p in prob.params]
    loss, grads = lin.reference(prob)
    assert loss == pytest.approx(loss_by_loops(prob), rel=1e-12)
    assert [g.shape for g in grads] == [p.shape for p in prob.params]
    fd = central_differences(lambda ps: loss_by_loops(with_params(prob, ps)), params, h=1e-6)
    # The loss is quadratic: central differences are exact up to round-off (~1e-10).
    assert relative_error(loss, grads, loss, fd) < 1e-7
    assert relative_error(loss, [1.001 * g for g in grads], loss, fd) > 5e-4


@each_framework
@quick_cases
def test_framework_matches_the_reference_within_tolerance(name, case):
    prob = lin.problem(case, seed=0)
    fw, device, impl = implement_suite(SUITE, name, prob, LR, plain_sgd=True)
    loss, grads = impl.loss_and_grads()
    ref_loss, ref_grads = lin.reference(prob)
    assert relative_error(loss, grads, ref_loss, ref_grads) < SUITE.tolerance
    assert [g.shape for g in grads] == [p.shape for p in prob.params]
    assert [g.dtype for g in grads] == [np.float32] * 2
    assert forward_loss(fw, device, impl) == pytest.approx(ref_loss, rel=SUITE.tolerance)


@each_mode
def test_sgd_steps_follow_the_float64_training_curve(name, mode):
    prob = lin.problem(TRAIN_CASE, seed=0)
    assert SUITE.optimizer(name) is None  # plain SGD: the harness's own update
    curve = implement_suite(SUITE, name, prob, LR, mode, plain_sgd=True)[2].train(20)
    expected = numpy_training_curve(lin.reference, prob, LR)
    assert curve[-1] < 0.5 * curve[0]  # it learns
    np.testing.assert_allclose(curve, expected, rtol=1e-4)


def torch_counts(case: dict, vector_w: bool = False) -> tuple[int, int]:
    """FlopCounterMode's (forward, gradient) for the case; ``vector_w``: with w and y as vectors."""
    prob = lin.problem(case, seed=0)
    (w, b), y = prob.params, prob.y
    if vector_w:
        w, y = w[:, 0], y[:, 0]
    return torch_flop_counts(lin.loss_torch, [w, b], prob.X, y)


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
@each_case([TINY, *lin.QUICK, *lin.GRID])
def test_flops_equal_torch_flop_counter(case):
    expected = lin.flops(case)
    assert torch_counts(case) == (expected.forward, expected.gradient)


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
def test_a_vector_w_would_hide_the_products_from_the_counter():
    # X @ w with w of shape (features,) is aten.mv, which FlopCounterMode does
    # not count: why the suite keeps w a (features, 1) matrix (aten.mm).
    assert torch_counts(TINY, vector_w=True) == (0, 0)


def test_flops_match_a_hand_count():
    f = lin.flops(TINY)
    assert (f.forward, f.gradient) == (2 * 7 * 4, 4 * 7 * 4) == (56, 112)


@pytest.mark.parametrize("case", [*lin.QUICK, *lin.GRID, TINY])
def test_theory_ratio_is_exactly_two(case):
    assert lin.flops(case).ratio == 2.0


def test_grid_cases_are_valid_and_few():
    cases = SUITE.cases()
    assert 1 <= len(cases) <= 12
    assert len({c.id for c in cases}) == len(cases)
    assert 2 <= len(SUITE.cases(quick=True)) <= 3
    assert SUITE.frameworks == FRAMEWORKS
