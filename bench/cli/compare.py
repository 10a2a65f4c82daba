"""``bench compare BASE NEW``: speedups with CIs and verdicts that survive noise."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli import helptext
from bench.core import fmt
from bench.core.errors import UserError
from bench.present.tables import FORMATS
from bench.store.location import results_arg

# How many left-out runs a side's line names before it counts the rest.
NAMED_RUNS = 5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = helptext.add_command(
        sub, "compare", summary="compare two runs (or machines): speedups, verdicts, R, fingerprint diff",
        description=[
            "Match the cases of BASE and NEW (suite, parameters, framework, mode, device, dtype, phase) "
            "and call each faster, slower or no significant change: a call needs both a minimum effect "
            "and significance (Mann-Whitney U on the raw samples). Where a side has no raw samples (an "
            "imported pytest-benchmark file without stats.data), the medians are compared and the verdict "
            "reads 'no samples: no significance test'.",
            "A side that holds several runs (a folder) is compared through one of them (--run), and the "
            "output says which."],
        examples=(
            ("bench compare results/laptop results/server",
             "the newest run of each machine, case by case"),
            ("bench compare BASE_RUN_ID NEW_RUN_ID --fail-on-regression 10%",
             "in CI: exit code 1 when a case got at least 10 % slower"),
            ("bench compare results/old results/new --run pool --phase gradient",
             "every run of each side pooled, gradient rows only"),
        ),
        exit_codes=((0, "compared (with --fail-on-regression: no case slower by PCT or more)"),
                    (1, "with --fail-on-regression: at least one case slower by PCT or more"),
                    helptext.USAGE, helptext.INTERRUPTED),
    )
    p.add_argument("base", metavar="BASE", help="the reference side: a run id, a results file, a machine "
                                                "folder or a results tree, local or a URL")
    p.add_argument("new", metavar="NEW", help="the side compared with BASE, of the same kinds: speedup = "
                                              "T(BASE) / T(NEW)")
    p.add_argument("--results", type=results_arg, default=Path("results"), metavar="DIR|URL",
                   help="where run ids are looked up: a folder or a URL such as s3://bucket/results "
                        "(default: ./results)")
    p.add_argument("--min-effect", default="5%", metavar="PCT",
                   help="smallest speedup or slowdown worth calling: a percentage (5%%) or a fraction "
                        "(0.05); a bare number of 1 or more is refused as ambiguous (default 5%%)")
    p.add_argument("--fail-on-regression", default=None, metavar="PCT",
                   help="exit 1 if any case is slower by at least PCT (5%% or 0.05): significantly "
                        "slower, or by the medians where a side has no samples to test")
    p.add_argument("--phase", default="forward,gradient,step", metavar="LIST",
                   help="phases to show (default: forward,gradient,step)")
    p.add_argument("--run", action="append", default=None, metavar="WHICH",
                   help="which run of a side holding several (a folder) is compared: latest (the "
                        "newest, default), pool (every run's samples together), or a run id (or its "
                        "start) of that side; give it twice for BASE and NEW apart")
    p.add_argument("--format", choices=FORMATS, default="table", dest="form",
                   help="table (default: fitted to the terminal), plain (aligned text, every column, no "
                        "box characters), markdown, or json (one document, numbers as numbers, every case)")
    p.add_argument("--all", action="store_true",
                   help="print every compared case even when there are many (by default, above "
                        "200 cases, a summary per suite, framework, device and phase)")
    p.set_defaults(handler=handle)


def percent(value: str, option: str) -> float:
    """'5%' -> 0.05 and '0.05' -> 0.05: a percentage with its sign, or a fraction below 1.

    A bare number of 1 or more is refused: '1' could mean 1 % or 100 %.
    """
    text = value.strip()
    is_pct = text.endswith("%")
    try:
        x = float(text[:-1].strip() if is_pct else text)
    except ValueError:
        raise UserError(f"{option} {value!r}: give a percentage such as 5% "
                        "or a fraction such as 0.05") from None
    if not is_pct and x >= 1:
        raise UserError(f"{option} {value!r} is ambiguous: write {x:g}% for {x:g} percent, or a fraction "
                        f"below 1 ({x / 100:g} is {x:g}%)")
    if is_pct:
        x /= 100
    if not 0 < x < 1:  # also NaN
        raise UserError(f"{option} {value!r}: give a percentage between 0% and 100% (or a fraction "
                        "between 0 and 1), such as 5% or 0.05")
    return x


def choices(runs: list[str] | None) -> tuple[str, str | None]:
    """--run as (BASE's choice, NEW's choice); None for NEW: the one value applies to both sides."""
    from bench.stats import change

    runs = runs or [change.LATEST]
    if len(runs) > 2:
        raise UserError(f"--run is given {len(runs)} times: give it once (both sides) or twice (BASE, NEW)")
    if any(not r.strip() for r in runs):
        raise UserError("--run '': give latest, pool or a run id")
    return (runs[0], None) if len(runs) == 1 else (runs[0], runs[1])


def sides(args: argparse.Namespace):
    """The compared Side of BASE and of NEW, as --run chooses."""
    from bench import store
    from bench.stats import change

    base_df, base_meta = store.read_runs(store.resolve_runs([args.base], args.results),
                                         columns=change.COLUMNS)
    new_df, new_meta = store.read_runs(store.resolve_runs([args.new], args.results), columns=change.COLUMNS)
    first, second = choices(args.run)
    special = (change.LATEST, change.POOL)
    if second is not None:
        base, new = change.pick(base_df, base_meta, first), change.pick(new_df, new_meta, second)
        for side, name, which in ((base, args.base, first), (new, args.new, second)):
            if side is None:
                raise UserError(f"--run {which}: no run {which} in {name}")
        return base, new
    if first in special:
        return change.pick(base_df, base_meta, first), change.pick(new_df, new_meta, first)
    # One run id: it picks the run on the side that holds it; the other side compares its newest.
    base, new = change.pick(base_df, base_meta, first), change.pick(new_df, new_meta, first)
    if base is None and new is None:
        raise UserError(f"--run {first}: no run {first} in {args.base} or {args.new}")
    return (base or change.pick(base_df, base_meta, change.LATEST),
            new or change.pick(new_df, new_meta, change.LATEST))


def which_line(label: str, name: str, side) -> str:
    """Which run of a side is compared, and which are left out (nothing is dropped silently)."""
    if len(side.chosen) > 1:
        return f"{label}: {len(side.chosen)} runs pooled: {', '.join(side.chosen)} ({name})"
    text = f"{label}: run {side.chosen[0] if side.chosen else '-'} ({name}"
    others = [r for r in side.runs if r not in side.chosen]
    if not others:
        return text + ")"
    newest = side.chosen and side.chosen[0] == side.runs[-1]
    named = ", ".join(others[-NAMED_RUNS:][::-1])
    more = f" and {len(others) - NAMED_RUNS} more" if len(others) > NAMED_RUNS else ""
    return (f"{text}, {'the newest' if newest else 'one'} of {len(side.runs)} runs; left out: {named}{more}; "
            "--run pools them or picks another)")


def handle(args: argparse.Namespace) -> int:
    from bench.present import tables
    from bench.present.console import out
    from bench.stats import change

    min_effect = percent(args.min_effect, "--min-effect")
    fail_at = percent(args.fail_on_regression, "--fail-on-regression") if args.fail_on_regression else None
    choices(args.run)  # checked before any file is read
    phases = [p.strip() for p in args.phase.split(",") if p.strip()]
    base, new = sides(args)
    table, unmatched = change.compare(base.rows, new.rows, min_effect)
    if table.empty:
        raise UserError(f"{args.base} and {args.new} have no measured case in common "
                        "(same suite, parameters, framework, mode, device, dtype and phase)")
    form = getattr(args, "form", "table")
    tables.emit(blocks(args, base, new, table, min_effect, phases, form), form, out)
    return finish(table, unmatched, fail_at)


def blocks(args: argparse.Namespace, base, new, table, min_effect: float, phases: list[str],
           form: str) -> list:
    """Everything compare prints on stdout, as bench.present.tables blocks (the JSON document's parts)."""
    from bench.present import compare_view, tables
    from bench.stats import change

    out: list[tables.Block] = [
        tables.Line(which_line("base", args.base, base), name="base", value=_side(args.base, base)),
        tables.Line(which_line("new", args.new, new), name="new", value=_side(args.new, new))]
    diff = change.fingerprint_diff(base.metadata, new.metadata)
    if diff:
        out.append(compare_view.differences_sheet(diff))
    shown = table[table.phase.isin(phases)]
    ratios = change.compare_ratios(base.rows, new.rows, min_effect)
    rule = f"a call needs p < 0.05, at least {fmt.pct(min_effect)} and a CI that excludes 1"
    if len(shown) > change.TABLE_LIMIT and not args.all and form != "json":
        out += [tables.Line(f"{fmt.plural(len(shown), 'case')} compared: per suite, framework, device and "
                            f"phase (speedup = T(base) / T(new); {rule})"),
                *compare_view.summary_sheets(change.summary(shown))]
        if not ratios.empty:
            counts = ratios.R_change.value_counts().to_dict()
            each = ", ".join(f"{v}: {n}" for v, n in sorted(counts.items()))
            out.append(tables.Line(f"R = T(gradient)/T(forward) in both runs, "
                                   f"{fmt.plural(len(ratios), 'case')}: {each}"))
        out.append(tables.Line(f"{len(shown)} cases are too many to list one by one (more than "
                               f"{change.TABLE_LIMIT}): --all prints every case; --phase narrows them; "
                               "`bench export` writes either side's rows."))
        return [*out, compare_view.calls_line(table)]
    out += [tables.Line(f"speedup = T(base) / T(new) with its 95% CI, above 1 is faster; {rule}"),
            *compare_view.case_sheets(shown),
            compare_view.geomean_sheet(change.geomean_speedups(shown))]
    if not ratios.empty:
        out += compare_view.ratio_sheets(ratios)
    memory = shown[shown.peak_bytes_ratio.notna()]
    if change.has_memory(memory):
        out += compare_view.memory_sheets(memory, fmt.size)
    return [*out, compare_view.calls_line(table)]


def _side(name: str, side) -> dict:
    return {"name": name, "runs": list(side.chosen), "all_runs": list(side.runs)}


# Unmatched rows listed one by one before the rest are counted.
NAMED_UNMATCHED = 20


def finish(table, unmatched, fail_at: float | None) -> int:
    """The unmatched rows and the exit code (on stderr: stdout is the comparison, in its format)."""
    from rich.text import Text

    from bench.present.console import err
    from bench.stats import change

    if not unmatched.empty:
        err.print(f"[yellow]{fmt.plural(len(unmatched), 'measured row')} "
                  f"{'has' if len(unmatched) == 1 else 'have'} no partner in the other run:[/]")
        for r in unmatched.head(NAMED_UNMATCHED).itertuples():
            err.print(Text(f"  {r.side}: {r.suite} {r.case} {r.framework} ({r.mode}) {r.device} {r.phase}"))
        if len(unmatched) > NAMED_UNMATCHED:
            err.print(f"  and {len(unmatched) - NAMED_UNMATCHED} more")
    if fail_at is not None:
        worst = change.regressions(table, fail_at)
        if len(worst):
            untested = int(worst.verdict.isin(change.UNTESTED).sum())
            how = f"; {untested} of them by the medians alone (no samples to test)" if untested else ""
            err.print(f"[red]{fmt.plural(len(worst), 'regression')} of at least {fmt.pct(fail_at)} "
                      f"(worst: {fmt.speedup(float(worst.speedup.min()))}){how}[/]")
            return 1
    return 0
