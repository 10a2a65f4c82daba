"""Every suite's analytic FLOPs against the counters of torch and XLA.

torch's ``FlopCounterMode`` counts exactly what the suites count (matrix
products and convolutions), so the two must agree to the FLOP. XLA's
``cost_analysis`` also counts elementwise work (bias adds, activations, the
loss), so its count must be at least the analytic one and exceed it only by
that elementwise share: at most 30 % on the small QUICK cases, where a bias add
or a tanh per unit weighs most against 2 x fan-in FLOPs of matrix product.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, installed, torch_flop_counts

from bench.catalog.discovery import load_dir

SUITES, _ = load_dir(ROOT / "suites")
CASES = [pytest.param(s, c, id=f"{s.name}[{c.id}]") for s in SUITES for c in s.cases(quick=True)]
XLA_ELEMENTWISE_SHARE = 0.30


@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
@pytest.mark.parametrize(("suite", "case"), CASES)
def test_analytic_flops_equal_torch_flop_counter(suite, case):
    params = case.as_dict()
    prob = suite.module.problem(params, 0)
    forward, gradient = torch_flop_counts(suite.loss("torch"), prob.params, prob.X, prob.y)

    expected = suite.module.flops(params)
    assert forward == expected.forward
    assert gradient == expected.gradient


@pytest.mark.skipif(not installed("jax"), reason="jax not installed")
@pytest.mark.parametrize(("suite", "case"), CASES)
def test_xla_cost_analysis_counts_the_same_products_plus_elementwise_work(suite, case):
    import jax
    import jax.numpy as jnp

    params = case.as_dict()
    prob = suite.module.problem(params, 0)
    args = ([jnp.asarray(p) for p in prob.params], jnp.asarray(prob.X), jnp.asarray(prob.y))
    loss = suite.loss("jax")

    def xla_flops(fn) -> float:
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
        return float((cost[0] if isinstance(cost, list) else cost)["flops"])

    expected = suite.module.flops(params)
    for counted, analytic in [(xla_flops(loss), expected.forward),
                              (xla_flops(jax.value_and_grad(loss)), expected.gradient)]:
        assert analytic <= counted <= analytic * (1 + XLA_ELEMENTWISE_SHARE)
