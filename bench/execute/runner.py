"""Plans the matrix of jobs, runs one worker subprocess per job, collects rows.

A job is one framework on one device, over all cases asked for. Jobs run one
after another, never side by side: two frameworks timed at once would steal
cores (or GPU time) from each other.

The runner and its worker speak ``bench.measure.protocol``: the runner checks every
event against the job (each case's id, one row per phase, an explicit end of
each case), and a worker that breaks the protocol is treated as one that
died. ``--timeout`` counts the worker's silence: a worker sends heartbeats
while it makes progress, however long its case.
"""


from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from bench import backends
from bench.core import records
from bench.core.cases import Case
from bench.core.records import PHASES, Record
from bench.core.settings import Settings
from bench.execute.jobs import Job
from bench.measure import protocol as proto


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
        # torch.compile starts a pool of compile workers (one per core) in the
        # background on a GPU; seen on an H100, they ran beside the first case's
        # timed rounds. Compiling in the worker itself keeps the rounds alone.
        "TORCHINDUCTOR_COMPILE_THREADS": os.environ.get("TORCHINDUCTOR_COMPILE_THREADS", "1"),
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
    origin = records.Origin(run_id, machine, job.framework, backends.get(job.framework).version(), job.mode,
                            job.device)
    return [records.make(origin, case, phase, status, settings, reason=reason) for phase in PHASES]


def _death_reason(returncode: int | None, stderr: deque[str]) -> str:
    if returncode is not None and returncode < 0:
        try:
            sig = signal.Signals(-returncode).name
        except ValueError:  # a signal without a name here (a real-time one)
            sig = f"signal {-returncode}"
        why = f"the worker was killed by {sig}"
        if sig == "SIGKILL":
            why += " (out of memory, or killed from outside)"
    else:
        why = f"the worker exited with code {returncode}"
    last = next((line for line in reversed(stderr) if line.strip()), "")
    return f"{why}; last output: {last.strip()[:300]}" if last else why


def _payload(job: Job, cases: Sequence[Case], settings: Settings, run_id: str, machine: str,
             repeat: int = 0) -> proto.WorkerJob:
    paths = {s.name: str(s.path) for s, _ in job.suites}
    by_suite: dict[str, list[dict[str, int]]] = {}
    for c in cases:
        by_suite.setdefault(c.suite, []).append(c.as_dict())
    return proto.WorkerJob(
        framework=job.framework, device=job.device, mode=job.mode, run_id=run_id, machine=machine,
        settings=settings,
        suites=tuple(proto.SuiteCases(paths[name], tuple(cs)) for name, cs in by_suite.items()),
        repeat=repeat, parent_pid=os.getpid(),
    )


class Link(Protocol):
    """The runner's end of one worker: a real subprocess (``WorkerProcess``) or, in tests, a fake."""

    def send(self, line: str) -> None:
        """Write one line to the worker (a job, a go-ahead); nothing happens if it is gone."""
        ...

    def receive(self, timeout_s: float) -> str | None:
        """The worker's next line, None once it closed its output; TimeoutError after silence."""
        ...

    def close(self) -> None:
        """Close the worker's input and wait for it to exit."""
        ...

    def kill(self) -> None:
        """End the worker and anything it started, now."""
        ...

    def death(self) -> str:
        """Why the worker ended (after ``close``), in words, with its last output."""
        ...


