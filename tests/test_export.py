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


def test_pytest_benchmark_round_trip_keeps_the_verdicts(tmp_path):
    base = write_run(tmp_path / "a" / "r1.parquet", "a", 2.0)
    new = write_run(tmp_path / "b" / "r2.parquet", "b", 1.0, seed=1)
    for run, machine in ((base, "pa"), (new, "pb")):
        out = tmp_path / f"{machine}.json"
        assert bench_cli("export", str(run), "--format", "pytest-benchmark", "-o", str(out)).returncode == 0
        proc = bench_cli("import", str(out), "--machine", machine, "--results", str(tmp_path / "imported"))
        assert proc.returncode == 0, proc.stderr
        assert "imported 4 benchmarks" in proc.stdout
    direct = bench_cli("compare", str(base), str(new))
    imported = bench_cli("compare", str(tmp_path / "imported" / "pa"), str(tmp_path / "imported" / "pb"))
    assert direct.stdout.splitlines()[-1] == imported.stdout.splitlines()[-1] == "faster: 4"


def test_import_refuses_files_that_are_not_bench_benchmarks(tmp_path):
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"benchmarks": [{"group": None, "name": "test_sort", "stats": {}}]}))
    proc = bench_cli("import", str(foreign), "--machine", "m", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "no benchmark that names a bench suite" in proc.stderr
    assert not (tmp_path / "r").exists()
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    proc = bench_cli("import", str(garbage), "--machine", "m")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
