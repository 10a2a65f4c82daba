"""``pytest suites/ --benchmark-only`` runs bench's cases through pytest-benchmark."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, bench_cli, needs


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


@needs("jax")
@pytest.mark.slow
def test_a_native_benchmark_json_imports_with_the_case_ids_and_R(tmp_path):
    """Issue #9 item 2 on pytest's own output: params hold unserializable objects, extra_info the ids."""
    import bench

    out = tmp_path / "pb.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", "--benchmark-only", "-q", "-p", "no:cacheprovider",
         "-k", "mlp_regression and jax and (forward or gradient)", "--benchmark-max-time=0.05",
         f"--benchmark-json={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    imported = bench_cli("import", str(out), "--machine", "pb", "--results", str(tmp_path / "r"))
    assert imported.returncode == 0, imported.stderr
    df = bench.load(tmp_path / "r" / "pb")
    assert len(df) == 6 and all(c.startswith("batch=") for c in df.case)
    grad = df[df.phase == "gradient"].set_index("case")
    fwd = df[df.phase == "forward"].set_index("case")
    assert ((grad.ratio - grad.median_s / fwd.median_s).abs() < 1e-9 * grad.ratio).all()
