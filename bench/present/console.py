"""What the user sees in the terminal: progress while running, a summary after."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

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
from rich.text import Text

from bench.core import fmt
from bench.core.records import CaseKey, Record
from bench.execute.jobs import Job
from bench.execute.runner import JobOutcome
from bench.present import tables
from bench.stats.gradient_cost import DEFAULT_MODES, GradientCost, gradient_costs


def _width() -> int | None:
    # Piped output (CI logs, files) would otherwise wrap tables at 80 columns.
    return None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160


class SafeConsole(Console):
    """A Console that prints a string with broken markup as plain text instead of raising.

    Data (case ids, suite descriptions, error messages, file names) is printed
    as ``Text`` or escaped where it is printed; this is the net under a string
    that was not: a ``[/]`` in a user's data must never end a run. Emoji codes
    are off unless asked for: a ':fire:' in a case name is data, not a picture.
    """

    def __init__(self, *args: Any, emoji: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, emoji=emoji, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(text, **{**kwargs, "markup": False})


err = SafeConsole(stderr=True, soft_wrap=True)  # one message, one line
out = SafeConsole(width=_width())


def warn(message: str, style: str = "yellow") -> None:
    """Print ``message`` (data, never parsed as markup) on stderr in ``style``.

    One line in a log; in a terminal, wrapped at word boundaries within its width.
    """
    err.print(Text(message, style=style), soft_wrap=not err.is_terminal)


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
        # A fleet run (bench.execute.fleet) reads this machine's progress from here.
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

    def add(self, cases: int) -> None:
        """More cases to measure than planned (--max-processes)."""
        self.total += cases
        self.progress.update(self.task, total=self.total)
        self._emit()

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

    One table per suite (and device, when the run has several), fitted to the
    terminal's width by bench.present.tables: when short of width the labels get
    shorter, the case moves to a line above its rows, then the times go; the
    framework, R, theory and status never lose a character. The reasons and
    sentences below wrap at word boundaries.
    """
    return Group(*(tables.renderable(b) for b in summary_blocks(records) if tables.shown(b)))


def show_summary(records: Sequence[Record], form: str = "table", console: Console | None = None) -> None:
    """Print the run's summary on ``console`` (``out``) in ``form``: table, plain, markdown or json."""
    tables.emit(summary_blocks(records), form, console or out)


LEGEND = ("ms: median per call; R = T(gradient) / T(forward), paired by round, with its 95% CI; "
          "theory: R counted in FLOPs; status: ok, or how far to trust the row")
ONE_PROCESS = ("the CIs come from one worker process per case and hold its rounds only: "
               "reruns vary more (use --processes 3 for intervals that hold them)")


def summary_blocks(records: Sequence[Record]) -> list[tables.Block]:
    """The summary as tables.Blocks: a sheet per suite (and device), the legend, the verdict lines."""
    by_key: dict[CaseKey, dict[str, Record]] = {}
    for r in records:
        by_key.setdefault(CaseKey.of(r), {})[r.phase] = r
    several = len({k.device for k in by_key}) > 1
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for key, phases in by_key.items():
        f, g = phases.get("forward"), phases.get("gradient")
        if f is not None and g is not None:
            rows.setdefault((key.suite, key.device if several else ""), []).append(_summary_row(f, g))
    blocks: list[tables.Block] = []
    n = 0
    for (suite, device), suite_rows in rows.items():
        cases = list(dict.fromkeys(r["case"] for r in suite_rows))  # each case's frameworks together
        suite_rows.sort(key=lambda r: cases.index(r["case"]))
        header, shown = tables.case_header(cases)
        notes = []
        for row in suite_rows:
            if row["reason"]:  # the reason goes under the table, where it has the whole width
                n += 1
                row["note"] = n
                notes.append(f"[{n}] {row['label']} {shown(row['case'])}: {row['reason']}")
        title = f"{suite}{f' · {device}' if device else ''}: forward vs gradient"
        blocks.append(tables.Sheet("cases", title, _summary_columns(header, shown), tuple(suite_rows),
                                   tuple(notes), SUMMARY_FIELDS))
    grads = [r for r in records if r.phase == "gradient" and r.status == "ok"]
    legend = LEGEND
    if grads and all(len(r.process_rounds) < 2 for r in grads):
        # One process cannot see how much the machine moves between processes
        # and minutes: say so where the intervals are read.
        legend += "\n" + ONE_PROCESS
    blocks.append(tables.Line(legend, style="dim"))
    found = gradient_costs(records)
    blocks += [tables.Line(v.line, style="bold") for v in found]
    blocks.append(tables.Line("", name="verdicts", value=[_verdict_value(v) for v in found]))
    return blocks


