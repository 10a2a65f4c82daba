"""``bench run`` hardening (issue #9): values, the results folder, write failures, SIGTERM, run ids.

Bad values go through the real entry point. The write failure and SIGTERM
tests call ``bench.cli.main`` in-process with scripted workers
(``fake_worker``), so no framework runs; the slow tests at the end do the
same with a real ``bench run`` and real workers.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TEST_SUITES, bench_cli, needs
from fake_worker import (
    ENV,
    TINY,
    cases_of,
    healthy,
    measure,
)

import bench
from bench import store
from bench.execute import runner
from bench.measure import protocol as proto
from bench.store import outputs


def assert_user_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


# --- values rejected before anything runs (items 13, 8) --------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--timeout", "inf"], ["--timeout inf", "at most 86400"]),
        (["--timeout", "1e300"], ["--timeout 1e+300", "at most 86400"]),
        (["--timeout", "nan"], ["--timeout nan"]),
        (["--timeout", "0"], ["--timeout 0", "above 0"]),
        (["--budget", "1e9"], ["--budget 1000000000.0", "at most 3600"]),
        (["--budget", "inf"], ["--budget inf", "at most 3600"]),
        (["--seed", "-1"], ["--seed -1", "0 to 4294967295"]),
        (["--seed", str(2**64)], [f"--seed {2**64}", "0 to 4294967295"]),
        (["--precision", "0.02", "--max-time", "1e300"], ["--max-time 1e+300", "at most 86400"]),
        (["--machine", "m" * 300], ["--machine", "300 characters", "at most 100"]),
    ],
)
def test_out_of_range_values_are_one_line_exit_2_and_write_nothing(tmp_path, args, words):
    proc = bench_cli("run", "--results", str(tmp_path / "results"), *args)
    assert_user_error(proc, *words)
    assert not (tmp_path / "results").exists()


def test_results_at_a_file_is_refused_before_any_case(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    proc = bench_cli("run", "--framework", "torch", "--suites", str(TEST_SUITES / "tiny"), "--quick",
                     "--machine", "m", "--results", str(afile), "--no-report")
    assert_user_error(proc, "--results", "is not a folder")
    assert afile.read_text() == "not a folder"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_results_under_proc_is_refused_before_any_case(tmp_path):
    proc = bench_cli("run", "--framework", "torch", "--suites", str(TEST_SUITES / "tiny"), "--quick",
                     "--machine", "m", "--results", "/proc/bench-results", "--no-report")
    assert_user_error(proc, "--results: cannot write in /proc/bench-results/m")


def test_a_readonly_results_folder_is_refused_before_any_case(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o500)
    try:
        proc = bench_cli("run", "--framework", "torch", "--suites", str(TEST_SUITES / "tiny"), "--quick",
                         "--machine", "m", "--results", str(results), "--no-report")
    finally:
        results.chmod(0o700)
    assert_user_error(proc, "--results: cannot write in", "Permission denied")


def test_check_writable_leaves_no_folder_and_no_probe_behind(tmp_path):
    outputs.results_root(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    outputs.results_root(tmp_path / "kept")
    assert list((tmp_path / "kept").iterdir()) == []


def test_help_documents_the_exit_codes():
    proc = bench_cli("run", "--help")
    text = " ".join(proc.stdout.split())
    for words in ("3 the results could not be written", "130 interrupted by Ctrl-C or SIGTERM",
                  "1 some rows failed", "at most 86400"):
        assert words in text, words


def test_run_ids_have_64_random_bits_and_do_not_collide():
    """Item 15: 2,000 ids made in a loop (the same second) are all different."""
    ids = [store.new_run_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{16}", i) for i in ids)


# --- in-process runs with scripted workers ---------------------------------------------------


def test_a_full_disk_mid_run_stops_with_exit_3_naming_the_shards_kept(fake_run, monkeypatch,
                                                                              tmp_path, capsys):
    """Item 8: the second write fails (ENOSPC): one line, exit code 3, the first case kept."""
    run, start = fake_run
    workers = start(healthy)
    original = store.ResultsWriter.flush
    writes = []

    def flush(self):
        writes.append(self.path)
        if len(writes) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self)

    monkeypatch.setattr(store.ResultsWriter, "flush", flush)
    code = run()
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    path = writes[0]
    # The run exists as the shard of its first case: the line names them, and they load as the run.
    assert last.startswith(f"bench: error: cannot write {path} (No space left on device): the run stopped; "
                           f"the cases finished before it are kept as shards in "), last
    assert f"`bench report {path}` and bench.load read them" in last
    df = bench.load(path)
    assert set(df.case) == {TINY.cases(quick=True)[0].id}
    assert workers.links[0].killed.is_set()  # the worker did not go on measuring


def test_a_write_failure_before_the_first_file_says_none_was_written(fake_run, monkeypatch, capsys):
    run, start = fake_run
    start(healthy)

    def flush(self):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store.ResultsWriter, "flush", flush)
    assert run() == 3
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "(Input/output error): the run stopped; no results file was written")


@pytest.fixture
def sigterm_guard():
    """Should bench not handle SIGTERM, the test fails instead of pytest dying."""
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *a: seen.append(a))
    yield seen
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_ends_the_run_as_ctrl_c_does(fake_run, sigterm_guard, tmp_path, capsys):
    """Item 9: SIGTERM keeps the cases finished so far, ends the worker, exits 130."""
    run, start = fake_run

    def terminated_in_case_two(link):
        job = link.job()
        link.emit(ENV)
        first, second = cases_of(job, TINY)
        measure(link, job, first)
        if not link.go_ahead():
            return None
        link.emit(proto.CaseStarted(second.suite, second.id))
        os.kill(os.getpid(), signal.SIGTERM)
        if not link.killed.wait(5):  # not handled: finish, and let the test fail on its code
            measure(link, job, second)
            link.emit(proto.Done())
        return None

    workers = start(terminated_in_case_two)
    code = run()
    err = capsys.readouterr().err
    assert code == 130, err
    assert "Traceback" not in err and not sigterm_guard
    assert workers.links[0].killed.is_set()
    [path] = (tmp_path / "results" / "m").glob("*.parquet")
    meta = store.read_metadata(path)
    assert meta["interrupted"] is True and meta["finished"] is not None
    df = bench.load(path)
    assert set(df.case) == {TINY.cases(quick=True)[0].id} and (df.status == "ok").all()


def test_the_sigterm_handler_is_put_back_after_the_run(fake_run, sigterm_guard):
    run, start = fake_run
    start(healthy)
    before = signal.getsignal(signal.SIGTERM)
    assert run() == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_while_the_worker_starts_is_one_line_and_exit_130(fake_run, monkeypatch, capsys):
    """Item 15: Ctrl-C before any case (the worker still starting) is no traceback."""
    run, _start = fake_run

    def interrupted(settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "start_worker", interrupted)
    assert run() == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "bench: interrupted"


# --- real runs, real workers (slow) ----------------------------------------------------------


def bench_popen(*args: str) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("bench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bench"]
    return subprocess.Popen([*cmd, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "200"})


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def spin_run(tmp_path) -> tuple[subprocess.Popen, Path, int]:
    """A real ``bench run``, its first case stored, its second spinning forever: (proc, file, worker)."""
    proc = bench_popen("run", "--framework", "torch", "--suites", str(TEST_SUITES / "spin"), "--quick",
                       "--budget", "0.05", "--machine", "m", "--results", str(tmp_path), "--no-report",
                       "--timeout", "600")
    deadline = time.monotonic() + 120
    # The first case is stored as a shard, <machine>/<run-id>/part-000001.parquet; the run
    # is named <machine>/<run-id>.parquet, which readers find from its shards until it ends.
    while time.monotonic() < deadline and not list((tmp_path / "m").rglob("*.parquet")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    [shard] = (tmp_path / "m").rglob("*.parquet")
    path = tmp_path / "m" / f"{shard.parent.name}.parquet"
    [worker] = children(proc.pid)
    return proc, path, worker


@pytest.mark.slow
@needs("torch")
def test_sigterm_of_a_real_run_keeps_the_results_and_ends_the_worker(tmp_path):
    proc, path, worker = spin_run(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker), "the worker outlived bench run"
    assert store.read_metadata(path)["interrupted"] is True
    assert set(bench.load(path).case) == {"batch=8,width=16,depth=2"}


@pytest.mark.slow
@needs("torch")
def test_sigkill_of_a_real_run_ends_the_worker(tmp_path):
    proc, _path, worker = spin_run(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker), "the worker outlived a SIGKILLed bench run"


@pytest.mark.slow
@needs("torch")
def test_a_slow_case_longer_than_the_timeout_is_measured_not_hung(tmp_path):
    """Item 14 as reported: calls of 50 ms make a case of over 10 s; --timeout 4 counts silence only."""
    started = time.monotonic()
    proc = bench_cli("run", "--framework", "torch", "--suites", str(TEST_SUITES / "slow"), "--quick",
                     "--budget", "0.05", "--machine", "m", "--results", str(tmp_path), "--no-report",
                     "--timeout", "4")
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    df = bench.load(tmp_path / "m")
    assert (df.status == "ok").all(), df.reason.tolist()
    assert took > 2 * 4  # the case lasted well beyond the timeout
