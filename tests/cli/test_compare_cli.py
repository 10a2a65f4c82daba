"""``bench compare`` through the real entry point, on small hand-made results files."""

from __future__ import annotations

import json
import re

import pytest
from conftest import bench_cli, write_run


def test_a_run_compared_with_itself_changes_nothing(tmp_path):
    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0)
    proc = bench_cli("compare", str(run), str(run))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "no significant change: 4"
    assert not re.search(r"(faster|slower)$", proc.stdout, re.MULTILINE)  # no row is called either


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

    from bench.core.records import Record
    from bench.store.writer import ResultsWriter

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
    row = r" 6 MB +2 MB +0\.33 +3\.00 +2\.00$"
    assert len(lines) == 2 and all(re.search(row, li) for li in lines), proc.stdout
    forward = [line for line in proc.stdout.splitlines() if "forward" in line and " MB" in line]
    assert all(re.search(r" 2 MB +1 MB +0\.50$", li) for li in forward) and len(forward) == 2


def test_no_memory_table_when_one_side_lacks_memory(tmp_path):
    base = write_memory_run(tmp_path / "m" / "r1.parquet", "m", 2e6, 3.0)
    new = write_memory_run(tmp_path / "m" / "r2.parquet", "m", 1e6, 2.0, memory=False)
    proc = bench_cli("compare", str(base), str(new))
    assert proc.returncode == 0, proc.stderr
    assert "memory:" not in proc.stdout and "no significant change: 4" in proc.stdout


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    """``bench ARGS`` through the console script's function, in this process (faster than a new one)."""
    from bench.cli import main as cli

    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_tenfold_slowdown_without_samples_is_caught_on_the_medians(tmp_path, capsys):
    """Issue #9 item 1: pytest-benchmark files without stats.data, medians x 10."""
    import json

    base = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0)
    exported = tmp_path / "pb.json"
    code, _, err = in_process(capsys, "export", str(base), "--format", "pytest-benchmark",
                              "-o", str(exported))
    assert code == 0, err
    doc = json.loads(exported.read_text())
    for b in doc["benchmarks"]:
        st = b["stats"]
        del st["data"]
        for k in ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "total"):
            st[k] *= 10
        st["ops"] /= 10
    exported.write_text(json.dumps(doc))
    code, _, err = in_process(capsys, "import", str(exported), "--machine", "slow",
                              "--results", str(tmp_path / "imported"))
    assert code == 0, err
    slow = str(tmp_path / "imported" / "slow")

    code, out, err = in_process(capsys, "compare", str(base), slow)
    assert code == 0, err
    assert out.splitlines()[-1] == "no samples: no significance test: 4"
    # Ten times slower by the medians, said as such (no interval: there was no test).
    assert "nan" not in out and re.search(r"10× slower +no samples: no significance test", out), out
    failing = bench_cli("compare", str(base), slow, "--fail-on-regression", "5%")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "4 regressions of at least 5%" in failing.stderr and "medians" in failing.stderr


def test_a_folder_side_compares_its_newest_run_and_says_which(tmp_path, capsys):
    """Issue #9 item 4: a --threads 1 run, then a --threads 2 run in folder A."""
    write_run(tmp_path / "A" / "r1.parquet", "m", 1.0, threads=1)
    write_run(tmp_path / "A" / "r2.parquet", "m", 1.0, seed=3, threads=2)
    write_run(tmp_path / "B" / "r3.parquet", "m", 1.0, seed=1, threads=2)
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    proc = bench_cli("compare", a, b)
    assert proc.returncode == 0, proc.stderr
    # The newest run of A has B's settings: nothing differs, and the left-out run is named.
    assert "settings.threads" not in proc.stdout
    assert re.search(r"base: run r2 .*newest of 2 runs.*left out: r1", proc.stdout), proc.stdout
    assert "new: run r3" in proc.stdout

    code, out, err = in_process(capsys, "compare", a, b, "--run", "r1")
    assert code == 0, err
    assert "base: run r1" in out
    assert re.search(r"settings\.threads +1 +2", out), out

    code, out, err = in_process(capsys, "compare", a, b, "--run", "pool")
    assert code == 0, err
    assert "base: 2 runs pooled: r1, r2" in out
    assert re.search(r"settings\.threads +1 \| 2 +2", out), out

    code, out, err = in_process(capsys, "compare", a, b, "--run", "r1", "--run", "latest")
    assert code == 0 and "base: run r1" in out, err

    for args, words in (((a, b, "--run", "r9"), "--run r9"),
                        ((a, b, "--run", "r3", "--run", "r3"), "--run r3"),
                        ((a, b, "--run", "a", "--run", "b", "--run", "c"), "--run")):
        code, _, err = in_process(capsys, "compare", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert words in err


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.05", 0.05), ("0.5%", 0.005), ("0.99", 0.99),
                                             ("99%", 0.99), (" 10 % ", 0.10)])
def test_min_effect_is_a_percentage_or_a_fraction(text, value):
    from bench.cli.compare import percent

    assert percent(text, "--min-effect") == pytest.approx(value)


@pytest.mark.parametrize("text", ["1", "5", "50", "1.5", "0", "0%", "100%", "-5%", "nan", "inf", "lots", "",
                                  "5%%"])
def test_ambiguous_or_impossible_min_effect_is_refused(text):
    from bench.cli.compare import percent
    from bench.core.errors import UserError

    with pytest.raises(UserError, match="--min-effect"):
        percent(text, "--min-effect")


def test_an_ambiguous_min_effect_is_one_line_exit_2(tmp_path):
    run = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0, cases=("a",))
    proc = bench_cli("compare", str(run), str(run), "--min-effect", "1")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "1%" in proc.stderr and "0.01" in proc.stderr
    help_text = bench_cli("compare", "--help").stdout
    assert "fraction" in help_text and "--run" in help_text


def test_markup_in_data_is_printed_not_parsed(tmp_path):
    base = write_run(tmp_path / "m" / "r1.parquet", "m", 1.0, cases=("a[/x]", "[bold]b"))
    proc = bench_cli("compare", str(base), str(base))
    assert proc.returncode == 0, proc.stderr
    assert "a[/x]" in proc.stdout and "[bold]b" in proc.stdout
# For tests/cli/test_compare_cli.py once bench/cli/compare.py has the summary (patch in F's report).
def test_many_cases_print_a_summary_and_every_row_still_counts(tmp_path, monkeypatch):
    """Above compare.TABLE_LIMIT rows the terminal gets aggregates; --fail-on-regression sees every row."""
    base = write_run(tmp_path / "a" / "r1.parquet", "a", 1.0, cases=tuple(f"c{i}" for i in range(120)))
    new = write_run(tmp_path / "b" / "r2.parquet", "b", 2.0, cases=tuple(f"c{i}" for i in range(120)), seed=1)
    proc = bench_cli("compare", str(base), str(new), "--fail-on-regression", "5%")
    assert proc.returncode == 1, proc.stderr
    assert "240 cases compared: per suite, framework, device and phase" in proc.stdout
    assert "--all prints every case" in proc.stdout
    assert not re.search(r"^c17 ", proc.stdout, re.MULTILINE)  # no row per case
    assert "slower: 240" in proc.stdout and "240 regressions" in proc.stderr
    as_json = bench_cli("compare", str(base), str(new), "--format", "json")  # scripts get every case
    assert len(json.loads(as_json.stdout)["cases"]) == 240
    every = bench_cli("compare", str(base), str(new), "--all")
    assert re.search(r"^c17 ", every.stdout, re.MULTILINE)
