"""``bench export``: CSV, Markdown and a pytest-benchmark file that pytest-benchmark reads."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import bench_cli, write_run


def test_csv_holds_the_measured_table(tmp_path):
    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0)
    proc = bench_cli("export", str(run), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(io.StringIO(proc.stdout))
    assert len(table) == 4
    assert {"suite", "case", "framework", "phase", "median_s", "ratio"} <= set(table.columns)
    assert "samples_s" not in table.columns  # raw samples stay in Parquet


def test_markdown_is_a_table(tmp_path):
    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0)
    out = tmp_path / "t.md"
    proc = bench_cli("export", str(run), "--format", "markdown", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("| machine |") and set(lines[1]) <= set("|-:")
    assert len(lines) == 2 + 4


@pytest.mark.skipif(shutil.which("pytest-benchmark", path=str(Path(sys.executable).parent)) is None,
                    reason="pytest-benchmark not installed")
def test_pytest_benchmark_compare_reads_the_export(tmp_path):
    base = write_run(tmp_path / "m" / "r1.parquet", "m", 2.0)
    new = write_run(tmp_path / "m" / "r2.parquet", "m", 1.0, seed=1)
    files = []
    for i, run in enumerate((base, new), start=1):
        out = tmp_path / "pb" / f"000{i}_run.json"
        assert bench_cli("export", str(run), "--format", "pytest-benchmark", "-o", str(out)).returncode == 0
        files.append(out)
    doc = json.loads(files[0].read_text())
    first = doc["benchmarks"][0]
    assert first["stats"]["rounds"] == 20 and len(first["stats"]["data"]) == 20
    exe = Path(sys.executable).parent / "pytest-benchmark"
    proc = subprocess.run([str(exe), "compare", *map(str, files), "--group-by=name"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "s[a-jax-jit-cpu-forward]" in proc.stdout


def test_export_of_a_missing_run_is_a_user_error(tmp_path):
    proc = bench_cli("export", str(tmp_path / "nope.parquet"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
