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

import bench
from bench.core.records import Record


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
    # A table for people: one line per case, times in ms, R with its CI; one machine, so no machine column.
    assert lines[0].startswith("| suite | case | framework | device | forward ms | gradient ms | R [95% CI]")
    assert set(lines[1]) <= set("|-:")
    assert len(lines) == 2 + 2  # cases a and b
    row = [c.strip() for c in lines[2].strip("|").split("|")]
    assert row[:4] == ["s", "a", "jax jit", "cpu"] and row[4].replace(".", "").isdigit()


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


def write_memory_run(path: Path) -> Path:
    """A run whose rows carry memory, the device's peak rate, the cache policy and throttling;
    the TensorFlow-like case ``b`` has no memory (NaN), as a framework that exposes none."""
    import math

    import numpy as np

    from bench.core.records import Record
    from bench.store.writer import ResultsWriter

    rng = np.random.default_rng(0)
    records = []
    for case, peak in (("a", 2e6), ("b", math.nan)):
        f = 1e-3 * rng.lognormal(0.0, 0.02, size=20)
        for phase, s, m in (("forward", f, 1.0), ("gradient", 2.5 * f, 3.0)):
            records.append(Record(
                run_id=path.stem, machine="m", suite="s", case=case, params="{}", framework="jax",
                framework_version="0", mode="jit", device="cuda:0", phase=phase, status="ok",
                median_s=float(np.median(s)), samples_s=tuple(float(x) for x in s), rounds=20,
                calls_per_block=1, ratio=m * 0.9, flops=1e9 * m, flops_per_s=1e9 * m / float(np.median(s)),
                saved_bytes=3e6 if peak == peak else math.nan, peak_bytes=peak * m,
                memory_ratio=m if peak == peak else math.nan, theory_saved_bytes=2.5e6,
                theory_peak_bytes=1.5e6 * m, theory_memory_ratio=m + 0.5,
                memory_method="test: exact" if peak == peak else "saved: not exposed",
                peak_flops_per_s=1.9e13, l2="flush", gpu_state='{"before": {}, "after": {}}',
                throttled="power cap 12 ms" if case == "a" else ""))
    w = ResultsWriter(path, {"run_id": path.stem, "machine": "m", "settings": {"l2": "flush"}})
    w.append(records)
    w.close()
    return path


MEMORY_COLUMNS = ["saved_bytes", "peak_bytes", "memory_ratio", "theory_saved_bytes", "theory_peak_bytes",
                  "theory_memory_ratio", "peak_flops_per_s"]


