"""Plans the matrix of jobs, runs one worker subprocess per job, collects rows.

A job is one framework on one device, over all cases asked for. Jobs run one
after another, never side by side: two frameworks timed at once would steal
cores (or GPU time) from each other.
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
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from bench import frameworks
from bench.discovery import Suite
from bench.spec import PHASES, Case, Record, Settings, params_json


@dataclass(frozen=True)
class Job:
    """One framework on one device, running these suites' cases."""

    framework: str
    device: str
    mode: str
    suites: tuple[tuple[Suite, tuple[Case, ...]], ...]

    @property
    def cases(self) -> list[Case]:
        return [c for _, cases in self.suites for c in cases]

    @property
    def label(self) -> str:
        return f"{self.framework} ({self.mode}) on {self.device}"


def plan(
    pairs: Sequence[tuple[str, str]],
    devices: Sequence[str],
    suites: Sequence[Suite],
    quick: bool,
    cases: Mapping[str, Sequence[Case]] | None = None,
) -> list[Job]:
    """Every (framework, mode) on every device, each over the suites that support it.

    ``cases`` (suite name -> cases) replaces a suite's grid with the cases given.
    """
    cases = cases or {}
    jobs = []
    for device in devices:
        for name, mode in pairs:
            chosen = tuple((s, tuple(cases.get(s.name) or s.cases(quick)))
                           for s in suites if name in s.frameworks)
            if chosen:
                jobs.append(Job(name, device, mode, chosen))
    return jobs


def worker_env(settings: Settings) -> dict[str, str]:
    """The worker's environment: thread pools sized, GPU memory not grabbed, logs quiet."""
    n = str(settings.threads)
    return {
        **os.environ,
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": n,
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    }


class Observer(Protocol):
    """What the runner reports while it works (the CLI draws progress from it)."""

    def job_started(self, job: Job) -> None: ...
    def case_started(self, job: Job, case: str) -> None: ...
    def case_finished(self, job: Job, case: str, records: list[Record]) -> None: ...
    def job_finished(self, job: Job, outcome: JobOutcome) -> None: ...


@dataclass
class JobOutcome:
    """What one worker produced: its records, its environment, or why it could not run."""

    records: list[Record] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    unavailable: str = ""
    crashed: str = ""


