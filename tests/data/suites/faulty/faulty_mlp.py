"""The tiny MLP whose torch implementation misbehaves on demand (tests only).

``BENCH_TEST_FAULT`` picks how the torch worker fails on the batch-16 case:
``kill`` (SIGKILL to itself, as the OOM killer would), ``hang`` (sleeps),
``raise`` (an exception), ``wrong`` (a loss that differs from the reference).
"""

import os
import signal
import time
from pathlib import Path

from bench.catalog.loader import load_file

_mlp = load_file(Path(__file__).resolve().parents[4] / "suites" / "mlp_regression.py").module

DESCRIPTION = "tiny MLP with a faulty torch implementation (tests)"
GRID = {"batch": [8, 16, 24], "width": [16], "depth": [2]}
QUICK = [{"batch": b, "width": 16, "depth": 2} for b in (8, 16, 24)]
problem, reference, flops = _mlp.problem, _mlp.reference, _mlp.flops
loss_tensorflow, loss_jax = _mlp.loss_tensorflow, _mlp.loss_jax


def loss_torch(params, X, y):
    if X.shape[0] == 16:
        fault = os.environ.get("BENCH_TEST_FAULT", "")
        if fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif fault == "hang":
            time.sleep(3600)
        elif fault == "raise":
            raise RuntimeError("injected failure")
        elif fault == "wrong":
            return 1.01 * _mlp.loss_torch(params, X, y)
    return _mlp.loss_torch(params, X, y)
