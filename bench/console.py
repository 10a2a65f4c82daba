"""What the user sees in the terminal: progress while running, a summary after."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

from rich.console import Console, Group
from rich.errors import MarkupError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from bench.runner import Job, JobOutcome
from bench.spec import Record


def _width() -> int | None:
    # Piped output (CI logs, files) would otherwise wrap tables at 80 columns.
    return None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160


class SafeConsole(Console):
    """A Console that prints a string with broken markup as plain text instead of raising.

    Data (case ids, suite descriptions, error messages, file names) is printed
    as ``Text`` or escaped where it is printed; this is the net under a string
    that was not: a ``[/]`` in a user's data must never end a run.
    """

    def render_str(self, text: str, **kwargs) -> Text:  # type: ignore[override]
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(text, **{**kwargs, "markup": False})


# No emoji codes: a ':fire:' in a case name is data, not a picture.
err = SafeConsole(stderr=True, soft_wrap=True, emoji=False)  # one message, one line
out = SafeConsole(width=_width(), emoji=False)


def warn(message: str, style: str = "yellow") -> None:
    """Print ``message`` (data, never parsed as markup) on stderr in ``style``, one line."""
    err.print(Text(message, style=style))


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e3:#.3g}"


def ratio_text(r: Record) -> str:
    if math.isnan(r.ratio):
        return "-"
    if math.isnan(r.ratio_ci_low):
        return f"{r.ratio:.2f}"
    return f"{r.ratio:.2f} [{r.ratio_ci_low:.2f}, {r.ratio_ci_high:.2f}]"


class ProgressDisplay:
    """A progress bar over all cases of all jobs, with the current one named."""

    def __init__(self, total_cases: int) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),  # job labels and case ids are data
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self.task = self.progress.add_task("starting", total=total_cases)
        self.done_in_job = 0

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def job_started(self, job: Job) -> None:
        self.progress.update(self.task, description=f"{job.label}: starting")
        self.done_in_job = 0

    def case_started(self, job: Job, case: str) -> None:
        self.progress.update(self.task, description=f"{job.label}: {case}")

    def case_finished(self, job: Job, case: str, records: list[Record]) -> None:
        self.progress.advance(self.task)
        self.done_in_job += 1
        bad = [r for r in records if r.status not in ("ok", "skipped")]
        if bad:
            # A case's error message is whatever the model raised: "[/data/x.npy]" included.
            self.progress.console.print(
                Text(f"{job.label} {case}: {bad[0].status}: {bad[0].reason}", style="yellow")
            )

    def job_finished(self, job: Job, outcome: JobOutcome) -> None:
        if outcome.unavailable:
            self.progress.console.print(Text(f"{job.label}: skipped: {outcome.unavailable}", style="yellow"))
        elif outcome.crashed:
            self.progress.console.print(Text(f"{job.label}: {outcome.crashed}", style="red"))
        # Cases the worker never finished still count as done for the bar.
        self.progress.advance(self.task, len(job.cases) - self.done_in_job)


def summary(records: Sequence[Record]) -> Group:
    """Forward, gradient and R = T(gradient)/T(forward) for every case: one table per suite."""
    by_key: dict[tuple, dict[str, Record]] = {}
    for r in records:
        by_key.setdefault((r.suite, r.case, r.framework, r.mode, r.device), {})[r.phase] = r
    tables: dict[str, Table] = {}
    for (suite, case, fw, mode, device), phases in by_key.items():
        f, g = phases.get("forward"), phases.get("gradient")
        if f is None or g is None:
            continue
        if suite not in tables:
            tables[suite] = _summary_table(suite)
        status = _status(f, g)
        tables[suite].add_row(  # Text: case ids (GRID keys) and names are data, not markup
            Text(case), Text(f"{fw} ({mode})"), Text(device), ms(f.median_s), ms(g.median_s),
            ratio_text(g), "-" if math.isnan(g.theory_ratio) else f"{g.theory_ratio:.2f}", status,
        )
    legend = ("times: median ms per call; R = T(gradient) / T(forward), paired by round, "
              "with its 95% CI; theory: the same ratio in FLOPs; status: ok, or how far to trust "
              "the row when it is noisy or unreliable")
    return Group(*tables.values(), legend)


def _status(f: Record, g: Record) -> Text:
    """ok, or the worse quality of forward and gradient with its first reason, or why not measured."""
    if g.status != "ok":
        return Text(f"{g.status}: {g.reason[:80]}")
    flagged = [r for r in (g, f) if r.quality in ("noisy", "unreliable")]
    if not flagged:
        return Text("ok")
    worst = max(flagged, key=lambda r: r.quality == "unreliable")
    color = "red" if worst.quality == "unreliable" else "yellow"
    first = worst.quality_reason.split("; ")[0]
    return Text.assemble((worst.quality, color), f": {first}")


def quality_warning(records: Sequence[Record]) -> str:
    """One line on how many measured rows are noisy or unreliable, and the main reason ('' if none)."""
    from bench import quality

    s = quality.summary(records)
    flagged = int(s["noisy"]) + int(s["unreliable"])  # type: ignore[call-overload]
    if not flagged:
        return ""
    total = flagged + int(s["good"])  # type: ignore[call-overload]
    return (f"{flagged} of {total} measured rows are noisy ({s['noisy']}) or unreliable "
            f"({s['unreliable']}); main reason: {s['main_reason']}. See the quality and "
            "quality_reason columns.")


def _summary_table(suite: str) -> Table:
    table = Table(title=Text(f"{suite}: forward vs gradient", style="table.title"), title_justify="left")
    for col, justify in [
        ("case", "left"), ("framework", "left"), ("device", "left"), ("forward ms", "right"),
        ("gradient ms", "right"), ("R [95% CI]", "right"), ("theory", "right"), ("status", "left"),
    ]:
        table.add_column(col, justify=justify, no_wrap=col != "status")  # type: ignore[arg-type]
    return table
