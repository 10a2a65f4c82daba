"""Every suite's analytic memory against what torch and JAX really keep for the backward pass.

``memory(params).saved`` is the theory of the measured ``saved_bytes``: torch
(eager) keeps exactly what each operation's derivative needs, so it must
match the theory closely; JAX keeps at least that, and some more where its
derivative rules are written differently (tanh keeps ``h`` and ``1 - h``,
softmax its exponentials and row sums), so it is bounded on both sides.
"""

from __future__ import annotations

import itertools

import pytest
from conftest import ROOT, case_id, implement_suite, needs

from bench.discovery import Suite, load_file
from bench.spec import Memory

SUITE_NAMES = ("mlp_regression", "linear_regression", "conv_regression", "attention_regression", "custom")
SUITES = {name: load_file(ROOT / "suites" / f"{name}.py") for name in SUITE_NAMES}

# A few cheap GRID cases per suite besides QUICK: the two whose theory saves
# the fewest bytes (they build and run in milliseconds).
CHEAP_GRID = 2


def _measured_cases() -> list[tuple[str, dict[str, int]]]:
    """(suite, params) for every QUICK case and the cheapest GRID cases of every suite."""
    out = []
    for name, suite in SUITES.items():
        quick = [c.as_dict() for c in suite.cases(quick=True)]
        grid = [c.as_dict() for c in suite.cases() if c.as_dict() not in quick]
        grid.sort(key=lambda p: suite.memory(p).saved)
        out += [(name, p) for p in quick + grid[:CHEAP_GRID]]
    return out


MEASURED = _measured_cases()
each_measured = pytest.mark.parametrize(
    ("name", "params"), MEASURED, ids=[f"{n}:{case_id(p)}" for n, p in MEASURED]
)

# Every GRID (and QUICK) case of every suite, checked without a framework.
ALL_GRID = [(name, c.as_dict()) for name, suite in SUITES.items() for c in suite.cases()]
ALL_GRID += [(name, c.as_dict()) for name, suite in SUITES.items() for c in suite.cases(quick=True)]

MLP_DEPTHS = [{"batch": 256, "width": 256, "depth": d} for d in (1, 2, 4, 8)]


def measured_saved(suite: Suite, framework: str, params: dict[str, int]) -> float:
    """The bytes ``framework`` keeps from one forward pass of ``params``'s case, on the CPU."""
    prob = suite.module.problem(params, 0)
    _, _, impl = implement_suite(suite, framework, prob, 1e-3)
    return impl.saved_bytes()


def test_every_suite_declares_memory():
    for name, suite in SUITES.items():
        assert callable(getattr(suite.module, "memory", None)), name


@pytest.mark.parametrize(("name", "params"), ALL_GRID, ids=[f"{n}:{case_id(p)}" for n, p in ALL_GRID])
def test_memory_fields_are_positive_whole_bytes(name, params):
    mem = SUITES[name].memory(params)
    assert isinstance(mem, Memory)
    for value in (mem.saved, mem.forward, mem.gradient):
        assert type(value) is int and value > 0
    assert mem.ratio == mem.gradient / mem.forward > 0


@needs("torch")
@each_measured
def test_torch_keeps_what_the_theory_says(name, params):
    suite = SUITES[name]
    theory = suite.memory(params).saved
    measured = measured_saved(suite, "torch", params)
    assert measured == pytest.approx(theory, rel=0.05), f"measured / theory = {measured / theory:.4f}"


@needs("jax")
@each_measured
def test_jax_keeps_at_least_what_the_backward_pass_needs(name, params):
    suite = SUITES[name]
    theory = suite.memory(params).saved
    ratio = measured_saved(suite, "jax", params) / theory
    # At least the theory (JAX's rules never need less), at most 2.5 x (its
    # extra copies: tanh's 1 - h, softmax's exponentials, mish's primitives).
    assert 0.95 <= ratio <= 2.5, f"measured / theory = {ratio:.4f}"


def test_mlp_theory_grows_with_depth():
    mlp = SUITES["mlp_regression"]
    mems = [mlp.memory(p) for p in MLP_DEPTHS]
    saved = [m.saved for m in mems]
    ratios = [m.ratio for m in mems]
    assert all(a < b for a, b in itertools.pairwise(saved)), saved
    assert all(a < b for a, b in itertools.pairwise(ratios)), ratios


@needs("torch")
def test_mlp_torch_saved_grows_with_depth():
    mlp = SUITES["mlp_regression"]
    saved = [measured_saved(mlp, "torch", p) for p in MLP_DEPTHS]
    assert all(a < b for a, b in itertools.pairwise(saved)), saved
    # Each added hidden layer keeps one more tanh output and one more weight.
    step = 4 * (256 * 256 + 256 * 256)
    assert saved[1] - saved[0] == pytest.approx(step, rel=0.01)