SUMMARY_FIELDS = ("suite", "case", "framework", "mode", "device", "forward_s", "gradient_s", "R", "R_low",
                  "R_high", "theory", "status", "quality", "reason")


def _summary_row(f: Record, g: Record) -> dict[str, Any]:
    """One case of one framework: the values (JSON) and what the table shows of them."""
    label = f.framework if DEFAULT_MODES.get(f.framework) == f.mode else f"{f.framework} {f.mode}"
    status, style, why = _status(f, g)
    return {"suite": f.suite, "case": f.case, "framework": f.framework, "mode": f.mode, "device": f.device,
            "forward_s": f.median_s, "gradient_s": g.median_s, "R": g.ratio, "R_low": g.ratio_ci_low,
            "R_high": g.ratio_ci_high, "theory": g.theory_ratio, "status": status,
            "quality": g.quality, "reason": why, "note": 0, "style": style, "label": label}


def _summary_columns(header: str, shown) -> tuple[tables.Column, ...]:
    """Case (stacked above its rows when short of width), framework, times, R, theory, status."""
    Col = tables.Column
    return (
        Col("case", header, text=lambda r: shown(r["case"]), stack=lambda r: r["case"], fold_header=True),
        Col("framework", "framework", text=lambda r: r["label"]),
        Col("forward_s", "fwd ms", text=lambda r: fmt.ms(r["forward_s"]), right=True, drop=2),
        Col("gradient_s", "grad ms", text=lambda r: fmt.ms(r["gradient_s"]), right=True, drop=2),
        Col("R", "R [95% CI]", short="R [CI]", text=lambda r: fmt.ratio(r["R"], r["R_low"], r["R_high"]),
            right=True),
        Col("theory", "theory", text=lambda r: fmt.ratio(r["theory"]), right=True, drop=1),
        Col("status", "status", text=lambda r: r["status"] + (f" [{r['note']}]" if r["note"] else ""),
            style=lambda r: r["style"]),
    )


def _verdict_value(v: GradientCost) -> dict[str, Any]:
    lo, hi = v.interval
    return {"framework": v.framework, "mode": v.mode, "device": v.device, "cases": v.cases, "R": v.median,
            "R_low": lo, "R_high": hi, "theory": v.theory if v.theories else None, "flagged": v.flagged,
            "line": v.line}


def _status(f: Record, g: Record) -> tuple[str, str, str]:
    """The status word (ok, noisy, unreliable, or why not measured), its colour and its reason."""
    if g.status != "ok":
        bad = g.status in ("failed", "error", "crashed")
        return g.status, "red" if bad else "", g.reason[:300]
    flagged = [r for r in (g, f) if r.quality in ("noisy", "unreliable")]
    if not flagged:
        return "ok", "", ""
    worst = max(flagged, key=lambda r: r.quality == "unreliable")
    color = "red" if worst.quality == "unreliable" else "yellow"
    return worst.quality, color, worst.quality_reason.split("; ")[0]


def quality_warning(records: Sequence[Record]) -> str:
    """One line on how many measured rows are noisy or unreliable, and the main reason ('' if none)."""
    from bench.stats import quality

    s = quality.summary(records)
    flagged = s["noisy"] + s["unreliable"]
    if not flagged:
        return ""
    total = flagged + s["good"]
    verb = "is" if flagged == 1 else "are"
    return (f"{flagged} of {fmt.plural(total, 'measured row')} {verb} noisy ({s['noisy']}) or unreliable "
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
