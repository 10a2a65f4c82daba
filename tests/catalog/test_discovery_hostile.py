"""Suites that fight back at import (exit, crash, hang, print, raise Ctrl-C); suite names twice or misspelled.

A suite is the user's code: whatever it does at import, bench skips it with a
one-line message and goes on with the others. Each suite is first imported in
a child process (bench.catalog.isolation), so that exiting, crashing or hanging ends
the child, not bench.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import bench_cli
from factories import SUITE_HEADER

from bench.catalog import discovery, isolation, loader
from bench.core.errors import UserError, did_you_mean

# Bounded, so that a test never hangs for good even if the child check were bypassed.
LOOPS = "import time\n_end = time.monotonic() + {seconds}\nwhile time.monotonic() < _end:\n    pass\n"


def _folder(tmp_path: Path, **bodies: str) -> Path:
    """A suites folder with one file per keyword: the MLP header plus that body."""
    folder = tmp_path / "suites"
    folder.mkdir()
    for name, body in bodies.items():
        (folder / f"{name}.py").write_text(SUITE_HEADER + body)
    return folder


def _problem(problems: list[str], name: str) -> str:
    [line] = [p for p in problems if p.startswith(f"suite {name} ")]
    return line


def test_bench_list_skips_a_suite_that_calls_sys_exit_at_import(tmp_path):
    folder = _folder(tmp_path, quitter="import sys\nsys.exit(0)\n", good="")

    proc = bench_cli("list", "--suites", str(folder))

    assert proc.returncode == 0, proc.stderr
    assert "test suite" in proc.stdout  # good's DESCRIPTION: the good suite is listed
    [line] = [ln for ln in proc.stderr.splitlines() if "suite quitter " in ln]
    assert "calls sys.exit(0) at import" in line
    assert "Traceback" not in proc.stderr


def test_naming_a_suite_that_calls_sys_exit_is_a_user_error(tmp_path):
    folder = _folder(tmp_path, quitter="raise SystemExit('bye')\n", good="")

    proc = bench_cli("run", "--suites", str(folder), "--suite", "quitter", "--results", str(tmp_path / "r"))

    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "calls sys.exit('bye') at import" in proc.stderr
    assert not (tmp_path / "r").exists()


def _load_dir_elsewhere(folder: Path, setup: str = "") -> tuple[list[str], list[str]]:
    """``discovery.load_dir(folder)`` in a fresh interpreter: (suite names, problems).

    Were a hostile suite ever imported in this process (the check broken), its
    os._exit or segfault would end pytest itself; there it fails this test.
    """
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from bench.catalog import discovery, isolation
        {setup}
        suites, problems = discovery.load_dir(Path(sys.argv[1]))
        print(json.dumps([[s.name for s in suites], problems]))
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names, problems = json.loads(proc.stdout.splitlines()[-1])  # the suites may print before it
    return names, problems


def test_load_dir_skips_suites_that_hang_exit_crash_or_print_and_loads_the_rest(tmp_path):
    folder = _folder(
        tmp_path,
        a_good="",
        # What a suite prints at import, through sys.stdout or straight to fd 1, is not an answer.
        b_chatty='import os\nprint(\'{"problem": "fake"}\')\nos.write(1, b\'{"ready": true}\\n\')\n',
        c_multiline="raise RuntimeError('first line\\nsecond line')\n",
        d_hangs=LOOPS.format(seconds=60),
        e_exits="import os\nos._exit(3)\n",
        f_segfaults="import ctypes\nctypes.string_at(0)\n",
        g_interrupts="raise KeyboardInterrupt\n",
        z_good="",
    )

    started = time.monotonic()
    names, problems = _load_dir_elsewhere(folder, "isolation.TIMEOUT_S = 2.0")

    assert time.monotonic() - started < 30
    assert names == ["a_good", "b_chatty", "z_good"]
    assert len(problems) == 5
    assert "fails to import: RuntimeError: first line second line" in _problem(problems, "c_multiline")
    assert "did not finish importing within 2 s" in _problem(problems, "d_hangs")
    assert "ends the process at import (exit code 3" in _problem(problems, "e_exits")
    assert "crashes the process at import (killed by SIGSEGV)" in _problem(problems, "f_segfaults")
    assert "fails to import: KeyboardInterrupt" in _problem(problems, "g_interrupts")
    assert all("\n" not in p for p in problems)


def test_load_dir_imports_in_process_when_no_child_can_start(tmp_path):
    folder = _folder(tmp_path, good="", quitter="import sys\nsys.exit(0)\n")

    names, problems = _load_dir_elsewhere(folder, f"sys.executable = {str(tmp_path / 'no-python')!r}")

    assert names == ["good"]
    assert "calls sys.exit(0) at import" in _problem(problems, "quitter")


def test_load_file_turns_sys_exit_into_a_user_error_but_lets_ctrl_c_through(tmp_path):
    folder = _folder(tmp_path, quitter="import sys\nsys.exit(4)\n", interrupted="raise KeyboardInterrupt\n")

    with pytest.raises(UserError, match=r"calls sys.exit\(4\) at import"):
        loader.load_file(folder / "quitter.py")
    assert "bench_suite_quitter" not in sys.modules  # a failed import leaves nothing half-made
    # In-process, a KeyboardInterrupt is the user's Ctrl-C: it stops bench, it does not break the suite.
    with pytest.raises(KeyboardInterrupt):
        loader.load_file(folder / "interrupted.py")


@pytest.mark.slow  # waits out the default 30 s import timeout
def test_bench_list_does_not_hang_on_a_suite_that_loops_at_import(tmp_path):
    folder = _folder(tmp_path, good="", loops=LOOPS.format(seconds=300))

    proc = bench_cli("list", "--suites", str(folder), timeout=120)

    assert proc.returncode == 0, proc.stderr
    assert "test suite" in proc.stdout
    [line] = [ln for ln in proc.stderr.splitlines() if "suite loops " in ln]
    assert f"did not finish importing within {isolation.TIMEOUT_S:g} s" in line


def test_ctrl_c_while_a_suite_hangs_at_import_stops_bench_and_the_child(tmp_path):
    pid_file = tmp_path / "child.pid"
    folder = _folder(tmp_path, loops=textwrap.dedent(f"""
        import os
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
    """) + LOOPS.format(seconds=60))
    exe = Path(sys.executable).with_name("bench")
    proc = subprocess.Popen([str(exe), "list", "--suites", str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert stderr == "bench: interrupted\n"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the child that imported the looping suite (pid {child}) still runs")


def test_a_suite_named_twice_is_selected_once(tmp_path):
    folder = _folder(tmp_path, good="", other="")

    suites, _ = discovery.select(folder, ["good", "other", "good"])

    assert [s.name for s in suites] == ["good", "other"]


def test_a_misspelled_suite_gets_a_suggestion(tmp_path):
    folder = _folder(tmp_path, softsign="", mlp="")

    proc = bench_cli("run", "--suites", str(folder), "--suite", "sofstign", "--results", str(tmp_path / "r"))

    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert "unknown suite 'sofstign'" in line and "did you mean 'softsign'?" in line
    assert "known suites are mlp, softsign" in line


def test_did_you_mean():
    assert did_you_mean("Sofsign", ["softsign", "mlp_regression"]) == "did you mean 'softsign'? "
    assert did_you_mean("tensorflwo", ["torch", "tensorflow", "jax"]) == "did you mean 'tensorflow'? "
    assert did_you_mean("mxnet", ["torch", "tensorflow", "jax"]) == ""


def test_a_suite_written_for_bench_spec_is_told_the_new_import(tmp_path):
    from bench.catalog.loader import load_file

    old = tmp_path / "old.py"
    old.write_text("from bench.spec import Flops, Problem\n")
    with pytest.raises(UserError, match=r"bench.spec is gone: write `from bench import Flops, Memory"):
        load_file(old)
