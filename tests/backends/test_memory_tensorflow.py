"""TensorFlow's allocator statistics, the path its GPU peaks take, run on the CPU.

TensorFlow's CPU allocator counts nothing by default (the rows say so and
stay NaN); with ``TF_CPU_ALLOCATOR_USE_BFC=true`` its BFC allocator counts,
and bench reads it through the same ``get_memory_info`` code as on a GPU.
The variable must be set before TensorFlow starts: hence a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from conftest import needs

SCRIPT = r"""
import json, sys
sys.path.insert(0, "tests")
from pathlib import Path
from conftest import implement_suite
from bench.catalog.discovery import load_file
from bench.backends import tensorflow as tfmod
s = load_file(Path("suites/mlp_regression.py"))
out = {"method": tfmod.MEMORY_METHOD["cpu"]}
for depth in (1, 4):
    p = {"batch": 1024, "width": 512, "depth": depth}
    fw, dev, impl = implement_suite(s, "tensorflow", s.module.problem(p, 0), 1e-3)
    out[depth] = {ph.name: impl.peak_bytes(ph) for ph in impl.phases}
    out[f"saved{depth}"] = impl.saved_bytes()
print(json.dumps(out))
"""
ACTIVATION = 4 * 1024 * 512


def run(bfc: bool) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CPU_ALLOCATOR_USE_BFC", None)
    if bfc:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs("tensorflow")
@pytest.mark.slow
def test_bfc_allocator_peaks_grow_with_depth_and_the_default_says_why_not():
    counted = run(bfc=True)
    assert "get_memory_info (BFC allocator)" in counted["method"]
    one, four = counted["1"], counted["4"]
    # The forward pass holds one or two activations at once, whatever the depth
    # (TensorFlow's graph frees each as soon as the next is made).
    assert 0.9 * ACTIVATION < one["forward"] < 3.5 * ACTIVATION
    assert 0.9 * ACTIVATION < four["forward"] < 3.5 * ACTIVATION
    # The gradient keeps one more activation per layer: three more layers, three more.
    assert four["gradient"] - one["gradient"] >= 2.5 * ACTIVATION
    assert four["gradient"] > four["forward"]
    assert math.isnan(counted["saved1"])  # the tape never says what it keeps

    default = run(bfc=False)
    assert "not measured" in default["method"] and "TF_CPU_ALLOCATOR_USE_BFC" in default["method"]
    assert all(math.isnan(v) for v in default["4"].values())
