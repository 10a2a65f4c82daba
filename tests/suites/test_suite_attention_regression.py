"""The attention suite: its float64 reference, its three losses and its FLOP count."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    MODES,
    ROOT,
    as64,
    case_id,
    central_differences,
    implement_suite,
    installed,
    needs,
    torch_flop_counts,
)

from bench.catalog.loader import load_file
from bench.measure.equivalence import relative_error

SUITE = load_file(ROOT / "suites" / "attention_regression.py")
MOD = SUITE.module
# Every dimension different, so a transposed or swapped factor cannot go unnoticed.
TINY = {"batch": 2, "seq": 3, "dim": 4}
ODD = {"batch": 3, "seq": 5, "dim": 8}


# --- the problem and the float64 reference ---------------------------------------------------


def test_problem_has_the_declared_shapes():
    prob = MOD.problem(ODD, seed=0)
    B, T, D = ODD["batch"], ODD["seq"], ODD["dim"]
    assert prob.X.shape == (B, T, D) and prob.y.shape == (B, 1)
    assert prob.names == ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo",
                          "W1", "b1", "W2", "b2", "Wout", "bout")
    F = 4 * D
    assert [p.shape for p in prob.params] == [
        (D, D), (D,), (D, D), (D,), (D, D), (D,), (D, D), (D,),
        (D, F), (F,), (F, D), (D,), (D, 1), (1,),
    ]
    assert all(a.dtype == np.float32 for a in (prob.X, prob.y, *prob.params))
    again = MOD.problem(ODD, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(prob.params, again.params, strict=True))
    assert np.array_equal(prob.X, again.X)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_gradients_match_central_finite_differences(seed):
    prob = as64(MOD.problem(TINY, seed=seed))
    loss, grads = MOD.reference(prob)
    assert [g.shape for g in grads] == [p.shape for p in prob.params]
    assert all(g.dtype == np.float64 for g in grads)
    fd = central_differences(lambda ps: MOD.reference(as64(prob, ps))[0], prob.params, h=1e-6)
    # Truncation error ~h^2, round-off ~1e-16/h: both far below 1e-6.
    assert relative_error(loss, grads, loss, fd) < 1e-6
    # A gradient 0.1 % off would be caught.
    wrong = [1.001 * g for g in grads]
    assert relative_error(loss, wrong, loss, fd) == pytest.approx(1e-3, rel=1e-2)


def test_key_bias_gradient_is_zero():
    # Softmax ignores the constant q_t . bk added to each row of scores.
    _, grads = MOD.reference(MOD.problem(ODD, seed=0))
    scale = max(float(np.max(np.abs(g))) for g in grads)
    assert np.max(np.abs(grads[MOD.PARAM_NAMES.index("bk")])) < 1e-12 * scale


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
def test_reference_loss_is_the_torch_forward_in_float64():
    # The finite differences check the backward pass against the reference's own
    # forward pass; this checks that forward pass against torch's, independently.
    import torch

    prob = as64(MOD.problem(ODD, seed=3))
    loss, _ = MOD.reference(prob)
    with torch.no_grad():
        expected = MOD.loss_torch([torch.from_numpy(p) for p in prob.params],
                                  torch.from_numpy(prob.X), torch.from_numpy(prob.y))
    assert loss == pytest.approx(float(expected), rel=1e-12)


# --- every framework against the reference ---------------------------------------------------

# Every (framework, mode) on every quick case. Unlike ``each_mode``, torch.compile checks its
# first case in the default suite; its other cases (6 s each, a compile apiece) are slow.
FRAMEWORK_MODE_CASES = [
    pytest.param(n, m, c, id=f"{case_id(c)}-{n}-{m}",
                 marks=[needs(n), *([pytest.mark.slow] if m == "compile" and i else [])])
    for i, c in enumerate(MOD.QUICK) for n, m in MODES
]


@pytest.mark.parametrize(("name", "mode", "params"), FRAMEWORK_MODE_CASES)
def test_framework_matches_the_reference_within_the_suite_tolerance(name, mode, params):
    prob = MOD.problem(params, seed=0)
    _, _, impl = implement_suite(SUITE, name, prob, 1e-3, mode)
    loss, grads = impl.loss_and_grads()
    ref_loss, ref_grads = MOD.reference(prob)
    assert relative_error(loss, grads, ref_loss, ref_grads) < SUITE.tolerance
    assert [g.dtype for g in grads] == [np.float32] * len(grads)


@pytest.mark.skipif(not installed("tensorflow"), reason="tensorflow not installed")
def test_tensorflow_loss_compiles_with_xla():
    import tensorflow as tf

    prob = MOD.problem(MOD.QUICK[0], seed=0)
    params = [tf.Variable(p) for p in prob.params]
    X, y = tf.constant(prob.X), tf.constant(prob.y)

    @tf.function(jit_compile=True)
    def gradient():
        with tf.GradientTape() as tape:
            value = MOD.loss_tensorflow(params, X, y)
        return value, tape.gradient(value, params)

    loss, grads = gradient()
    ref_loss, ref_grads = MOD.reference(prob)
    assert relative_error(float(loss), [g.numpy() for g in grads], ref_loss, ref_grads) < SUITE.tolerance


@pytest.mark.slow
@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
def test_torch_loss_compiles_with_torch_compile():
    import torch

    prob = MOD.problem(MOD.QUICK[0], seed=0)
    params = [torch.from_numpy(p).requires_grad_(True) for p in prob.params]
    loss = torch.compile(MOD.loss_torch)(params, torch.from_numpy(prob.X), torch.from_numpy(prob.y))
    grads = torch.autograd.grad(loss, params)
    ref_loss, ref_grads = MOD.reference(prob)
    got = [g.detach().numpy() for g in grads]
    assert relative_error(float(loss.detach()), got, ref_loss, ref_grads) < SUITE.tolerance


# --- the FLOP count --------------------------------------------------------------------------


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
@pytest.mark.parametrize("params", [*MOD.QUICK, ODD], ids=[*map(case_id, MOD.QUICK), "odd"])
def test_flops_are_what_torch_flop_counter_counts(params):
    prob = MOD.problem(params, seed=0)
    expected = MOD.flops(params)
    forward, gradient = torch_flop_counts(MOD.loss_torch, prob.params, prob.X, prob.y)
    assert forward == expected.forward
    assert gradient == expected.gradient


def test_flops_match_a_hand_count():
    # batch 3, seq 5, dim 8, hidden 32.
    projections = 4 * 2 * 3 * 5 * 8 * 8  # 7680
    scores = 2 * 2 * 3 * 5 * 5 * 8  # 2400: Q K^T and P V
    mlp = 2 * 2 * 3 * 5 * 8 * 32  # 15360
    output = 2 * 3 * 8  # 48
    forward = projections + scores + mlp + output
    # Backward: two products per forward product, except no dX for X Wq, X Wk, X Wv.
    backward = 2 * forward - 3 * 2 * 3 * 5 * 8 * 8
    f = MOD.flops(ODD)
    assert (f.forward, f.gradient) == (forward, forward + backward) == (25488, 70704)


@pytest.mark.parametrize("params", [*MOD.QUICK, *SUITE.grid, TINY, ODD])
def test_theory_ratio_is_between_two_and_three(params):
    assert 2 < MOD.flops(params).ratio < 3


def test_theory_ratio_goes_from_eleven_quarters_to_three_as_seq_grows():
    # Short sequences: projections and MLP dominate, R -> (72 - 6) / 24 = 2.75.
    # Long sequences: the seq^2 terms dominate, and every one of them needs both
    # factor gradients, R -> 3.
    short = MOD.flops({"batch": 4, "seq": 1, "dim": 4096}).ratio
    long = MOD.flops({"batch": 4, "seq": 1 << 20, "dim": 4}).ratio
    assert short == pytest.approx(2.75, abs=1e-3)
    assert long == pytest.approx(3.0, abs=1e-3)
    ratios = [MOD.flops({"batch": 4, "seq": t, "dim": 64}).ratio for t in (16, 64, 256, 1024, 4096)]
    assert ratios == sorted(ratios)
