"""The jobs of a run: one framework and mode on one device, over the cases of the suites that support it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.catalog.loader import Suite
from bench.core.cases import Case


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


def plan_jobs(
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
