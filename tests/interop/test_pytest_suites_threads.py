"""``pytest suites/ --benchmark-only`` under bench run's thread settings, with its warnings.

suites/conftest.py sets the workers' thread environment before any framework
starts, configures each framework once, selects one framework with
``--bench-framework``, and warns in the terminal summary when several
frameworks, or other processes, shared the CPUs.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, needs

# One tiny case's forward phase, timed briefly.
TINY = ["--benchmark-only", "-q", "-p", "no:cacheprovider", "--benchmark-max-time=0.02",
        "--benchmark-min-rounds=3", "--benchmark-warmup=off"]
SELECT = "linear_regression and forward and 8192"
SEVERAL = "timed in one process"
SHARED = "other processes used the CPUs"


def run_suites(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "suites/", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def benchmarks(path) -> list[dict]:
    return json.loads(path.read_text())["benchmarks"]


@needs("torch", "jax")
def test_several_frameworks_in_one_process_are_warned_about(tmp_path):
    out = tmp_path / "pb.json"
    proc = run_suites(*TINY, "-k", f"{SELECT} and not tensorflow", f"--benchmark-json={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert {b["extra_info"]["framework"] for b in benchmarks(out)} == {"torch", "jax"}
    warning = next(line for line in proc.stdout.splitlines() if SEVERAL in line)
    assert warning.startswith("WARNING: torch, jax timed in one process")
    assert "cannot be compared with `bench run`" in warning
    assert "--bench-framework torch" in warning


@needs("torch")
def test_one_framework_runs_with_the_chosen_threads_and_no_warning(tmp_path):
    out = tmp_path / "pb.json"
    proc = run_suites(*TINY, "-k", SELECT, "--bench-framework", "torch", "--bench-threads", "1",
                      f"--benchmark-json={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (bench,) = benchmarks(out)  # --bench-framework deselected tensorflow's and jax's
    info = bench["extra_info"]
    assert info["framework"] == "torch"
    assert info["threads"] == 1
    assert info["settings"]["threads"] == 1  # torch.get_num_threads() inside the test
    if sys.platform.startswith("linux"):
        assert len(info["cpus"]) == 1  # the process was pinned to one CPU, as bench's worker
    assert info["other_cpu"] >= 0
    assert "threads 1 (OMP_NUM_THREADS" in proc.stdout
    assert "frameworks timed: torch" in proc.stdout
    assert SEVERAL not in proc.stdout


@needs("torch")
def test_other_processes_on_the_cpus_are_warned_about():
    # A busy loop in another process takes a CPU while the test is timed.
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        proc = run_suites("--benchmark-only", "-q", "-p", "no:cacheprovider",
                          "--benchmark-max-time=0.5", "-k", SELECT, "--bench-framework", "torch")
    finally:
        spinner.kill()
        spinner.wait()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    if not sys.platform.startswith("linux"):
        return  # no /proc/stat: nothing measured
    warning = next(line for line in proc.stdout.splitlines() if SHARED in line)
    assert "cannot be compared with `bench run`" in warning


def test_bench_threads_outside_the_usable_cpus_is_a_usage_error():
    proc = run_suites("--co", "-q", "-p", "no:cacheprovider", "--bench-threads", "0")
    assert proc.returncode == 4  # pytest's usage error
    assert "--bench-threads 0" in proc.stderr
