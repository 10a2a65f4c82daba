"""A worker that dies, hangs or fails loses its own case, never the others' rows."""

from __future__ import annotations

import pytest
from conftest import TEST_SUITES, bench_cli, needs

import bench

FAULTY = str(TEST_SUITES / "faulty")
GOOD_CASE, BAD_CASE, AFTER_CASE = (f"batch={b},width=16,depth=2" for b in (8, 16, 24))


def run_faulty(tmp_path, fault: str, *extra: str):
    results = tmp_path / "results"
    proc = bench_cli(
        "run", "--framework", "torch,jax", "--suites", FAULTY, "--quick", "--budget", "0.05", "--no-report",
        "--machine", "m", "--results", str(results), *extra, env={"BENCH_TEST_FAULT": fault},
    )
    files = list((results / "m").glob("*.parquet"))
    assert len(files) == 1, proc.stderr
    return proc, bench.load(files[0])


def rows(df, framework, case):
    return df[(df.framework == framework) & (df.case == case)]


@needs("torch", "jax")
@pytest.mark.slow
def test_sigkilled_worker_keeps_every_other_row(tmp_path):
    proc, df = run_faulty(tmp_path, "kill")
    assert proc.returncode == 1  # the run finished, but not everything measured
    # torch measured its first case before it was killed...
    assert (rows(df, "torch", GOOD_CASE).status == "ok").all()
    # ...its case in progress is recorded as crashed, with the signal...
    dead = rows(df, "torch", BAD_CASE)
    assert len(dead) == 5 and (dead.status == "crashed").all()
    assert dead.reason.str.contains("SIGKILL").all()
    # ...a fresh torch worker measured the case after it...
    assert (rows(df, "torch", AFTER_CASE).status == "ok").all()
    # ...and jax, the next job, measured everything.
    assert (df[df.framework == "jax"].status == "ok").all()
    assert set(df[df.framework == "jax"].case) == {GOOD_CASE, BAD_CASE, AFTER_CASE}


@pytest.mark.slow  # waits out a 5 s timeout
@needs("torch", "jax")
def test_hung_worker_is_killed_after_timeout(tmp_path):
    _proc, df = run_faulty(tmp_path, "hang", "--timeout", "5")
    hung = rows(df, "torch", BAD_CASE)
    assert (hung.status == "crashed").all()
    assert hung.reason.str.contains("no progress for 5 s").all()
    assert (rows(df, "torch", GOOD_CASE).status == "ok").all()
    assert (rows(df, "torch", AFTER_CASE).status == "ok").all()
    assert (df[df.framework == "jax"].status == "ok").all()


@needs("torch", "jax")
def test_case_that_raises_is_an_error_and_the_worker_goes_on(tmp_path):
    _proc, df = run_faulty(tmp_path, "raise")
    bad = rows(df, "torch", BAD_CASE)
    assert (bad.status == "error").all()
    assert bad.reason.str.contains("RuntimeError: injected failure").all()
    assert (rows(df, "torch", GOOD_CASE).status == "ok").all()
    assert (rows(df, "torch", AFTER_CASE).status == "ok").all()
    assert (df[df.framework == "jax"].status == "ok").all()


@needs("torch", "jax")
def test_wrong_model_fails_equivalence_and_is_not_timed(tmp_path):
    _proc, df = run_faulty(tmp_path, "wrong")
    bad = rows(df, "torch", BAD_CASE)
    assert (bad.status == "failed").all()
    assert bad.median_s.isna().all()  # never timed
    assert (bad.equiv_error > bad.equiv_tol).all()
    assert bad.reason.str.contains("float64 reference").all()
    assert (rows(df, "torch", GOOD_CASE).status == "ok").all()


@pytest.mark.parametrize("fault", [""])
@needs("torch", "jax")
def test_healthy_run_exits_zero(tmp_path, fault):
    proc, df = run_faulty(tmp_path, fault)
    assert proc.returncode == 0, proc.stderr
    assert (df[df.phase != "backward_split"].status == "ok").all()


def test_torch_compile_workers_do_not_run_beside_the_timed_rounds(monkeypatch):
    """Seen on an H100: torch.compile's pool of Triton compile workers started in the
    background during the first compiled case's rounds, and bench flagged its own
    workers as 1.01 CPU of other processes. The worker compiles in-process instead,
    unless the user chose otherwise."""
    from bench.core.settings import Settings
    from bench.execute.runner import worker_env

    monkeypatch.delenv("TORCHINDUCTOR_COMPILE_THREADS", raising=False)
    assert worker_env(Settings(threads=2))["TORCHINDUCTOR_COMPILE_THREADS"] == "1"
    monkeypatch.setenv("TORCHINDUCTOR_COMPILE_THREADS", "8")
    assert worker_env(Settings(threads=2))["TORCHINDUCTOR_COMPILE_THREADS"] == "8"