def test_csv_and_markdown_carry_memory_peak_rate_cache_policy_and_throttling(tmp_path):
    run = write_memory_run(tmp_path / "m" / "r1.parquet")
    proc = bench_cli("export", str(run), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(io.StringIO(proc.stdout), keep_default_na=False, na_values=[""])
    a = table[(table.case == "a") & (table.phase == "gradient")].iloc[0]
    assert [a[c] for c in MEMORY_COLUMNS] == [3e6, 6e6, 3.0, 2.5e6, 4.5e6, 3.5, 1.9e13]
    assert (a["memory_method"], a["l2"], a["throttled"]) == ("test: exact", "flush", "power cap 12 ms")
    b = table[(table.case == "b") & (table.phase == "gradient")].iloc[0]
    assert pd.isna(b["peak_bytes"]) and pd.isna(b["memory_ratio"]) and b["theory_memory_ratio"] == 3.5
    md = bench_cli("export", str(run), "--format", "markdown").stdout.splitlines()
    header = [c.strip() for c in md[0].strip("|").split("|")]
    assert "M (theory)" in header  # the people's table carries M; the CSV carries every column
    rows = [dict(zip(header, [c.strip() for c in line.strip("|").split("|")], strict=True))
            for line in md[2:]]
    assert [(r["case"], r["M (theory)"]) for r in rows] == [("a", "3.00 (3.50)"), ("b", "-")]


def test_pytest_benchmark_extra_info_round_trips_memory(tmp_path):
    import bench

    run = write_memory_run(tmp_path / "m" / "r1.parquet")
    out = tmp_path / "pb.json"
    assert bench_cli("export", str(run), "--format", "pytest-benchmark", "-o", str(out)).returncode == 0
    doc = json.loads(out.read_text())
    info = {b["name"]: b["extra_info"] for b in doc["benchmarks"]}
    a = info["s[a-jax-jit-cuda:0-gradient]"]
    assert (a["peak_bytes"], a["memory_ratio"], a["saved_bytes"]) == (6e6, 3.0, 3e6)
    assert a["peak_flops_per_s"] == 1.9e13
    assert (a["l2"], a["throttled"], a["memory_method"]) == ("flush", "power cap 12 ms", "test: exact")
    b = info["s[b-jax-jit-cuda:0-gradient]"]
    assert "peak_bytes" not in b and "throttled" not in b  # NaN and "" are left out (JSON has no NaN)
    assert b["theory_memory_ratio"] == 3.5
    assert "NaN" not in out.read_text()

    proc = bench_cli("import", str(out), "--machine", "pb", "--results", str(tmp_path / "imported"))
    assert proc.returncode == 0, proc.stderr
    cols = ["case", "phase", *MEMORY_COLUMNS, "memory_method", "l2", "throttled", "gpu_state", "ratio",
            "flops"]
    def table(path):
        return bench.load(path)[cols].sort_values(["case", "phase"]).reset_index(drop=True)

    before, after = table(run), table(tmp_path / "imported" / "pb")
    pd.testing.assert_frame_equal(before, after, check_dtype=False)


def native_document(data: bool) -> dict:
    """What ``pytest suites/ --benchmark-only --benchmark-json`` writes (suites/test_suites.py): case,
    framework and mode in extra_info, the parametrize objects unserializable in params, no ratio,
    forward and gradient timed in separate tests (rounds that do not pair)."""
    import numpy as np
    from pytest_benchmark.stats import Stats

    rng = np.random.default_rng(0)
    case = "batch=64,width=128,depth=2"
    benchmarks = []
    for phase, scale, rounds in (("forward", 1e-3, 9), ("gradient", 2.5e-3, 6), ("step", 3e-3, 7)):
        samples = scale * rng.lognormal(0.0, 0.02, size=rounds)
        st = Stats()
        for s in samples:
            st.update(float(s))
        stats = {**st.as_dict(), "iterations": 1}
        if data:
            stats["data"] = [float(s) for s in samples]
        benchmarks.append({
            "group": f"mlp_regression:{phase}", "name": f"test_case[mlp_regression[{case}]-jax-{phase}]",
            "fullname": f"suites/test_suites.py::test_case[mlp_regression[{case}]-jax-{phase}]",
            "params": {"suite": "UNSERIALIZABLE[Suite(name='mlp_regression')]",
                       "case": "UNSERIALIZABLE[Case(suite='mlp_regression', params=(('batch', 64),))]",
                       "framework": "jax", "phase": phase},
            "param": f"mlp_regression[{case}]-jax-{phase}",
            "extra_info": {"case": case, "framework": "jax", "mode": "jit", "threads": 2, "cpus": [0, 1],
                           "settings": {"threads": 2}, "other_cpu": 0.01, "steal_cpu": 0.0},
            "options": {}, "stats": stats})
    return {"machine_info": {"processor": "Fake CPU"}, "commit_info": {}, "benchmarks": benchmarks,
            "datetime": "2026-11-26T00:00:00", "version": "5.1.0"}


@pytest.mark.parametrize("data", [True, False], ids=["with-data", "without-data"])
def test_a_native_pytest_benchmark_file_imports_with_R(tmp_path, data):
    """Issue #9 item 2: R from the forward and gradient rows when extra_info holds none."""
    import numpy as np

    import bench
    from bench.present.report import data as report_data

    doc = native_document(data)
    path = tmp_path / "native.json"
    path.write_text(json.dumps(doc))
    proc = bench_cli("import", str(path), "--machine", "pb", "--results", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    df = bench.load(tmp_path / "r" / "pb")
    assert set(df.case) == {"batch=64,width=128,depth=2"}  # extra_info's id, not params' repr
    assert set(df.threads) == {2}
    rows = df.set_index("phase")
    medians = {b["group"].split(":")[1]: b["stats"]["median"] for b in doc["benchmarks"]}
    for phase in ("gradient", "step"):
        assert rows.loc[phase, "ratio"] == pytest.approx(medians[phase] / medians["forward"])
    grad = rows.loc["gradient"]
    if data:  # independent samples: a bootstrap interval of the ratio of medians
        assert grad.ratio_ci_low < grad.ratio < grad.ratio_ci_high
        assert grad.ci_low_s < grad.median_s < grad.ci_high_s
    else:
        assert np.isnan(grad.ratio_ci_low) and len(grad.samples_s) == 0
    report = report_data.build(df)
    assert report.verdicts and "No gradient was measured" not in report.headline


def test_an_exported_run_imports_with_R_flops_and_a_verdict(tmp_path):
    import bench
    from bench.present.report import data as report_data

    run = write_memory_run(tmp_path / "m" / "r1.parquet")
    out = tmp_path / "pb.json"
    assert bench_cli("export", str(run), "--format", "pytest-benchmark", "-o", str(out)).returncode == 0
    doc = json.loads(out.read_text())
    for b in doc["benchmarks"]:  # as pytest-benchmark's own --benchmark-save files: no raw data
        del b["stats"]["data"]
    out.write_text(json.dumps(doc))
    proc = bench_cli("import", str(out), "--machine", "pb", "--results", str(tmp_path / "imported"))
    assert proc.returncode == 0, proc.stderr
    before, after = bench.load(run), bench.load(tmp_path / "imported" / "pb")
    key = ["case", "phase"]
    cols = ["median_s", "ratio", "flops", "flops_per_s", "theory_ratio"]
    pd.testing.assert_frame_equal(before.sort_values(key)[cols].reset_index(drop=True),
                                  after.sort_values(key)[cols].reset_index(drop=True), check_dtype=False)
    report = report_data.build(after)
    assert report.verdicts and "No gradient was measured" not in report.headline


@pytest.mark.parametrize("target", ["empty", "dir", "under-a-file", "the-run", "a-results-file"])
def test_export_output_that_cannot_be_written_is_refused_before_reading(tmp_path, capsys, target):
    """Issue #9 item 13: export -o '', -o DIR, -o afile/x.md; and never onto results (item 10)."""
    from bench.cli import main as cli

    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0)
    other = write_run(tmp_path / "m" / "r2.parquet", "m", 1.0)
    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "dir").mkdir()
    output, words = {"empty": ("", "-o ''"), "dir": (str(tmp_path / "dir"), "folder"),
                     "under-a-file": (str(tmp_path / "afile" / "x.md"), "not a folder"),
                     "the-run": (str(run), "results file"),
                     "a-results-file": (str(other), "results file")}[target]
    before = run.read_bytes(), other.read_bytes()
    code = cli.main(["export", str(run), "--format", "csv", "-o", output])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
    assert (run.read_bytes(), other.read_bytes()) == before
    assert (tmp_path / "afile").read_text() == "keep me"


