"""The tiny MLP whose torch calls sleep 0.02 s (tests only): four cases of a second or two each.

Fleet tests kill a machine between its cases; the pause makes "between" last.
"""

import time
from pathlib import Path

from bench.catalog.loader import load_file

_mlp = load_file(Path(__file__).resolve().parents[4] / "suites" / "mlp_regression.py").module

DESCRIPTION = "tiny MLP whose torch calls sleep 0.02 s (tests)"
GRID = {"batch": [8, 16, 32, 64], "width": [16], "depth": [2]}
QUICK = [{"batch": b, "width": 16, "depth": 2} for b in (8, 16, 32, 64)]
problem, reference, flops = _mlp.problem, _mlp.reference, _mlp.flops


def loss_torch(params, X, y):
    time.sleep(0.02)
    return _mlp.loss_torch(params, X, y)
