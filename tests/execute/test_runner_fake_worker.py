"""The runner against scripted workers, in-process: the protocol checked, heartbeats, hangs, deaths.

The scripts play a worker in a thread (``fake_worker.FakeLink``): no
subprocess and no framework, so each test takes a fraction of a second.
The last tests run the real ``bench.measure.worker.Worker`` in that thread, with a
framework stand-in whose calls sleep.
"""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest
from conftest import TEST_SUITES
from fake_worker import ENV, Workers, cases_of, fake_framework, measure, rows

from bench import backends
from bench.catalog import loader
from bench.core.records import PHASES
from bench.core.settings import Settings
from bench.execute import jobs, runner
from bench.measure import protocol as proto
from bench.measure import worker

SUITE = loader.load_file(TEST_SUITES / "tiny" / "tiny_mlp.py")
CASES = tuple(SUITE.cases(quick=True))  # batch 8, then batch 16
JOB = jobs.Job("torch", "cpu", "eager", ((SUITE, CASES),))


class Observer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def job_started(self, job):
        self.calls.append(("job_started", job.label))

    def case_started(self, job, case):
        self.calls.append(("case_started", case))

    def case_finished(self, job, case, records):
        self.calls.append(("case_finished", case))

    def job_finished(self, job, outcome):
        self.calls.append(("job_finished", outcome.crashed))


def run(monkeypatch, *scripts, timeout_s: float = 2.0, job: jobs.Job = JOB, on_records=None):
    """run_job over ``job`` with workers that play ``scripts``: (outcome, stored rows, workers, observer)."""
    workers = Workers(*scripts)
    monkeypatch.setattr(runner, "start_worker", workers)
    stored: list = []

    def store(records):
        workers.log.append(("stored", records[0].case))
        if on_records is not None:
            on_records(records)
        stored.extend(records)

    observer = Observer()
    outcome = runner.run_job(job, Settings(threads=1, timeout_s=timeout_s), "run", "m", observer, store)
    return outcome, stored, workers, observer


def status_of(stored, case):
    return {r.status for r in stored if r.case == case.id}


def reason_of(stored, case):
    return next(r.reason for r in stored if r.case == case.id)


def healthy(link, job=None):
    job = job or link.job()
    link.emit(ENV)
    for i, case in enumerate(cases_of(job, SUITE)):
        if i and not link.go_ahead():
            return None
        measure(link, job, case)
    link.emit(proto.Done())
    return None


def test_a_healthy_worker_stores_each_case_then_gets_the_go_ahead(monkeypatch):
    outcome, stored, workers, observer = run(monkeypatch, healthy)
    assert len(stored) == len(CASES) * len(PHASES) and {r.status for r in stored} == {"ok"}
    assert outcome.env["device_name"] == "Fake CPU" and not outcome.crashed
    # The job line, then one go-ahead per case, each only after that case's rows were stored.
    log = [(what, x if what != "sent" or x == "\n" else "job") for what, x in workers.log]
    assert log == [("sent", "job"), ("stored", CASES[0].id), ("sent", "\n"),
                   ("stored", CASES[1].id), ("sent", "\n")]
    assert workers.links[0].closed and not workers.links[0].killed.is_set()
    assert observer.calls == [("case_started", CASES[0].id), ("case_finished", CASES[0].id),
                              ("case_started", CASES[1].id), ("case_finished", CASES[1].id),
                              ("job_finished", "")]


def test_the_job_line_carries_the_cases_and_the_runner_pid(monkeypatch):
    seen = []

    def script(link):
        seen.append(link.job())
        return healthy(link, seen[0])

    run(monkeypatch, script)
    job = seen[0]
    assert job.parent_pid == os.getpid()
    assert cases_of(job, SUITE) == list(CASES)
    assert job.settings.timeout_s == 2.0


def test_heartbeats_keep_a_slow_case_alive(monkeypatch):
    """Item 14: a case far longer than the timeout is not hung while the worker keeps beating."""
    def slow(link):
        job = link.job()
        link.emit(ENV)
        for i, case in enumerate(cases_of(job, SUITE)):
            if i and not link.go_ahead():
                return None
            measure(link, job, case, heartbeats=8, pause_s=0.05)  # 0.4 s per case
        link.emit(proto.Done())
        return None

    _outcome, stored, _workers, _ = run(monkeypatch, slow, timeout_s=0.2)
    assert {r.status for r in stored} == {"ok"}


def test_a_silent_worker_is_killed_as_hung_and_a_fresh_one_goes_on(monkeypatch):
    def silent_in_case_one(link):
        link.job()
        link.emit(ENV)
        link.emit(proto.CaseStarted(SUITE.name, CASES[0].id))
        link.killed.wait(10)  # sends nothing until killed
        link.emit(proto.Heartbeat())  # raises: it was killed
        return None

    def rest(link):
        job = link.job()
        link.emit(ENV)
        measure(link, job, cases_of(job, SUITE)[0])
        link.emit(proto.Done())
        return None

    started = time.monotonic()
    _outcome, stored, workers, _ = run(monkeypatch, silent_in_case_one, rest, timeout_s=0.2)
    assert time.monotonic() - started < 5
    assert status_of(stored, CASES[0]) == {"crashed"}
    assert "the worker hung: no progress for" in reason_of(stored, CASES[0])
    assert status_of(stored, CASES[1]) == {"ok"}
    assert workers.links[0].killed.is_set() and len(workers.links) == 2