def test_export_writes_into_a_new_folder_and_through_a_device(tmp_path, capsys):
    from bench.cli import main as cli

    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0)
    out = tmp_path / "new" / "deeper" / "t.csv"
    assert cli.main(["export", str(run), "-o", str(out)]) == 0
    assert out.read_text().startswith("machine,run_id,")
    assert cli.main(["export", str(run), "-o", "/dev/null"]) == 0
    assert not list(out.parent.glob(".*tmp"))  # no temporary file is left behind


def test_csv_neutralises_cells_a_spreadsheet_would_run(tmp_path):
    """Issue #9 item 15: a GRID key or value starting with = + - @ becomes text, in CSV only."""
    import csv

    cases = ('=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "batch=8")
    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0, cases=cases)
    proc = bench_cli("export", str(run), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert {r["case"] for r in table} == {"'" + c for c in cases[:4]} | {"batch=8"}
    assert all(float(r["median_s"]) > 0 for r in table)  # numbers stay numbers
    md = bench_cli("export", str(run), "--format", "markdown").stdout
    assert '| =HYPERLINK("http://x","y") |' in md and "'=" not in md


def test_pytest_benchmark_export_leaves_out_rows_without_samples_and_says_so(tmp_path, capsys):
    import dataclasses

    from bench.cli import main as cli
    from bench.store.writer import ResultsWriter

    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0)
    rows = [dataclasses.replace(r, samples_s=() if r.case == "b" else r.samples_s)
            for r in map(Record.from_dict, bench.load(run).to_dict("records"))]
    w = ResultsWriter(tmp_path / "m" / "r2.parquet", {"run_id": "r2", "machine": "m"})
    w.append(rows)
    w.close()
    out = tmp_path / "pb.json"
    assert cli.main(["export", str(tmp_path / "m" / "r2.parquet"), "--format", "pytest-benchmark",
                     "-o", str(out)]) == 0
    assert "2 measured rows without raw samples are left out" in capsys.readouterr().err
    assert {b["params"]["case"] for b in json.loads(out.read_text())["benchmarks"]} == {"a"}
