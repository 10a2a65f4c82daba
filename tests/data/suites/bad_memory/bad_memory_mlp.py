"""The tiny MLP with a broken memory theory (tests): timing must survive it.

``memory()`` raises on the batch-8 case and returns a plain dict on the
batch-16 case.
"""

from pathlib import Path

from bench.catalog.loader import load_file

_mlp = load_file(Path(__file__).resolve().parents[4] / "suites" / "mlp_regression.py").module

DESCRIPTION = "tiny MLP whose memory() is broken (tests)"
GRID = {"batch": [8, 16], "width": [16], "depth": [2]}
QUICK = [{"batch": 8, "width": 16, "depth": 2}, {"batch": 16, "width": 16, "depth": 2}]
problem, reference, flops = _mlp.problem, _mlp.reference, _mlp.flops
loss_torch, loss_tensorflow, loss_jax = _mlp.loss_torch, _mlp.loss_tensorflow, _mlp.loss_jax


def memory(p):
    if p["batch"] == 8:
        raise ZeroDivisionError("no theory here")
    return {"saved": 1}
