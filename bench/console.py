"""What the user sees in the terminal: progress while running, a summary after."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Sequence

from rich import box
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

from bench import fmt
from bench.runner import Job, JobOutcome
from bench.spec import Record
from bench.verdict import DEFAULT_MODES, verdicts


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


ms = fmt.ms


def ratio_text(r: Record) -> str:
    return fmt.ratio(r.ratio, r.ratio_ci_low, r.ratio_ci_high)


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
        self.total, self.done, self.current = total_cases, 0, ""
        # A fleet run (bench.fleet) reads this machine's progress from here.
        self.events = os.environ.get("BENCH_PROGRESS_FILE") or None

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _emit(self) -> None:
        """One JSON line of progress, for a fleet client to show (only with BENCH_PROGRESS_FILE)."""
        if self.events is None:
            return
        with contextlib.suppress(OSError), open(self.events, "a") as fh:
            fh.write(json.dumps({"done": self.done, "total": self.total, "current": self.current}) + "\n")

    def job_started(self, job: Job) -> None:
        self.progress.update(self.task, description=f"{job.label}: starting")
        self.done_in_job = 0
        self.current = f"{job.label}: starting"
        self._emit()

    def case_started(self, job: Job, case: str) -> None:
        self.progress.update(self.task, description=f"{job.label}: {case}")
        self.current = f"{job.label}: {case}"
        self._emit()

    def case_finished(self, job: Job, case: str, records: list[Record]) -> None:
        self.progress.advance(self.task)
        self.done_in_job += 1
        self.done += 1
        self._emit()
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
        self.done += len(job.cases) - self.done_in_job
        self._emit()


def summary(records: Sequence[Record]) -> Group:
    """Forward, gradient and R = T(gradient)/T(forward) for every case, then one verdict line per series.

    One table per suite, narrow enough for an 80-column terminal: the case
    column holds the parameter values under a header naming the parameters,
    frameworks show their mode only when it is not the default, the device
    only when the run has several, and the status wraps rather than vanish.
    """
    by_key: dict[tuple, dict[str, Record]] = {}
    for r in records:
        by_key.setdefault((r.suite, r.case, r.framework, r.mode, r.device), {})[r.phase] = r
    devices = {k[4] for k in by_key}
    rows: dict[str, list[tuple]] = {}
    headers: dict[str, str] = {}
    notes: list[Text] = []
    for (suite, case, fw, mode, device), phases in by_key.items():
        f, g = phases.get("forward"), phases.get("gradient")
        if f is None or g is None:
            continue
        values = _params(case)
        headers.setdefault(suite, ", ".join(k for k, _ in values) if values else "case")
        label = fw if DEFAULT_MODES.get(fw) == mode else f"{fw} {mode}"
        if len(devices) > 1:
            label += f" {device}"
        shown = ",".join(v for _, v in values) if values else case
        status, why = _status(f, g)
        if why:  # the reason goes under the table, where it has the whole width
            notes.append(Text(f"[{len(notes) + 1}] {label} {shown}: {why}", style="dim"))
            status.append(f" [{len(notes)}]")
        rows.setdefault(suite, []).append((  # Text: case ids (GRID keys) and names are data, not markup
            Text(shown), Text(label), ms(f.median_s), ms(g.median_s), ratio_text(g),
            "-" if math.isnan(g.theory_ratio) else f"{g.theory_ratio:.2f}", status,
        ))
    tables = []
    for suite, suite_rows in rows.items():
        # The case and the framework keep their width; the status wraps instead.
        widths = [max(len(r[i].plain) for r in suite_rows) for i in (0, 1)]
        table = _summary_table(suite, headers[suite], widths)
        for row in suite_rows:
            table.add_row(*row)
        tables.append(table)
    legend = ("ms: median per call; R = T(gradient) / T(forward), paired by round, with its 95% CI; "
              "theory: R counted in FLOPs; status: ok, or how far to trust the row")
    grads = [r for r in records if r.phase == "gradient" and r.status == "ok"]
    if grads and all(len(r.process_rounds) < 2 for r in grads):
        # One process cannot see how much the machine moves between processes
        # and minutes: say so where the intervals are read.
        legend += ("\nthe CIs come from one worker process per case and hold its rounds only: "
                   "reruns vary more (use --processes 3 for intervals that hold them)")
    lines = [Text(v.line, style="bold") for v in verdicts(records)]
    return Group(*tables, *notes, Text(legend, style="dim"), *lines)


def _params(case: str) -> list[tuple[str, str]]:
    """``batch=64,width=128`` as [("batch", "64"), ("width", "128")] ([] when the id is not of that form)."""
    parts = [p.partition("=") for p in case.split(",")]
    return [(k, v) for k, _, v in parts] if all(sep for _, sep, _ in parts) else []


def _summary_table(suite: str, case_header: str, widths: list[int]) -> Table:
    table = Table(title=Text(f"{suite}: forward vs gradient", style="table.title"), title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True)
    table.add_column(Text(case_header), min_width=min(widths[0], 30), overflow="fold")
    table.add_column(Text("framework"), min_width=min(widths[1], 20), overflow="fold")
    for col in ("fwd ms", "grad ms", "R [95% CI]", "theory"):
        table.add_column(Text(col), justify="right", no_wrap=True)
    table.add_column(Text("status"), no_wrap=True)
    return table


def _status(f: Record, g: Record) -> tuple[Text, str]:
    """The status word (ok, noisy, unreliable, or why not measured) and its reason ('' for ok)."""
    if g.status != "ok":
        bad = g.status in ("failed", "error", "crashed")
        return Text(g.status, style="red" if bad else ""), g.reason[:300]
    flagged = [r for r in (g, f) if r.quality in ("noisy", "unreliable")]
    if not flagged:
        return Text("ok"), ""
    worst = max(flagged, key=lambda r: r.quality == "unreliable")
    color = "red" if worst.quality == "unreliable" else "yellow"
    return Text(worst.quality, style=color), worst.quality_reason.split("; ")[0]


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


class FleetDisplay:
    """One live line per machine of a fleet run: state, cases done, the current case."""

    def __init__(self) -> None:
        from rich.live import Live

        self.live = Live(Text(""), console=err, refresh_per_second=4, transient=False)

    def __enter__(self) -> FleetDisplay:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def show(self, outcome) -> None:
        self.live.update(fleet_lines(outcome))


def fleet_lines(outcome) -> Text:
    """The machines of a fleet run, one line each (machine names and case ids are data: Text)."""
    styles = {"finished": "green", "lost": "red", "failed": "red", "cancelled": "yellow"}
    text = Text()
    for m in outcome.machines.values():
        cases = f"{m.done}/{m.total or '?'} cases"
        line = Text.assemble((f"{m.name}: ", "bold"), (m.state, styles.get(m.state, "")), f" · {cases}")
        if m.state in ("running", "waiting") and m.current:
            line.append(f" · {m.current}")
        if m.detail:
            line.append(f" · {m.detail}", style="dim")
        text.append_text(line)
        text.append("\n")
    text.rstrip()
    return text