class WorkerProcess:
    """``python -m bench.measure.worker`` in a session of its own, its output read by threads."""

    def __init__(self, settings: Settings) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.measure.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=worker_env(settings), start_new_session=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=200)
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        self._err_thread = threading.Thread(target=self._pump_stderr, daemon=True)
        self._err_thread.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None  # stdout=PIPE: never None, though Popen types it Optional
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None  # stderr=PIPE, as stdout
        for line in self.proc.stderr:
            self._stderr.append(line)

    def send(self, line: str) -> None:
        # A worker that died reads nothing; its death shows on its output.
        assert self.proc.stdin is not None  # stdin=PIPE, as stdout
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(line)
            self.proc.stdin.flush()

    def receive(self, timeout_s: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError from None

    def close(self) -> None:
        if self.proc.stdin is not None:
            _close(self.proc.stdin)
        self.proc.wait()
        self._err_thread.join(timeout=5)

    def kill(self) -> None:
        _kill(self.proc)

    def death(self) -> str:
        return _death_reason(self.proc.returncode, self._stderr)


def start_worker(settings: Settings) -> Link:
    """A fresh worker process (tests replace this with a scripted fake)."""
    return WorkerProcess(settings)


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

    A worker that dies, hangs or breaks the protocol in a case loses that
    case only: the case is recorded as crashed with the reason, and a fresh
    worker takes the cases after it. A worker that fails outside any case (it
    cannot even start) would fail again, so its remaining cases are recorded
    as not run. What ``on_records`` raises (the results file cannot be
    written) ends the job: the worker is killed and the exception goes on.
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


class _Case:
    """The case in progress in a worker and the rows it has sent so far."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.rows: list[Record] = []

    def check(self, suite: str, case: str, what: str) -> None:
        if (suite, case) != (self.case.suite, self.case.id):
            raise proto.ProtocolError(
                f"{what} {suite}/{case} during case {self.case.suite}/{self.case.id}")

    def complete(self) -> list[Record]:
        """The case's rows, one per phase, or a ProtocolError saying what is missing or extra."""
        phases = sorted(r.phase for r in self.rows)
        if phases != sorted(PHASES):
            raise proto.ProtocolError(
                f"case {self.case.id} ended with rows for {phases or 'no phase'}, not one per phase")
        return self.rows


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
    """One worker over ``remaining`` (cases are popped as they start).

    Returns the case in progress and the reason when the worker died, hung
    (sent nothing, not even a heartbeat, for ``settings.timeout_s``) or broke
    the protocol; ``(None, "")`` when it finished.
    """
    link = start_worker(settings)
    link.send(_payload(job, remaining, settings, run_id, machine, repeat).to_line())
    talk = _Conversation(job, remaining, observer, on_records, outcome, link)
    try:
        while True:
            try:
                line = link.receive(settings.timeout_s)
            except TimeoutError:
                link.kill()
                return _case(talk.current), (
                    f"the worker hung: no progress for {settings.timeout_s:.0f} s (raise --timeout)"
                )
            if line is None:
                break
            try:
                if talk.handle(proto.decode(line)):
                    link.close()
                    return None, ""
            except proto.ProtocolError as exc:
                link.kill()
                return _case(talk.current), f"the worker broke the protocol: {exc}"[:500]
    except BaseException:
        link.kill()
        raise
    link.close()
    return _case(talk.current), link.death()


@dataclass
class _Conversation:
    """The runner's side of one worker's events: checks their order and stores what they carry."""

    job: Job
    remaining: list[Case]
    observer: Observer
    on_records: Callable[[list[Record]], None]
    outcome: JobOutcome
    link: Link
    current: _Case | None = None

    def handle(self, event: proto.Event) -> bool:
        """Act on one event; True when the worker said it is done. Raises ProtocolError."""
        if isinstance(event, proto.Heartbeat):
            return False
        if isinstance(event, proto.Env):
            self.outcome.env = event.metadata()
        elif isinstance(event, proto.Unavailable):
            self.outcome.unavailable = event.reason
        elif isinstance(event, proto.CaseStarted):
            self._start(event)
        elif isinstance(event, proto.RecordRow):
            if self.current is None:
                raise proto.ProtocolError("a row outside any case")
            self.current.check(event.record.suite, event.record.case, "a row of")
            self.current.rows.append(event.record)
        elif isinstance(event, proto.CaseFinished):
            self._finish(event)
        elif isinstance(event, proto.Done):
            if self.current is not None:
                raise proto.ProtocolError(f"done in the middle of case {self.current.case.id}")
            return True
        else:
            raise proto.ProtocolError(f"a {event.KIND} event in a measuring job")
        return False

    def _start(self, event: proto.CaseStarted) -> None:
        if self.current is not None:
            raise proto.ProtocolError(f"case {event.case} started before case {self.current.case.id} ended")
        if not self.remaining:
            raise proto.ProtocolError(f"case {event.suite}/{event.case} is not in the job")
        expected = self.remaining[0]
        if (event.suite, event.case) != (expected.suite, expected.id):
            raise proto.ProtocolError(
                f"case {event.suite}/{event.case} started; the job's next is {expected.suite}/{expected.id}")
        self.current = _Case(self.remaining.pop(0))
        self.observer.case_started(self.job, self.current.case.id)

    def _finish(self, event: proto.CaseFinished) -> None:
        if self.current is None:
            raise proto.ProtocolError(f"case {event.case} ended, none had started")
        self.current.check(event.suite, event.case, "the end of")
        rows = self.current.complete()
        self.outcome.records.extend(rows)
        self.on_records(rows)
        self.observer.case_finished(self.job, self.current.case.id, rows)
        self.current = None
        self.link.send("\n")  # the go-ahead: the rows are stored, this process is idle again


def _case(current: _Case | None) -> Case | None:
    return current.case if current is not None else None


def probe(framework: str, threads: int, timeout_s: float = 180.0) -> dict[str, Any]:
    """Start ``framework`` in a worker and return what it sees, or ``{"error": ...}``."""
    job = proto.ProbeJob(framework=framework, threads=threads)
    settings = Settings(threads=threads)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.measure.worker"], input=job.to_line(),
            capture_output=True, text=True, timeout=timeout_s, env=worker_env(settings),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{framework} did not start within {timeout_s:.0f} s"}
    for line in done.stdout.splitlines():
        try:
            event = proto.decode(line)
        except proto.ProtocolError as exc:
            return {"error": f"the worker broke the protocol: {exc}"}
        if isinstance(event, proto.ProbeResult):
            return {"version": event.version, "devices": list(event.devices), "cpus": list(event.cpus),
                    "settings": dict(event.settings)}
    return {"error": _death_reason(done.returncode, deque(done.stderr.splitlines()))}


def _close(stream: IO[str]) -> None:
    with contextlib.suppress(OSError):
        stream.close()


def _kill(proc: subprocess.Popen) -> None:
    """Kill the worker and anything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.stdin is not None:
        _close(proc.stdin)
    proc.wait()
