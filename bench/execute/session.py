"""One run on this machine: its jobs in worker processes, as often as asked, each case stored as it
ends, the processes' intervals pooled at the end (``bench run``'s work, without its command line).

``execute`` runs a ``RunPlan`` and returns an ``Outcome``: the rows, what each framework reported,
and whether the run was interrupted or could not write its results. The CLI parses and checks the
command line, shows progress (any ``Progress``) and prints the outcome.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from bench import store
from bench.core.errors import UserError
from bench.core.records import CaseKey, Record
from bench.core.settings import Settings
from bench.execute import fleet, runner
from bench.execute.jobs import Job
from bench.stats import quality, row_stats


class ResultsUnwritable(Exception):
    """The results could not be written during the run: the run stops (``bench run`` exits 3)."""


class Progress(runner.Observer, Protocol):
    """What a run reports while it works: the runner's events, and cases added on the way."""

    def add(self, cases: int) -> None:
        """More cases to measure than planned (--max-processes)."""
        ...


@dataclass(frozen=True)
class RunPlan:
    """What one run measures and where its results go; ``metadata`` is what the results carry of the
    command line and the machine (fingerprint, devices, frameworks and suites asked for)."""

    jobs: tuple[Job, ...]
    settings: Settings
    results: store.Source
    machine: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cases(self) -> int:
        """Cases to measure: every job's, in every process."""
        return sum(len(j.cases) for j in self.jobs) * self.settings.processes


@dataclass
class Outcome:
    """What a run left: its rows (pooled), where they are, what each framework reported, and how it
    ended (interrupted; or the results could not be written, with the error)."""

    run_id: str
    path: store.Source
    records: list[Record]
    frameworks: dict[str, dict[str, Any]]
    interrupted: bool = False
    unwritable: OSError | None = None
    written: bool = False  # whether this run wrote anything (its shards or its file)


def execute(plan: RunPlan, progress: Progress) -> Outcome:
    """Run ``plan``: every job ``settings.processes`` times (and more with --max-processes), each case
    stored as it ends; then the rows pooled and the run compacted. Ctrl-C ends it early, keeping the
    cases finished (``interrupted``). A UserError when no framework could use the devices asked for
    (nothing is written then)."""
    run_id = store.new_run_id()
    writer = store.new_run(plan.results, plan.machine, run_id, {
        "run_id": run_id, "machine": plan.machine, **plan.metadata, "settings": asdict(plan.settings),
        # Set by a fleet run (bench.execute.fleet) for the `bench run` it starts on each machine.
        **({"fleet": os.environ[fleet.FLEET_ENV]} if os.environ.get(fleet.FLEET_ENV) else {}),
    })
    outcome = Outcome(run_id, writer.path, [], {})
    try:
        held = _measure(plan, run_id, writer, progress, outcome)
        if not writer.records:
            if outcome.interrupted:
                raise KeyboardInterrupt
            reasons = "; ".join(f"{k}: {v.get('unavailable')}" for k, v in outcome.frameworks.items())
            devices = ", ".join(dict.fromkeys(j.device for j in plan.jobs))
            raise UserError(f"no framework can run on {devices} here ({reasons})")
        # The processes' intervals, narrowed by the spread the run's cases share.
        outcome.records = row_stats.pool([*writer.records, *held])
        _close(writer, outcome)
    except ResultsUnwritable as exc:
        outcome.unwritable = exc.__cause__ if isinstance(exc.__cause__, OSError) else OSError(str(exc))
    outcome.written = writer.written
    return outcome


def _close(writer: store.ResultsWriter, outcome: Outcome) -> None:
    try:
        writer.close(outcome.records, frameworks=outcome.frameworks, interrupted=outcome.interrupted,
                     quality=quality.summary(outcome.records))
    except OSError as exc:
        raise ResultsUnwritable(exc) from exc


def _measure(plan: RunPlan, run_id: str, writer: store.ResultsWriter, progress: Progress,
             outcome: Outcome) -> list[Record]:
    """Every job, process by process, then --max-processes; the rows held back (a device no framework
    could use: written only beside others). Fills ``outcome.frameworks`` and ``interrupted``."""
    held: list[Record] = []
    try:
        # Process k of every job before process k + 1 of any: the processes of one case lie
        # minutes apart, so the interval also sees the machine change.
        for repeat in range(plan.settings.processes):
            for job in plan.jobs:
                held += _one_job(plan, job, repeat, run_id, writer, progress, outcome.frameworks)
        _more_processes(plan, run_id, writer, progress)
    except KeyboardInterrupt:
        outcome.interrupted = True
    return held


def _one_job(plan: RunPlan, job: Job, repeat: int, run_id: str, writer: store.ResultsWriter,
             progress: Progress, frameworks: dict[str, dict[str, Any]]) -> list[Record]:
    """Process ``repeat`` of one job; the rows to hold back when its device was unavailable."""
    key = f"{job.framework}:{job.mode}@{job.device}"
    progress.job_started(job)
    if repeat and "unavailable" in frameworks.get(key, {}):
        progress.job_finished(job, runner.JobOutcome())
        return []
    sink = _sink(writer.merge if repeat else writer.append)
    outcome = runner.run_job(job, plan.settings, run_id, plan.machine, progress, sink, repeat)
    if repeat:
        return []
    frameworks[key] = outcome.env or {"unavailable": outcome.unavailable}
    return list(outcome.records) if outcome.unavailable else []


def _more_processes(plan: RunPlan, run_id: str, writer: store.ResultsWriter, progress: Progress) -> None:
    """--max-processes: one more process at a time for the cases whose R is still wider than --precision.

    Only cases measured (ok) in several processes can fall short, so a job whose framework was
    unavailable never comes back here.
    """
    settings = plan.settings
    for repeat in range(settings.processes, settings.max_processes):
        short = short_of_precision(writer.records, settings.precision)
        todo = [j for j in (_only(job, short) for job in plan.jobs) if j.cases]
        if not todo:
            return
        progress.add(sum(len(j.cases) for j in todo))
        for job in todo:
            progress.job_started(job)
            runner.run_job(job, settings, run_id, plan.machine, progress, _sink(writer.merge), repeat)


def short_of_precision(records: Sequence[Record], precision: float | None) -> set[CaseKey]:
    """The cases whose R, over their processes so far, is wider than ``precision``."""
    if precision is None:
        return set()
    return {CaseKey.of(r) for r in row_stats.pool(records)
            if r.phase == "gradient" and r.status == "ok" and len(r.process_rounds) > 1 and r.ratio > 0
            and not (r.ratio_ci_high - r.ratio_ci_low) / 2 / r.ratio <= precision}


def _only(job: Job, keys: set[CaseKey]) -> Job:
    """``job`` with only the cases named by ``keys``."""
    mine = (job.framework, job.mode, job.device)
    named = {(k.suite, k.case) for k in keys if (k.framework, k.mode, k.device) == mine}
    suites = ((suite, tuple(c for c in cases if (c.suite, c.id) in named)) for suite, cases in job.suites)
    return replace(job, suites=tuple((s, cs) for s, cs in suites if cs))


def _sink(write: Callable[[list[Record]], None]) -> Callable[[list[Record]], None]:
    """``write`` with its OSError (a full disk, a folder gone) turned into ResultsUnwritable."""
    def sink(records: list[Record]) -> None:
        try:
            write(records)
        except OSError as exc:
            raise ResultsUnwritable(exc) from exc

    return sink