def test_a_worker_that_dies_in_a_case_loses_that_case_only(monkeypatch):
    def dies_in_case_one(link):
        job = link.job()
        link.emit(ENV)
        case = cases_of(job, SUITE)[0]
        link.emit(proto.CaseStarted(case.suite, case.id))
        link.emit(proto.RecordRow(rows(job, case)[0]))
        return "the worker was killed by SIGKILL (out of memory, or killed from outside)"

    outcome, stored, _workers, _ = run(monkeypatch, dies_in_case_one, healthy)
    assert status_of(stored, CASES[0]) == {"crashed"} and "SIGKILL" in reason_of(stored, CASES[0])
    assert status_of(stored, CASES[1]) == {"ok"}
    assert not outcome.crashed


def test_a_worker_that_cannot_start_leaves_every_case_not_run(monkeypatch):
    outcome, stored, workers, _ = run(monkeypatch, lambda link: "the worker exited with code 1")
    assert {r.status for r in stored} == {"crashed"} and len(stored) == len(CASES) * len(PHASES)
    assert all(r.reason.startswith("not run: the worker exited with code 1") for r in stored)
    assert outcome.crashed and len(workers.links) == 1


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("a row of another case", "a row of"),
        ("the end of another case", "the end of"),
        ("a phase missing", "not one per phase"),
        ("a phase twice", "not one per phase"),
        ("a second start", "started before case"),
        ("a line that is not JSON", "not JSON"),
        ("done in a case", "done in the middle of case"),
        ("a probe answer", "a probe event in a measuring job"),
    ],
)
def test_a_worker_that_breaks_the_protocol_in_a_case_loses_that_case(monkeypatch, name, words):
    """The runner checks every case id and the rows a case ends with, instead of counting rows."""
    def breaks(link):
        job = link.job()
        link.emit(ENV)
        first, second = cases_of(job, SUITE)
        link.emit(proto.CaseStarted(first.suite, first.id))
        good = rows(job, first)
        if name == "a row of another case":
            link.emit(proto.RecordRow(rows(job, second)[0]))
        elif name == "the end of another case":
            link.emit(proto.CaseFinished(second.suite, second.id))
        elif name in ("a phase missing", "a phase twice"):
            for r in good[1:] if name == "a phase missing" else [*good, good[0]]:
                link.emit(proto.RecordRow(r))
            link.emit(proto.CaseFinished(first.suite, first.id))
        elif name == "a second start":
            link.emit(proto.CaseStarted(first.suite, first.id))
        elif name == "a line that is not JSON":
            link.emit("torch: a banner printed on the event stream\n")
        elif name == "done in a case":
            link.emit(proto.Done())
        elif name == "a probe answer":
            link.emit(proto.ProbeResult(version="0"))
        link.killed.wait(10)
        return None

    _outcome, stored, workers, _ = run(monkeypatch, breaks, healthy)
    assert status_of(stored, CASES[0]) == {"crashed"}
    assert "the worker broke the protocol" in reason_of(stored, CASES[0])
    assert words in reason_of(stored, CASES[0])
    assert status_of(stored, CASES[1]) == {"ok"}  # a fresh worker took the next case
    assert workers.links[0].killed.is_set()


def test_a_worker_that_skips_a_case_is_not_trusted_with_the_others(monkeypatch):
    def skips(link):
        job = link.job()
        link.emit(ENV)
        second = cases_of(job, SUITE)[1]
        link.emit(proto.CaseStarted(second.suite, second.id))
        link.killed.wait(10)
        return None

    outcome, stored, workers, _ = run(monkeypatch, skips)
    # Outside any case: a worker that does not follow its job would not follow it again.
    assert {r.status for r in stored} == {"crashed"} and len(stored) == len(CASES) * len(PHASES)
    assert all("broke the protocol" in r.reason and "the job's next is" in r.reason for r in stored)
    assert outcome.crashed and workers.links[0].killed.is_set()


def test_five_rows_of_which_one_belongs_elsewhere_are_not_a_finished_case(monkeypatch):
    """The bug the typed protocol fixes: five rows used to finish a case, whatever case they named."""
    def mixed(link):
        job = link.job()
        link.emit(ENV)
        first, second = cases_of(job, SUITE)
        link.emit(proto.CaseStarted(first.suite, first.id))
        for r in rows(job, first)[:4] + rows(job, second)[:1]:
            link.emit(proto.RecordRow(r))
        link.killed.wait(10)
        return None

    _outcome, stored, _workers, _ = run(monkeypatch, mixed, healthy)
    assert status_of(stored, CASES[0]) == {"crashed"}
    assert not [r for r in stored if r.case == CASES[0].id and r.status == "ok"]


