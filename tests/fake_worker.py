"""A scripted worker for in-process tests of the runner: no subprocess, no framework.

``FakeLink`` is the runner's ``Link`` to a worker that is a Python function,
its script, run in a thread: the script reads the job and writes events (or
any line) as a worker would, and can die, hang or break the protocol on cue.
``fake_framework`` is a framework module stand-in whose calls sleep, so the
real ``bench.measure.worker.Worker`` can run in that thread too.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.backends import Implementation, Phase
from bench.catalog import loader
from bench.core.cases import Case
from bench.core.records import PHASES, Record
from bench.measure import protocol as proto


class Killed(OSError):
    """What a killed fake worker's next write raises (as a closed pipe would)."""


class FakeLink:
    """The runner's end of a scripted worker; ``script(link)`` runs in a thread and plays the worker."""

    def __init__(self, script: Callable[[FakeLink], str | None], log: list | None = None) -> None:
        self.log = log if log is not None else []
        self._to_worker: queue.Queue[str | None] = queue.Queue()
        self._to_runner: queue.Queue[str | None] = queue.Queue()
        self.killed = threading.Event()
        self.closed = False
        self.reason = ""
        self.thread = threading.Thread(target=self._play, args=(script,), daemon=True)
        self.thread.start()

    # --- the runner's side: bench.execute.runner.Link

    def send(self, line: str) -> None:
        self.log.append(("sent", line))
        self._to_worker.put(line)

    def receive(self, timeout_s: float) -> str | None:
        try:
            return self._to_runner.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError from None

    def close(self) -> None:
        self.closed = True
        self._to_worker.put(None)
        self.thread.join(timeout=10)

    def kill(self) -> None:
        self.log.append(("killed", None))
        self.killed.set()
        self._to_worker.put(None)

    def death(self) -> str:
        return self.reason

    # --- the worker's side, for scripts

    def job(self) -> proto.WorkerJob:
        line = self._to_worker.get()
        job = proto.decode_job(line or "")
        assert isinstance(job, proto.WorkerJob)
        return job

    def emit(self, event: proto.Event | str) -> None:
        if self.killed.is_set():
            raise Killed("killed")
        self._to_runner.put(event if isinstance(event, str) else proto.encode(event))

    def go_ahead(self) -> bool:
        return self._to_worker.get() is not None and not self.killed.is_set()

    def _play(self, script: Callable[[FakeLink], str | None]) -> None:
        try:
            self.reason = script(self) or "the worker exited with code 0"
        except Killed:
            self.reason = "the worker was killed by SIGKILL"
        except Exception as exc:  # a script's own bug shows in the test's failure
            self.reason = f"the fake worker raised {type(exc).__name__}: {exc}"
        self._to_runner.put(None)


class Workers:
    """``runner.start_worker`` for tests: each new worker plays the next script (the last one repeats)."""

    def __init__(self, *scripts: Callable[[FakeLink], str | None]) -> None:
        self.scripts = list(scripts)
        self.links: list[FakeLink] = []
        self.log: list = []

    def __call__(self, settings: Any) -> FakeLink:
        script = self.scripts[min(len(self.links), len(self.scripts) - 1)]
        link = FakeLink(script, self.log)
        self.links.append(link)
        return link


def cases_of(job: proto.WorkerJob, suite: loader.Suite) -> list[Case]:
    """The job's cases, in its order (the job names suites by path; these tests use one suite)."""
    return [Case.of(suite.name, dict(params)) for entry in job.suites for params in entry.cases]


def rows(job: proto.WorkerJob, case: Case, status: str = "ok", phases: Iterable[str] = PHASES,
         **kw: Any) -> list[Record]:
    """One record per phase of ``case``, as a worker would send them."""
    return [
        Record(run_id=job.run_id, machine=job.machine, suite=case.suite, case=case.id,
               params=case.params_json, framework=job.framework, framework_version="0", mode=job.mode,
               device=job.device, phase=p, status=status, median_s=1e-3 if status == "ok" else float("nan"),
               threads=job.settings.threads, **kw)
        for p in phases
    ]


def measure(link: FakeLink, job: proto.WorkerJob, case: Case, heartbeats: int = 0, pause_s: float = 0.0,
            records: Iterable[Record] | None = None) -> None:
    """Play one healthy case: start, heartbeats ``pause_s`` apart, its rows (``records``, or
    ``rows(job, case)``), its end."""
    link.emit(proto.CaseStarted(case.suite, case.id))
    for _ in range(heartbeats):
        time.sleep(pause_s)
        link.emit(proto.Heartbeat())
    for r in rows(job, case) if records is None else records:
        link.emit(proto.RecordRow(r))
    link.emit(proto.CaseFinished(case.suite, case.id))


def cases_played(link: FakeLink, suite: loader.Suite) -> Iterator[tuple[proto.WorkerJob, Case]]:
    """A worker's life around its cases: reads the job, sends ``ENV``, yields each case once the
    runner gave the go-ahead for it, and sends ``Done`` after the last; after the runner said stop
    it yields no more and sends nothing (the script then exits)."""
    job = link.job()
    link.emit(ENV)
    for i, case in enumerate(cases_of(job, suite)):
        if i and not link.go_ahead():
            return
        yield job, case
    link.emit(proto.Done())


ENV = proto.Env(framework="torch", version="0", device="cpu", device_name="Fake CPU", cpus=(0,),
                settings={"threads": 1}, peak_flops_per_s=1e9, memory_method="fake")


def fake_framework(reference: Callable, call_s: float = 0.0, hang_batch: int | None = None,
                   release: threading.Event | None = None, hang_after: int = 0) -> SimpleNamespace:
    """A framework module stand-in: every call sleeps ``call_s``; on a batch of ``hang_batch`` rows
    every call after the first ``hang_after`` waits for ``release`` (a hung case); loss and gradients
    are ``reference(problem)``."""

    def implement(loss, prob, native, mode, lr, optimizer):
        hangs = hang_batch is not None and prob.X.shape[0] == hang_batch
        calls = [0]

        def call(_: Any = None) -> None:
            calls[0] += 1
            if hangs and release is not None and calls[0] > hang_after:
                release.wait()
            time.sleep(call_s)

        def loss_and_grads():
            call()
            return reference(prob)

        def train(n: int) -> list[float]:
            losses = []
            for i in range(n):
                call()
                losses.append(float(n - i))
            return losses

        phases = (Phase("forward", call), Phase("gradient", call),
                  Phase("backward_split", call, prepare=lambda: None), Phase("step", call))
        return Implementation(phases=phases, loss_and_grads=loss_and_grads, train=train,
                              peak_bytes=lambda phase: 0.0)

    def matmul(native, n):
        raise RuntimeError("no peak in a fake")

    return SimpleNamespace(
        NAME="torch", MODES=("eager",), DEFAULT_MODE="eager", DEVICE_KINDS=("cpu",),
        MEMORY_METHOD={"cpu": "fake"}, available=lambda: True, version=lambda: "0",
        configure=lambda threads, tf32, seed: {"threads": threads},
        resolve_device=lambda d: (None, "Fake CPU"),
        flusher=lambda native, nbytes: (lambda: None), matmul=matmul, sync=lambda out, native: None,
        implement=implement, devices=lambda: ["cpu"],
    )


# --- bench run in-process over the tiny suite ---------------------------------------------------

TINY = loader.load_file(Path(__file__).resolve().parent / "data" / "suites" / "tiny" / "tiny_mlp.py")


def healthy(link: FakeLink) -> None:
    """A worker that measures every case of the tiny suite."""
    for job, case in cases_played(link, TINY):
        measure(link, job, case)
