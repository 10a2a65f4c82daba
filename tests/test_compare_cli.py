"""``bench compare`` through the real entry point, on small hand-made results files."""

from __future__ import annotations

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
