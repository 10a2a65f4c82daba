"""``bench run --dry-run`` (issue #11, item 4): the plan and an estimated wall time, nothing run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict
from itertools import count

import pytest
from conftest import ROOT, bench_cli

from bench import store
from bench.catalog import discovery
from bench.core import clock
from bench.core.records import Record
from bench.core.settings import Settings
from bench.execute import estimate
from bench.execute.jobs import plan_jobs
from bench.present import plan_view

MLP = next(s for s in discovery.load_dir(discovery.default_dir())[0] if s.name == "mlp_regression")


def dry_run(tmp_path, *args: str, columns: int = 200) -> subprocess.CompletedProcess:
    return bench_cli("run", "--dry-run", "--results", str(tmp_path / "results"),
                     "--reports", str(tmp_path / "reports"), *args, env={"COLUMNS": str(columns)})


def test_dry_run_prints_jobs_cases_budget_and_an_estimate_and_writes_nothing(tmp_path):
    proc = dry_run(tmp_path, "--quick", "--suite", "mlp_regression", "--framework", "torch,jax",
                   "--machine", "m")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "plan: 2 jobs" in out and "each case: 0.500 s of timed rounds in 1 worker process\n" in out
    assert "torch eager · cpu" in out and "jax jit · cpu" in out
    assert f"mlp_regression: {len(MLP.cases(quick=True))} cases, in torch, jax" in out
    for case in MLP.cases(quick=True):
        assert f"    {case.id}\n" in out, case.id
    assert "wall time: about" in out and "estimated from the budget, not measured" in out
    assert f"results: {tmp_path / 'results'}/m/<run-id>.parquet\n" in out
    assert not (tmp_path / "results").exists() and not (tmp_path / "reports").exists()


def test_dry_run_follows_case_processes_and_device(tmp_path):
    proc = dry_run(tmp_path, "--suite", "mlp_regression", "--framework", "jax", "--device", "cpu",
                   "--case", "batch=8,width=16,depth=2", "--case", "batch=8,width=16,depth=3",
                   "--processes", "4", "--budget", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "plan: 1 job " in out
    assert "jax jit · cpu: 2 cases" in out
    assert "mlp_regression: 2 cases, in jax" in out
    assert "batch=8,width=16,depth=2" in out and "batch=8,width=16,depth=3" in out
    assert "batch=64,width=128,depth=2" not in out  # the grid is not run
    assert "each case: 2.00 s of timed rounds in 4 worker processes (0.500 s each)" in out


def test_dry_run_fits_80_columns_and_leaves_the_default_folders_alone(tmp_path):
    proc = bench_cli("run", "--dry-run", "--quick", "--machine", "m", "--processes", "3", "--precision",
                     "0.02", cwd=tmp_path, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert "results: results/m/<run-id>.parquet\nreport: reports/<run-id>.html\n" in proc.stdout
    wide = [line for line in proc.stdout.splitlines() if len(line) > 80]
    assert not wide, wide
    assert list(tmp_path.iterdir()) == []


def test_dry_run_imports_no_framework(tmp_path):
    code = (
        "import sys; from bench.cli import main as cli; "
        f"rc = cli.main(['run', '--dry-run', '--quick', '--mode', 'all', '--results', {str(tmp_path)!r}]); "
        "print('RESULT', rc, sorted(m for m in ('torch', 'tensorflow', 'jax', 'jaxlib') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "RESULT 0 []" in proc.stdout, proc.stdout + proc.stderr
    assert "wall time" in proc.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--suite", "mlp_regresion"], ["unknown suite", "did you mean 'mlp_regression'"]),
     (["--cluster", "tcp://127.0.0.1:1"], ["--dry-run plans a run on this machine"]),
     (["--processes", "0"], ["--processes 0"])],
)
def test_dry_run_mistakes_are_user_errors(tmp_path, args, words):
    proc = dry_run(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    for w in words:
        assert w in line, line


# --- the estimate -----------------------------------------------------------------------------


def jobs(framework: str = "jax", mode: str = "jit", device: str = "cpu", quick: bool = True) -> list:
    return plan_jobs([(framework, mode)], [device], [MLP], quick)


def test_the_model_grows_with_cases_processes_budget_and_compilation():
    quick = Settings(threads=2, budget_s=0.5, quick=True, processes=1)
    est = estimate.model_seconds
    assert est(estimate.sizes(jobs(quick=False)), quick) > est(estimate.sizes(jobs()), quick)
    assert est(estimate.sizes(jobs()), Settings(threads=2, budget_s=0.5, quick=True, processes=3)) > \
        2.5 * est(estimate.sizes(jobs()), quick)
    # Every second more of budget is a second more per case.
    assert est(estimate.sizes(jobs()), Settings(threads=2, budget_s=5, quick=True, processes=1)) == \
        pytest.approx(est(estimate.sizes(jobs()), quick) + 4.5 * len(MLP.cases(quick=True)))
    assert (est(estimate.sizes(jobs("torch", "compile")), quick)
            > est(estimate.sizes(jobs("torch", "eager")), quick))
    # One job of n cases costs a start and n cases: twice the cases, less than twice the time.
    one = estimate.JobSize("jax", "jit", False, 10)
    two = estimate.JobSize("jax", "jit", False, 20)
    assert est([one], quick) < est([two], quick) < 2 * est([one], quick)


def test_the_estimate_counts_the_report_and_says_it_is_a_model():
    quick = Settings(threads=2, budget_s=0.5, quick=True, processes=1)
    with_report, without = estimate.estimate(jobs(), quick), estimate.estimate(jobs(), quick, report=False)
    assert with_report.seconds == pytest.approx(without.seconds + estimate.REPORT_S)
    assert plan_view.basis(with_report) == plan_view.basis(without) == plan_view.MODEL_BASIS
    assert plan_view.MODEL_BASIS == "estimated from the budget, not measured"


def test_durations_read_as_people_say_them():
    assert plan_view.duration(42) == "about 40 s"
    assert plan_view.duration(3) == "about 5 s"
    assert plan_view.duration(250) == "about 4 min"
    assert plan_view.duration(4800) == "about 1 h 20 min"


def earlier_run(results, machine: str, cases, minutes: float, settings: Settings, monkeypatch,
                **meta) -> None:
    """A stored run of ``cases`` (jax jit on the CPU) that took ``minutes`` by its metadata."""
    # The first stamp is the start; every later one (shards, the end) the end.
    stamps = ["2026-01-01T00:00:00+00:00", f"2026-01-01T00:{minutes:02.0f}:00+00:00"]
    monkeypatch.setattr(clock, "now", lambda: stamps.pop(0) if len(stamps) > 1 else stamps[0])
    run_id = f"2026010{next(_ids)}T000000Z-abcd"
    writer = store.new_run(results, machine, run_id, {"run_id": run_id, "machine": machine,
                                                      "settings": asdict(settings), **meta})
    writer.append([Record(run_id=run_id, machine=machine, suite=c.suite, case=c.id,
                          params=json.dumps(c.as_dict()), framework="jax", framework_version="0",
                          mode="jit", device="cpu", phase="forward", status="ok", median_s=1e-3,
                          samples_s=(1e-3,), process_rounds=(1,), rounds=1) for c in cases])
    writer.close()
    monkeypatch.undo()


_ids = count(1)


def test_earlier_runs_of_the_machine_scale_the_estimate(tmp_path, monkeypatch):
    quick = Settings(threads=2, budget_s=0.5, quick=True, processes=1)
    earlier_run(tmp_path, "m", MLP.cases(quick=True), 10, quick, monkeypatch)
    proc = bench_cli("run", "--dry-run", "--quick", "--suite", "mlp_regression", "--framework", "jax",
                     "--machine", "m", "--results", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    # The same plan as a run that took 10 minutes: about 10 minutes, and it says why.
    said = r"wall time: about 10 min; scaled by 1 earlier run of this machine \([0-9.]+× the model\)\n"
    assert re.search(said, proc.stdout), proc.stdout
    # Another machine's folder has no earlier run: the model alone.
    other = bench_cli("run", "--dry-run", "--quick", "--suite", "mlp_regression", "--framework", "jax",
                      "--machine", "other", "--results", str(tmp_path))
    assert "estimated from the budget, not measured" in other.stdout
    assert not (tmp_path / "other").exists()


def test_interrupted_imported_and_adaptive_runs_do_not_scale_the_estimate(tmp_path, monkeypatch):
    quick = Settings(threads=2, budget_s=0.5, quick=True, processes=1)
    cases = MLP.cases(quick=True)
    earlier_run(tmp_path, "m", cases, 10, quick, monkeypatch, interrupted=True)
    earlier_run(tmp_path, "m", cases, 20, quick, monkeypatch, imported_from="x.json")
    earlier_run(tmp_path, "m", cases, 30, Settings(threads=2, budget_s=0.5, quick=True, processes=1,
                                                   precision=0.02), monkeypatch)
    (tmp_path / "m" / "20260109T000000Z-beef.parquet").write_bytes(b"PAR1 not a parquet file")
    assert estimate.calibration(tmp_path / "m") == []
    earlier_run(tmp_path, "m", cases, 5, quick, monkeypatch)
    scales = estimate.calibration(tmp_path / "m")
    assert len(scales) == 1
    model = estimate.model_seconds(estimate.sizes(jobs()), quick)
    assert scales[0] * model == pytest.approx(300)
