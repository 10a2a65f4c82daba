"""Imports suite files in a child process first, so that a suite which exits, crashes or hangs
at import is skipped with a message instead of ending or blocking bench itself.

The parent (``check``) starts ``python -m bench.catalog.isolation PATH...``. The child says
``{"ready": true}`` once bench itself is imported, then one ``{"problem": ...}`` line per
path, in order, on a private copy of its stdout (what the suites print goes to
/dev/null). A path that gets no answer within the timeout hangs; a child that dies
before answering died on that path. Either way that suite is marked broken and a fresh
child goes on with the paths after it. The cost is one interpreter start and a second
import of each good suite (well under a second for the shipped suites), paid by
``bench list`` and ``bench run`` before anything is measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

# Importing a suite takes well under a second (NumPy, no framework). One that takes this
# long is taken to hang: long enough for a slow disk or a busy machine.
TIMEOUT_S = 30.0
# The child's own start (Python, bench, NumPy from a cold disk) is not a suite's hang.
START_TIMEOUT_S = 60.0


def check(paths: Sequence[Path], timeout_s: float | None = None) -> dict[Path, str]:
    """Import each of ``paths`` in a child process: ``{path: why it is broken}`` for the bad ones.

    ``timeout_s`` (default ``TIMEOUT_S``) is how long one suite may take to import.

    A path missing from the answer imported cleanly, or was not checked because
    the child could not start at all (then bench imports it in-process, as it
    did before this check existed: a child that cannot start is bench's
    problem, not the suite's).
    """
    timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
    problems: dict[Path, str] = {}
    todo = list(paths)
    while todo:
        answers, failure = _child(todo, timeout_s)
        if answers is None:  # the child did not start: leave the rest unchecked
            break
        for path, problem in zip(todo, answers, strict=False):
            if problem:
                problems[path] = problem
        if failure is None:
            break
        bad = todo[len(answers)]
        problems[bad] = f"suite {bad.stem} ({bad}) {failure}"
        todo = todo[len(answers) + 1:]
    return problems


def _child(paths: list[Path], timeout_s: float) -> tuple[list[str | None] | None, str | None]:
    """One child over ``paths``: (its answers in order, or None if it never got ready;
    why it stopped before answering them all, or None)."""
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.catalog.isolation", *map(str, paths)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", errors="replace",
            # Its own session: a Ctrl-C in the terminal reaches bench, which then kills it,
            # and a suite that starts processes at import is killed with it.
            start_new_session=True,
        )
    except OSError:  # no interpreter to start (an embedded Python): import in-process
        return None, None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None  # stdout=PIPE: never None, though Popen types it Optional
        with contextlib.suppress(OSError, ValueError):
            for line in proc.stdout:
                lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    answers: list[str | None] = []
    ready = False
    try:
        while len(answers) < len(paths):
            try:
                line = lines.get(timeout=timeout_s if ready else max(timeout_s, START_TIMEOUT_S))
            except queue.Empty:
                if not ready:
                    return None, None
                return answers, (f"did not finish importing within {timeout_s:g} s "
                                 "(a loop or a blocking call at import?)")
            if line is None:
                if not ready:
                    return None, None
                try:
                    returncode = proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:  # closed its output, then went on: as good as hung
                    return answers, f"closes bench's pipe and did not finish importing within {timeout_s:g} s"
                return answers, _death(returncode)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("ready"):
                ready = True
            elif ready and "problem" in message:
                problem = message["problem"]
                answers.append(str(problem) if problem else None)
        return answers, None
    finally:
        _kill(proc)


def _death(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"crashes the process at import (killed by {name})"
    return f"ends the process at import (exit code {returncode}, e.g. os._exit)"


def _kill(proc: subprocess.Popen) -> None:
    """The child and anything a suite started in its session, gone (it has answered, or hangs).

    Its stdout is left to the reading thread, which ends at end of file: closing
    it here would wait for that thread while a process the suite forked out of
    the session still holds the pipe.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def main(argv: Sequence[str]) -> None:
    """The child: import each suite path, one answer line per path."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    # What the suites print must not mix with the answers.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    from bench.catalog import loader
    from bench.core.errors import UserError

    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for arg in argv:
        path = Path(arg)
        problem: str | None = None
        try:
            loader.load_file(path)
        except UserError as exc:
            problem = str(exc)
        except BaseException as exc:  # SIGINT goes to bench, not here: the suite raised it
            problem = f"suite {path.stem} ({path}) fails to import: {type(exc).__name__}: {exc}"
        answers.write(json.dumps({"problem": problem}) + "\n")
        answers.flush()
    answers.close()
    # Not a normal exit: a suite's atexit hooks or threads must not keep the child alive.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
