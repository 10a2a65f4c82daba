"""Item 9: a worker never outlives its runner, even one killed with SIGKILL.

Each test starts a real ``python -m bench.measure.worker`` on a case that loops
forever (tests/data/suites/spin) and takes its runner away: the worker must be
gone within seconds, not spin on in its own session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT, TEST_SUITES, needs

from bench.core.settings import Settings
from bench.execute.runner import worker_env
from bench.measure import protocol as proto

SPIN = TEST_SUITES / "spin" / "spin_mlp.py"
GONE_WITHIN_S = 10.0


def job_line(parent_pid: int) -> str:
    """A job whose only case spins forever."""
    return proto.WorkerJob(
        framework="torch", device="cpu", mode="eager", run_id="r", machine="m",
        settings=Settings(threads=1, budget_s=0.02, quick=True), parent_pid=parent_pid,
        suites=(proto.SuiteCases(str(SPIN), ({"batch": 16, "width": 16, "depth": 2},)),),
    ).to_line()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie no one reaped has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_gone(pid: int, within_s: float = GONE_WITHIN_S) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# The runner's stand-in: starts the worker as bench.execute.runner does (a session of
# its own) on the given stdin, prints the worker's pid, and waits to be killed.
PARENT = textwrap.dedent("""
    import subprocess, sys, time
    stdin = int(sys.argv[1]) if len(sys.argv) > 1 else subprocess.PIPE
    worker = subprocess.Popen([sys.executable, "-m", "bench.measure.worker"], stdin=stdin,
                              start_new_session=True, stdout=subprocess.DEVNULL)
    if stdin == subprocess.PIPE:
        worker.stdin.write(sys.stdin.readline().encode())
        worker.stdin.flush()
    print(worker.pid, flush=True)
    time.sleep(3600)
""")

pytestmark = [needs("torch"), pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")]


def test_a_worker_whose_runner_is_sigkilled_ends_at_once():
    """The runner's end of stdin closes with it: the worker ends itself and what it started."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=ROOT, env=worker_env(Settings(threads=1)))
    parent.stdin.write(job_line(parent.pid))
    parent.stdin.flush()
    pid = int(parent.stdout.readline())
    try:
        time.sleep(0.5)
        assert alive(pid)
        parent.kill()
        parent.wait()
        assert wait_gone(pid), "the worker outlived its runner"
    finally:
        kill_quietly(pid)


def test_a_worker_ends_when_its_parent_dies_even_with_stdin_held_open():
    """PR_SET_PDEATHSIG: another process keeps the pipe open, the parent's death still ends the worker."""
    read, write = os.pipe()
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(read)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT, pass_fds=(read,), env=worker_env(Settings(threads=1)))
    os.close(read)
    os.write(write, job_line(parent.pid).encode())  # this test holds the write end: no end of file
    pid = int(parent.stdout.readline())
    try:
        time.sleep(0.5)
        assert alive(pid)
        parent.kill()
        parent.wait()
        assert wait_gone(pid), "the worker outlived its parent"
    finally:
        kill_quietly(pid)
        os.close(write)


def test_a_worker_stops_at_the_end_of_its_stdin_mid_case():
    """No parent check (parent_pid 0): the end of file alone ends a worker that is busy in a case."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.measure.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                            start_new_session=True, env=worker_env(Settings(threads=1)))
    try:
        proc.stdin.write(job_line(0))
        proc.stdin.flush()
        # Wait until it is in the spinning case, then take its stdin away.
        for line in proc.stdout:
            if proto.decode(line) == proto.CaseStarted("spin_mlp", "batch=16,width=16,depth=2"):
                break
        proc.stdin.close()
        proc.wait(timeout=GONE_WITHIN_S)
    finally:
        kill_quietly(proc.pid)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
