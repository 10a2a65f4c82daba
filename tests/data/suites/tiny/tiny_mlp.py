"""A tiny MLP for tests: the real mlp_regression suite with a smaller grid."""

from pathlib import Path

from bench.catalog.loader import load_file

_mlp = load_file(Path(__file__).resolve().parents[4] / "suites" / "mlp_regression.py").module

DESCRIPTION = "tiny MLP (tests)"
GRID = {"batch": [8, 16], "width": [16], "depth": [2]}
QUICK = [{"batch": 8, "width": 16, "depth": 2}, {"batch": 16, "width": 16, "depth": 2}]
problem, reference, flops, memory = _mlp.problem, _mlp.reference, _mlp.flops, _mlp.memory
loss_torch, loss_tensorflow, loss_jax = _mlp.loss_torch, _mlp.loss_tensorflow, _mlp.loss_jax
