"""The conv_regression suite: its float64 reference, its three losses and its FLOP count."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    ROOT,
    as64,
    central_differences,
    each_case,
    each_framework,
    forward_loss,
    implement_suite,
    installed,
    torch_flop_counts,
)

from bench.catalog.loader import load_file
from bench.core.contract import Problem
from bench.measure.equivalence import relative_error

SUITE = load_file(ROOT / "suites" / "conv_regression.py")
conv = SUITE.module

# Small enough for finite differences over every parameter (about 40 of them),
# deep enough (two layers) to exercise the input gradient between conv layers,
# and an even kernel so that no symmetry hides a flipped one.
TINY = {"batch": 3, "length": 9, "channels": 2, "depth": 2, "kernel": 4}

quick_cases = each_case(conv.QUICK)


def loss_by_loops(prob: Problem) -> float:
    """The model's definition, one output at a time: no im2col, no shared code."""
    X, y = prob.X.astype(np.float64), prob.y.astype(np.float64)
    ps = [np.asarray(p, dtype=np.float64) for p in prob.params]
    h = X
    for W, b in zip(ps[0:-2:2], ps[1:-2:2], strict=True):
        K = W.shape[0]
        L_out = h.shape[1] - K + 1
        z = np.empty((h.shape[0], L_out, W.shape[2]))
        for t in range(L_out):
            z[:, t] = b + sum(h[:, t + j] @ W[j] for j in range(K))
        h = np.tanh(z)
    out = h.mean(axis=1) @ ps[-2] + ps[-1]
    return float(np.mean((out - y) ** 2))


def test_problem_has_the_canonical_layout():
    prob = conv.problem(TINY, seed=0)
    assert prob.X.shape == (3, 9, 2) and prob.y.shape == (3, 1)
    assert prob.names == ("W0", "b0", "W1", "b1", "W_out", "b_out")
    assert [p.shape for p in prob.params] == [(4, 2, 2), (2,), (4, 2, 2), (2,), (2, 1), (1,)]
    assert all(a.dtype == np.float32 for a in (prob.X, prob.y, *prob.params))
    again = conv.problem(TINY, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(prob.params, again.params, strict=True))


def test_a_length_too_short_for_the_stack_is_refused():
    with pytest.raises(ValueError, match="too short"):
        conv.problem({**TINY, "length": 6}, seed=0)  # two layers of kernel 4 need 7 steps


@pytest.mark.parametrize("seed", [0, 1])
def test_reference_gradients_match_central_finite_differences(seed):
    prob = as64(conv.problem(TINY, seed=seed))
    loss, grads = conv.reference(prob)
    assert loss == pytest.approx(loss_by_loops(prob), rel=1e-12)
    assert [g.shape for g in grads] == [p.shape for p in prob.params]
    fd = central_differences(lambda ps: loss_by_loops(as64(prob, ps)), prob.params, h=1e-6)
    # Truncation error ~h^2, round-off ~1e-16/h: both far below 1e-6.
    assert relative_error(loss, grads, loss, fd) < 1e-6
    # A gradient 0.1 % off would be caught at that tolerance.
    assert relative_error(loss, [1.001 * g for g in grads], loss, fd) > 5e-4


@each_framework
@quick_cases
def test_framework_matches_the_reference_within_tolerance(name, case):
    prob = conv.problem(case, seed=0)
    fw, device, impl = implement_suite(SUITE, name, prob, 1e-3)
    loss, grads = impl.loss_and_grads()
    ref_loss, ref_grads = conv.reference(prob)
    assert relative_error(loss, grads, ref_loss, ref_grads) < SUITE.tolerance
    assert [g.shape for g in grads] == [p.shape for p in prob.params]
    # The forward phase computes the same loss without recording a tape.
    assert forward_loss(fw, device, impl) == pytest.approx(ref_loss, rel=SUITE.tolerance)


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
@quick_cases
def test_flops_equal_torch_flop_counter(case):
    prob = conv.problem(case, seed=0)
    forward, gradient = torch_flop_counts(conv.loss_torch, prob.params, prob.X, prob.y)
    expected = conv.flops(case)
    assert (forward, gradient) == (expected.forward, expected.gradient)


def test_flops_match_a_hand_count():
    # Lengths 9 -> 6 -> 3; each conv output step costs 2*K*C*C = 32 FLOPs per example.
    conv0, conv1, dense = 2 * 3 * 6 * 4 * 2 * 2, 2 * 3 * 3 * 4 * 2 * 2, 2 * 3 * 2
    forward = conv0 + conv1 + dense
    gradient = forward + (conv0 + conv1 + dense) + (conv1 + dense)  # no input grad for conv0
    f = conv.flops(TINY)
    assert (f.forward, f.gradient) == (forward, gradient) == (876, 2052)


@pytest.mark.parametrize("case", [*conv.QUICK, *conv.GRID, TINY])
def test_theory_ratio_is_between_two_and_three(case):
    f = conv.flops(case)
    assert 2 <= f.ratio <= 3
    assert f.ratio < 3 - 1 / case["depth"] + 1e-3  # 'valid' makes the first layer the largest


def test_grid_cases_are_valid_and_few():
    cases = SUITE.cases()
    assert 1 <= len(cases) <= 12
    assert len({c.id for c in cases}) == len(cases)
    for c in [*cases, *SUITE.cases(quick=True)]:
        conv.flops(c.as_dict())  # raises on a length too short for the stack
