"""``pytest suites/ --benchmark-only`` runs bench's cases through pytest-benchmark."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, needs


@needs("jax")
def test_suites_run_under_pytest_benchmark(tmp_path):
    out = tmp_path / "pb.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", "--benchmark-only", "-q", "-p", "no:cacheprovider",
         "-k", "mlp_regression and jax and forward", "--benchmark-max-time=0.05",
         f"--benchmark-json={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    benchmarks = json.loads(out.read_text())["benchmarks"]
    assert len(benchmarks) == 3  # the QUICK cases of mlp_regression
    assert all(b["group"] == "mlp_regression:forward" for b in benchmarks)
    assert all(b["stats"]["median"] > 0 for b in benchmarks)
