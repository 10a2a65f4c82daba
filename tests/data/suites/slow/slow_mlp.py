"""The tiny MLP whose every torch call sleeps 0.05 s (tests only): a slow case, not a hung one.

One case lasts several seconds, far beyond a ``--timeout`` of 4 s, yet no
single call comes near it: the worker's heartbeat must keep it alive.
"""

import time
from pathlib import Path

from bench.catalog.loader import load_file

_mlp = load_file(Path(__file__).resolve().parents[4] / "suites" / "mlp_regression.py").module

DESCRIPTION = "tiny MLP whose torch calls sleep 0.05 s (tests)"
GRID = {"batch": [8], "width": [16], "depth": [2]}
QUICK = [{"batch": 8, "width": 16, "depth": 2}]
problem, reference, flops = _mlp.problem, _mlp.reference, _mlp.flops
CALL_S = 0.05


def loss_torch(params, X, y):
    time.sleep(CALL_S)
    return _mlp.loss_torch(params, X, y)
