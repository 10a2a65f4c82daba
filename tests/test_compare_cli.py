"""``bench compare`` through the real entry point, on small hand-made results files."""

from __future__ import annotations

import re

from conftest import bench_cli, write_run


def test_a_run_compared_with_itself_changes_nothing(tmp_path):
    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0)
    proc = bench_cli("compare", str(run), str(run))
    assert proc.returncode == 0, proc.stderr
    assert "no significant change: 4" in proc.stdout
    assert "faster" not in proc.stdout and "slower" not in proc.stdout


def test_verdicts_follow_the_timings_and_fingerprints_are_diffed(tmp_path):
    base = write_run(tmp_path / "slow" / "r1.parquet", "slow", 2.0, threads=1)
    new = write_run(tmp_path / "fast" / "r2.parquet", "fast", 1.0, seed=1)
    proc = bench_cli("compare", str(tmp_path / "slow"), str(tmp_path / "fast"))
    assert proc.returncode == 0, proc.stderr
    assert "faster: 4" in proc.stdout
    assert "settings.threads" in proc.stdout  # what differs between the machines is shown
    assert "geometric mean speedup" in proc.stdout
    # R is the same on both: the dimensionless ratio travels between machines.
    assert "R = T(gradient)/T(forward) in both runs" in proc.stdout
    # The other way round is a regression, and --fail-on-regression turns it into exit 1.
    back = bench_cli("compare", str(new), str(base), "--fail-on-regression", "5%")
    assert back.returncode == 1
    assert "slower: 4" in back.stdout and "regressions" in back.stderr


def test_unmatched_cases_are_listed(tmp_path):
    base = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0, cases=("a", "b"))
    new = write_run(tmp_path / "m" / "r2.parquet", "m", 1.0, cases=("a", "c"), seed=2)
    proc = bench_cli("compare", str(base), str(new))
    assert proc.returncode == 0, proc.stderr
    assert "base only: s b" in proc.stderr and "new only: s c" in proc.stderr


def test_bad_input_is_one_line_exit_2(tmp_path):
    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0, cases=("a",))
    other = write_run(tmp_path / "m" / "r2.parquet", "m", 1.0, cases=("z",))
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet")
    for args, words in [
        ((str(run), str(other)), "no measured case in common"),
        ((str(run), str(tmp_path / "missing.parquet")), "no such results file"),
        ((str(run), str(corrupt)), "not a readable Parquet file"),
        ((str(run), str(run), "--min-effect", "lots"), "--min-effect"),
    ]:
        proc = bench_cli("compare", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr


def test_a_corrupt_copy_in_a_machine_folder_is_skipped_and_the_rest_compare(tmp_path):
    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0)
    (tmp_path / "m" / "r0.parquet").write_bytes(b"not parquet")
    proc = bench_cli("compare", str(tmp_path / "m"), str(run))
    assert proc.returncode == 0, proc.stderr
    assert "skipping" in proc.stderr and "r0.parquet" in proc.stderr
    assert "no significant change: 4" in proc.stdout


def write_memory_run(path, machine: str, forward_peak: float, m: float, memory: bool = True):
    """A results file like ``write_run``'s with peak bytes: the gradient's ``m`` times the forward's."""
    import math

    import numpy as np

    from bench.spec import Record
    from bench.store import ResultsWriter

    rng = np.random.default_rng(0)
    records = []
    for case in ("a", "b"):
        f = 1e-3 * rng.lognormal(0.0, 0.02, size=20)
        for phase, s, ratio in (("forward", f, 1.0), ("gradient", 2.5 * f, m)):
            records.append(Record(
                run_id=path.stem, machine=machine, suite="s", case=case, params="{}", framework="jax",
                framework_version="0", mode="jit", device="cpu", phase=phase, status="ok",
                median_s=float(np.median(s)), samples_s=tuple(float(x) for x in s), threads=2,
                peak_bytes=forward_peak * ratio if memory else math.nan,
                memory_ratio=ratio if memory else math.nan))
    w = ResultsWriter(path, {"run_id": path.stem, "machine": machine, "settings": {"threads": 2}})
    w.append(records)
    w.close()
    return path


def test_memory_table_when_both_sides_measured_it(tmp_path):
    base = write_memory_run(tmp_path / "m" / "r1.parquet", "m", 2e6, 3.0)
    new = write_memory_run(tmp_path / "m" / "r2.parquet", "m", 1e6, 2.0)
    proc = bench_cli("compare", str(base), str(new))
    assert proc.returncode == 0, proc.stderr
    assert "memory: extra bytes at the peak of one call" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if "gradient" in line and " MB" in line]
    # gradient: base 3 x 2 MB = 6 MB, new 2 x 1 MB = 2 MB: new / base 0.33; M 3.00 -> 2.00
    row = r"│ 6 MB +│ 2 MB +│ 0\.33 +│ 3\.00 +│ 2\.00 +│"
    assert len(lines) == 2 and all(re.search(row, li) for li in lines), proc.stdout
    forward = [line for line in proc.stdout.splitlines() if "forward" in line and " MB" in line]
    assert all(re.search(r"│ 2 MB +│ 1 MB +│ 0\.50 +│ +│ +│", li) for li in forward) and len(forward) == 2


def test_no_memory_table_when_one_side_lacks_memory(tmp_path):
    base = write_memory_run(tmp_path / "m" / "r1.parquet", "m", 2e6, 3.0)
    new = write_memory_run(tmp_path / "m" / "r2.parquet", "m", 1e6, 2.0, memory=False)
    proc = bench_cli("compare", str(base), str(new))
    assert proc.returncode == 0, proc.stderr
    assert "memory:" not in proc.stdout and "no significant change: 4" in proc.stdout
