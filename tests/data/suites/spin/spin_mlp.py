"""The tiny MLP whose torch and jax losses loop forever on the batch-16 case (tests only).

A case that never ends and never sleeps: what a worker must not outlive its
runner with, and what a SIGTERM of ``bench run`` must stop.
"""

from pathlib import Path

from bench.catalog.loader import load_file

_mlp = load_file(Path(__file__).resolve().parents[4] / "suites" / "mlp_regression.py").module

DESCRIPTION = "tiny MLP that spins forever on batch 16 (tests)"
GRID = {"batch": [8, 16], "width": [16], "depth": [2]}
QUICK = [{"batch": 8, "width": 16, "depth": 2}, {"batch": 16, "width": 16, "depth": 2}]
problem, reference, flops = _mlp.problem, _mlp.reference, _mlp.flops


def _spin_on_16(loss):
    def spinning(params, X, y):
        while X.shape[0] == 16:
            pass
        return loss(params, X, y)

    return spinning


loss_torch = _spin_on_16(_mlp.loss_torch)
loss_jax = _spin_on_16(_mlp.loss_jax)
