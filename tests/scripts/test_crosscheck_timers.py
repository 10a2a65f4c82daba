"""scripts/crosscheck_{jax,tf}_timer.py: both run end to end on a tiny case.

The verdict on a tiny case with a tiny budget means nothing (the calls last
microseconds and this machine may be busy): these tests check only that each
script prints both medians for both phases and exits 0 (agree) or 1
(disagree), never crashes, and that a bad argument is one line and exit 2.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT, needs

SCRIPTS = {
    "jax": ROOT / "scripts" / "crosscheck_jax_timer.py",
    "tensorflow": ROOT / "scripts" / "crosscheck_tf_timer.py",
}
TINY = ["--batch", "8", "--width", "8", "--depth", "1", "--threads", "1",
        "--budget", "0.05", "--block-ms", "2", "--repeats", "2"]


def run_script(framework: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS[framework]), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("framework", [
    pytest.param("jax", marks=needs("jax")),
    pytest.param("tensorflow", marks=needs("tensorflow")),
])
def test_tiny_case_prints_both_medians(framework):
    proc = run_script(framework, *TINY, "--phases", "pair")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    assert "batch=8,width=8,depth=1" in out and "threads 1" in out
    assert "a worker's (bench.execute.runner.worker_env)" in out
    for phase in ("forward", "gradient"):
        for method in ("bench Timer", "plain loop "):
            assert re.search(rf"^{phase}\s+{method} median: \d+\.\d+ ms", out, re.M), out
        verdict = rf"^{phase}\s+relative difference: [+-]\d+\.\d% paired, [+-]\d+\.\d% of the medians "
        assert re.search(verdict + r"\((within|OUTSIDE) 5%\)$", out, re.M), out
    outside = "OUTSIDE" in out
    assert proc.returncode == (1 if outside else 0), out


@needs("jax")
def test_worker_phases_and_callers_env():
    # Every phase in bench's rounds, as a worker times them; no re-exec.
    proc = run_script("jax", *TINY, "--repeats", "1", "--no-worker-env")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "forward, gradient, backward_split, step in its rounds" in proc.stdout
    assert "environment: the caller's" in proc.stdout


@pytest.mark.parametrize("framework", SCRIPTS)
@pytest.mark.parametrize("args", [
    ["--batch", "0"], ["--budget", "-1"], ["--threads", "100000"], ["--phases", "some"], ["--bogus"],
])
def test_bad_argument_is_one_line_and_exit_2(framework, args):
    proc = run_script(framework, *args, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], proc.stderr
    assert proc.stdout == ""