def _placeholder(job: Job, case: Case, status: str, reason: str, settings: Settings,
                 run_id: str, machine: str) -> list[Record]:
    """Rows for a case the worker could not measure, one per phase."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return [
        Record(
            run_id=run_id, machine=machine, suite=case.suite, case=case.id,
            params=params_json(case), framework=job.framework,
            framework_version=frameworks.get(job.framework).version(),
            mode=job.mode, device=job.device, phase=phase, status=status, reason=reason,
            threads=settings.threads, allow_tf32=settings.allow_tf32, dtype=settings.dtype,
            timestamp=stamp,
        )
        for phase in PHASES
    ]


def _death_reason(returncode: int | None, stderr: deque[str]) -> str:
    if returncode is not None and returncode < 0:
        sig = signal.Signals(-returncode).name
        why = f"the worker was killed by {sig}"
        if sig == "SIGKILL":
            why += " (out of memory, or killed from outside)"
    else:
        why = f"the worker exited with code {returncode}"
    last = next((line for line in reversed(stderr) if line.strip()), "")
    return f"{why}; last output: {last.strip()[:300]}" if last else why


def _payload(job: Job, cases: Sequence[Case], settings: Settings, run_id: str, machine: str,
             repeat: int = 0) -> dict[str, Any]:
    paths = {s.name: str(s.path) for s, _ in job.suites}
    by_suite: dict[str, list[dict[str, int]]] = {}
    for c in cases:
        by_suite.setdefault(c.suite, []).append(c.as_dict())
    return {
        "framework": job.framework,
        "device": job.device,
        "mode": job.mode,
        "run_id": run_id,
        "machine": machine,
        "settings": asdict(settings),
        "suites": [{"path": paths[name], "cases": cs} for name, cs in by_suite.items()],
        "repeat": repeat,
    }


def run_job(
    job: Job,
    settings: Settings,
    run_id: str,
    machine: str,
    observer: Observer,
    on_records: Callable[[list[Record]], None],
    repeat: int = 0,
) -> JobOutcome:
    """Run the job's cases in a worker; never raises for the worker's failures.

    ``repeat`` numbers the process of ``--processes N`` (0: the first, which
    also checks equivalence and measures memory; later ones only add rounds).

    A worker that dies or hangs in a case loses that case only: the case is
    recorded as crashed with the reason, and a fresh worker takes the cases
    after it. A worker that dies outside any case (it cannot even start) would
    die again, so its remaining cases are recorded as not run.
    """
    outcome = JobOutcome()
    remaining = list(job.cases)
    lost: list[Record] = []
    while remaining:
        current, death = _attempt(job, remaining, settings, run_id, machine, observer,
                                  on_records, outcome, repeat)
        if outcome.unavailable:
            for case in remaining:
                lost += _placeholder(job, case, "skipped", outcome.unavailable, settings, run_id,
                                     machine)
            break
        if not death:
            break
        if current is None:
            outcome.crashed = death
            for case in remaining:
                lost += _placeholder(job, case, "crashed", f"not run: {death}", settings, run_id,
                                     machine)
            break
        records = _placeholder(job, current, "crashed", death, settings, run_id, machine)
        outcome.records.extend(records)
        on_records(records)
        observer.case_finished(job, current.id, records)
    outcome.records.extend(lost)
    # Rows of an unavailable device are left to the caller: a run where no
    # framework can use the device must write nothing.
    if lost and not outcome.unavailable:
        on_records(lost)
    observer.job_finished(job, outcome)
    return outcome


def _attempt(
    job: Job,
    remaining: list[Case],
    settings: Settings,
    run_id: str,
    machine: str,
    observer: Observer,
    on_records: Callable[[list[Record]], None],
    outcome: JobOutcome,
    repeat: int = 0,
) -> tuple[Case | None, str]:
    """One worker process over ``remaining`` (cases are popped as they start).

    Returns the case in progress and the reason when the worker died or hung,
    ``(None, "")`` when it finished.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=worker_env(settings), start_new_session=True,
    )
    events: queue.Queue[str | None] = queue.Queue()
    stderr: deque[str] = deque(maxlen=200)

    def pump_stdout() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            events.put(line)
        events.put(None)

    def pump_stderr() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            stderr.append(line)

    threading.Thread(target=pump_stdout, daemon=True).start()
    err_thread = threading.Thread(target=pump_stderr, daemon=True)
    err_thread.start()
    proc.stdin.write(json.dumps(_payload(job, remaining, settings, run_id, machine, repeat)))  # type: ignore[union-attr]
    proc.stdin.close()  # type: ignore[union-attr]

    current: Case | None = None
    pending: list[Record] = []
    try:
        while True:
            try:
                line = events.get(timeout=settings.timeout_s)
            except queue.Empty:
                _kill(proc)
                return current, (
                    f"the worker hung: no progress for {settings.timeout_s:.0f} s (raise --timeout)"
                )
            if line is None:
                break
            event = json.loads(line)
            kind = event["event"]
            if kind == "env":
                outcome.env = event
            elif kind == "unavailable":
                outcome.unavailable = event["reason"]
            elif kind == "case":
                current = remaining.pop(0)
                pending = []
                observer.case_started(job, current.id)
            elif kind == "record":
                pending.append(Record.from_dict(event["record"]))
                if current is not None and len(pending) == len(PHASES):
                    outcome.records.extend(pending)
                    on_records(pending)
                    observer.case_finished(job, current.id, pending)
                    current = None
            elif kind == "done":
                proc.wait()
                return None, ""
    except BaseException:
        _kill(proc)
        raise
    proc.wait()
    err_thread.join(timeout=5)
    return current, _death_reason(proc.returncode, stderr)


def probe(framework: str, threads: int, timeout_s: float = 180.0) -> dict[str, Any]:
    """Start ``framework`` in a worker and return what it sees, or ``{"error": ...}``."""
    job = {"probe": True, "framework": framework, "threads": threads}
    settings = Settings(threads=threads)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.worker"], input=json.dumps(job),
            capture_output=True, text=True, timeout=timeout_s, env=worker_env(settings),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{framework} did not start within {timeout_s:.0f} s"}
    for line in done.stdout.splitlines():
        event = json.loads(line)
        if event["event"] == "probe":
            return event
    return {"error": _death_reason(done.returncode, deque(done.stderr.splitlines()))}


def _kill(proc: subprocess.Popen) -> None:
    """Kill the worker and anything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