def test_an_unavailable_device_skips_every_case_and_stores_nothing(monkeypatch):
    def unavailable(link):
        link.job()
        link.emit(proto.Unavailable("no GPU here"))
        link.emit(proto.Done())
        return None

    outcome, stored, _workers, _ = run(monkeypatch, unavailable)
    assert outcome.unavailable == "no GPU here" and stored == []
    assert {r.status for r in outcome.records} == {"skipped"}


def test_a_write_failure_kills_the_worker_and_goes_on_up(monkeypatch):
    """Item 8, the runner's part: what the sink raises ends the job, the worker killed."""
    def full(records):
        raise OSError(errno.ENOSPC, "No space left on device")

    workers = Workers(healthy)
    monkeypatch.setattr(runner, "start_worker", workers)
    with pytest.raises(OSError, match="No space"):
        runner.run_job(JOB, Settings(threads=1, timeout_s=2), "run", "m", Observer(), full)
    assert workers.links[0].killed.is_set() and len(workers.links) == 1


# --- the real Worker, in a thread, with a framework stand-in ---------------------------------


@pytest.fixture
def keep_affinity():
    """The worker pins its thread to its CPUs; give it back."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    yield
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def real_worker(link):
    """The worker's own loop (bench.measure.worker.serve) on the fake link."""
    job = link.job()
    worker.serve(job, link.emit, link.go_ahead)
    link.emit(proto.Done())
    return None


def quick_job(budget_s: float = 0.02) -> Settings:
    return Settings(threads=1, budget_s=budget_s, quick=True)


def run_real(monkeypatch, fw, timeout_s):
    monkeypatch.setattr(backends, "get", lambda name: fw)
    workers = Workers(real_worker)
    monkeypatch.setattr(runner, "start_worker", workers)
    stored: list = []
    settings = Settings(threads=1, budget_s=0.02, quick=True, timeout_s=timeout_s)
    outcome = runner.run_job(JOB, settings, "run", "m", Observer(), stored.extend)
    return outcome, stored, workers


def test_worker_run_case_measures_every_phase_in_process(monkeypatch, keep_affinity):
    fw = fake_framework(SUITE.module.reference)
    monkeypatch.setattr(backends, "get", lambda name: fw)
    events = []
    job = proto.WorkerJob(framework="torch", device="cpu", mode="eager", run_id="r", machine="m",
                          settings=quick_job())
    w = worker.Worker(job, events.append)
    assert w.start()
    records = w.run_case(SUITE, CASES[0])
    assert [r.phase for r in records] == list(PHASES)
    assert {r.status for r in records} == {"ok"}
    assert all(r.equiv_error == 0 for r in records)
    assert w.pulse.ticks > 20  # every timed block counted as progress
    assert isinstance(events[0], proto.Env)


def test_a_slow_case_in_the_real_worker_is_not_called_hung(monkeypatch, keep_affinity):
    """Item 14: calls of 10 ms make cases of about a second; the timeout of 0.25 s counts silence only."""
    fw = fake_framework(SUITE.module.reference, call_s=0.01)
    timeout_s = 0.25
    started = time.monotonic()
    _outcome, stored, workers = run_real(monkeypatch, fw, timeout_s=timeout_s)
    took = time.monotonic() - started
    assert {r.status for r in stored} == {"ok"}, stored[0].reason
    assert took > len(CASES) * timeout_s  # the cases lasted longer than the timeout
    assert len(workers.links) == 1


@pytest.mark.parametrize("hang_after", [0, 200], ids=["in the equivalence check", "while timing"])
def test_a_hung_case_in_the_real_worker_falls_silent_and_is_killed(monkeypatch, keep_affinity, hang_after):
    release = threading.Event()
    fw = fake_framework(SUITE.module.reference, hang_batch=16, release=release, hang_after=hang_after)
    try:
        _outcome, stored, _workers = run_real(monkeypatch, fw, timeout_s=0.3)
    finally:
        release.set()  # let the hung thread finish
    assert status_of(stored, CASES[0]) == {"ok"}
    assert status_of(stored, CASES[1]) == {"crashed"}
    assert "the worker hung" in reason_of(stored, CASES[1])


def test_the_pulse_beats_only_on_progress_or_while_a_stretch_is_expected():
    beats = []
    pulse = worker.Pulse(beats.append, interval_s=0.02).start()
    try:
        time.sleep(0.1)
        assert beats == []  # no progress, no heartbeat
        pulse.tick()
        time.sleep(0.06)
        assert len(beats) == 1
        pulse.expect(0.1)
        time.sleep(0.2)
        during = len(beats)
        assert during >= 3
        time.sleep(0.1)
        assert len(beats) == during  # the expected stretch is over
    finally:
        pulse.stop()
    assert all(isinstance(b, proto.Heartbeat) for b in beats)


def test_the_heartbeat_comes_well_within_the_timeout():
    for timeout_s in (0.1, 5, 120, 86400):
        assert worker.heartbeat_interval(timeout_s) <= timeout_s / 4 + 0.02
