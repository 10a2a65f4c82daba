"""What ``bench run --dry-run`` prints: the plan (jobs, suites and cases, processes, budget) and its
estimated wall time (``bench.execute.estimate``), in lines for people."""

from __future__ import annotations

from collections.abc import Sequence

from bench.core import fmt
from bench.core.settings import Settings
from bench.execute.estimate import Estimate
from bench.execute.jobs import Job

MODEL_BASIS = "estimated from the budget, not measured"


def basis(estimate: Estimate) -> str:
    """What an estimate rests on, in words."""
    if not estimate.runs:
        return MODEL_BASIS
    runs = fmt.plural(estimate.runs, "earlier run")
    return f"scaled by {runs} of this machine ({fmt.sig3(estimate.scale)}× the model)"


def duration(seconds: float) -> str:
    """A wall time for people: "about 40 s", "about 4 min", "about 1 h 20 min"."""
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"


def describe(jobs: Sequence[Job], settings: Settings, estimate: Estimate) -> list[str]:
    """The plan in lines for people: jobs, suites and their cases, processes, budget, the estimate."""
    lines = [f"plan: {len(jobs)} job{'s' if len(jobs) > 1 else ''} (framework mode · device)"]
    lines += [f"  {j.framework} {j.mode} · {j.device}: {len(j.cases)} cases" for j in jobs]
    which = "the --quick subset" if settings.quick else "the full grids"
    lines.append(f"suites and cases ({which}, or --case):")
    for name, (cases, fws) in _suites(jobs).items():
        lines.append(f"  {name}: {len(cases)} cases, in {', '.join(fws)}")
        lines += [f"    {c}" for c in cases]
    n = settings.processes
    budget = fmt.sig3(settings.budget_s * n)
    lines.append(f"each case: {budget} s of timed rounds in {n} worker process{'es' if n > 1 else ''}"
                 + (f" ({fmt.sig3(settings.budget_s)} s each)" if n > 1 else ""))
    lines.append(f"settings: threads {settings.threads}; cache {settings.l2}; seed {settings.seed}")
    if settings.precision is not None:
        more = (f", and up to {settings.max_processes - n} more processes per case (--max-processes)"
                if settings.max_processes > n else "")
        lines.append(f"--precision {settings.precision:g} may add up to {fmt.sig3(settings.max_time_s)} s "
                     f"per case and process{more}: not counted below")
    lines.append(f"wall time: {duration(estimate.seconds)}; {basis(estimate)}")
    return lines



def _suites(jobs: Sequence[Job]) -> dict[str, tuple[list[str], list[str]]]:
    """Suite name -> (its case ids as planned, the frameworks that run it), in plan order."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for job in jobs:
        for suite, cases in job.suites:
            _, fws = found.setdefault(suite.name, ([c.id for c in cases], []))
            if job.framework not in fws:
                fws.append(job.framework)
    return found
