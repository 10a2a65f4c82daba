"""``bench compare BASE NEW``: speedups with CIs and verdicts that survive noise."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from bench.errors import UserError
from bench.storage import results_arg

# How many left-out runs a side's line names before it counts the rest.
NAMED_RUNS = 5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two runs (or machines): speedups, verdicts, R, fingerprint diff",
        description=(
            "Match the cases of BASE and NEW (suite, parameters, framework, mode, device, dtype, "
            "phase) and call each faster, slower or no significant change: a call needs both a "
            "minimum effect and significance (Mann-Whitney U on the raw samples). Where a side has "
            "no raw samples (an imported pytest-benchmark file without stats.data), the medians are "
            "compared and the verdict reads 'no samples: no significance test'. BASE and NEW are "
            "run ids, results files, machine folders or trees; a side that holds several runs is "
            "compared through one of them (--run), and the output says which."
        ),
    )
    p.add_argument("base", metavar="BASE")
    p.add_argument("new", metavar="NEW")
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


def _ms(x: float) -> str:
    return "-" if x != x else f"{x * 1e3:#.3g}"


def _bytes(x: float) -> str:
    from bench.report.data import fmt_bytes

    return fmt_bytes(x)


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def _times(x: float) -> str:
    return "-" if x != x else f"{x:.2f}"


def _speed(value: float, low: float, high: float) -> str:
    """A speedup with its CI, the value alone without one (no samples), "-" for none."""
    if not math.isfinite(value):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.2f}"
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def _e(value: object) -> str:
    """A data string for rich: printed as it is, never read as markup."""
    from rich.markup import escape

    return escape(str(value))


def memory_table(table, phases: list[str]):
    """The rich table of peak memory in both runs (and M on gradient rows), or None when a side lacks it."""
    from rich.table import Table

    from bench import compare

    shown = table[table.phase.isin(phases)]
    shown = shown[shown.peak_bytes_ratio.notna()]
    if not compare.has_memory(shown):
        return None
    t = Table(title="memory: extra bytes at the peak of one call; M = peak(gradient) / peak(forward)",
              title_justify="left")
    for col in ("suite", "case", "framework", "device", "phase", "base peak", "new peak", "new / base",
                "base M", "new M"):
        t.add_column(col, no_wrap=True)
    for r in shown.itertuples():
        grad = r.phase == "gradient"  # M is the gradient's; elsewhere it is another phase's quotient
        t.add_row(_e(r.suite), _e(r.case), _e(f"{r.framework} ({r.mode})"), _e(r.device), _e(r.phase),
                  _bytes(r.base_peak_bytes), _bytes(r.new_peak_bytes), _times(r.peak_bytes_ratio),
                  _times(r.base_memory_ratio) if grad else "", _times(r.new_memory_ratio) if grad else "")
    return t


def choices(runs: list[str] | None) -> tuple[str, str | None]:
    """--run as (BASE's choice, NEW's choice); None for NEW: the one value applies to both sides."""
    from bench import compare

    runs = runs or [compare.LATEST]
    if len(runs) > 2:
        raise UserError(f"--run is given {len(runs)} times: give it once (both sides) or twice (BASE, NEW)")
    if any(not r.strip() for r in runs):
        raise UserError("--run '': give latest, pool or a run id")
    return (runs[0], None) if len(runs) == 1 else (runs[0], runs[1])


def sides(args: argparse.Namespace):
    """The compared Side of BASE and of NEW, as --run chooses."""
    from bench import compare, store

    base_df, base_meta = store.read_runs(store.resolve_runs([args.base], args.results))
    new_df, new_meta = store.read_runs(store.resolve_runs([args.new], args.results))
    first, second = choices(args.run)
    special = (compare.LATEST, compare.POOL)
    if second is not None:
        base, new = compare.pick(base_df, base_meta, first), compare.pick(new_df, new_meta, second)
        for side, name, which in ((base, args.base, first), (new, args.new, second)):
            if side is None:
                raise UserError(f"--run {which}: no run {which} in {name}")
        return base, new
    if first in special:
        return compare.pick(base_df, base_meta, first), compare.pick(new_df, new_meta, first)
    # One run id: it picks the run on the side that holds it; the other side compares its newest.
    base, new = compare.pick(base_df, base_meta, first), compare.pick(new_df, new_meta, first)
    if base is None and new is None:
        raise UserError(f"--run {first}: no run {first} in {args.base} or {args.new}")
    return (base or compare.pick(base_df, base_meta, compare.LATEST),
            new or compare.pick(new_df, new_meta, compare.LATEST))


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
    from rich.table import Table

    from bench import compare
    from bench.console import out

    min_effect = percent(args.min_effect, "--min-effect")
    fail_at = percent(args.fail_on_regression, "--fail-on-regression") if args.fail_on_regression else None
    choices(args.run)  # checked before any file is read
    phases = [p.strip() for p in args.phase.split(",") if p.strip()]
    base, new = sides(args)
    table, unmatched = compare.compare(base.rows, new.rows, min_effect)
    if table.empty:
        raise UserError(f"{args.base} and {args.new} have no measured case in common "
                        "(same suite, parameters, framework, mode, device, dtype and phase)")

    out.print(_e(which_line("base", args.base, base)), soft_wrap=True)
    out.print(_e(which_line("new", args.new, new)), soft_wrap=True)
    diff = compare.fingerprint_diff(base.metadata, new.metadata)
    if diff:
        t = Table(title="what differs between the compared runs", title_justify="left")
        for col in ("fact", "base", "new"):
            t.add_column(col)
        for row in diff:
            t.add_row(*map(_e, row))
        out.print(t)

    shown = table[table.phase.isin(phases)]
    if len(shown) > compare.TABLE_LIMIT and not args.all:
        print_summary(shown, min_effect, compare.compare_ratios(base.rows, new.rows, min_effect))
        return finish(table, unmatched, fail_at)
    t = Table(title=f"speedup = T(base) / T(new), 95% CI; a call needs p < 0.05 and at least "
                    f"{_pct(min_effect)}", title_justify="left")
    for col in ("suite", "case", "framework", "device", "phase", "base ms", "new ms", "speedup",
                "verdict"):
        t.add_column(col, no_wrap=col != "verdict")
    colour = {"faster": "green", "slower": "red", compare.INCONCLUSIVE: "yellow"}
    for r in shown.itertuples():
        c = colour.get(r.verdict)
        t.add_row(_e(r.suite), _e(r.case), _e(f"{r.framework} ({r.mode})"), _e(r.device), _e(r.phase),
                  _ms(r.base_median_s), _ms(r.new_median_s),
                  _speed(r.speedup, r.speedup_ci_low, r.speedup_ci_high),
                  f"[{c}]{_e(r.verdict)}[/]" if c else _e(r.verdict))
    out.print(t)

    g = compare.geomean_speedups(table[table.phase.isin(phases)])
    t = Table(title="geometric mean speedup over matched cases", title_justify="left")
    for col in ("framework", "device", "phase", "cases", "geomean speedup"):
        t.add_column(col)
    for r in g.itertuples():
        t.add_row(_e(f"{r.framework} ({r.mode})"), _e(r.device), _e(r.phase), str(r.cases),
                  _times(r.geomean_speedup))
    out.print(t)

    ratios = compare.compare_ratios(base.rows, new.rows, min_effect)
    if not ratios.empty:
        t = Table(title="R = T(gradient)/T(forward) in both runs (it travels between machines)",
                  title_justify="left")
        for col in ("suite", "case", "framework", "device", "base R", "new R", "R change"):
            t.add_column(col, no_wrap=True)
        for r in ratios.itertuples():
            t.add_row(_e(r.suite), _e(r.case), _e(f"{r.framework} ({r.mode})"), _e(r.device),
                      _speed(r.base_R, r.base_R_low, r.base_R_high),
                      _speed(r.new_R, r.new_R_low, r.new_R_high), _e(r.R_change))
        out.print(t)

    memory = memory_table(table, phases)
    if memory is not None:
        out.print(memory)

    return finish(table, unmatched, fail_at)


# Unmatched rows listed one by one before the rest are counted.
NAMED_UNMATCHED = 20


def print_summary(shown, min_effect: float, ratios) -> None:
    """Many cases: per suite, framework, device and phase, the geometric-mean speedup and the calls."""
    from rich.table import Table

    from bench import compare
    from bench.console import out

    t = Table(title=f"{len(shown)} cases compared: per suite, framework, device and phase (speedup = "
                    f"T(base) / T(new); a call needs p < 0.05 and at least {_pct(min_effect)})",
              title_justify="left")
    for col in ("suite", "framework", "device", "phase", "cases", "geomean speedup", "faster", "slower",
                "no change", "inconclusive", "untested"):
        t.add_column(col, no_wrap=True)
    for r in compare.summary(shown).itertuples():
        t.add_row(_e(r.suite), _e(f"{r.framework} ({r.mode})"), _e(r.device), _e(r.phase), str(r.cases),
                  _times(r.geomean_speedup), str(r.faster), str(r.slower), str(r.no_change),
                  str(r.inconclusive), str(r.untested))
    out.print(t)
    if not ratios.empty:
        counts = ratios.R_change.value_counts().to_dict()
        out.print(_e(f"R = T(gradient)/T(forward) in both runs, {len(ratios)} cases: "
                     + ", ".join(f"{v}: {n}" for v, n in sorted(counts.items()))), soft_wrap=True)
    out.print(f"{len(shown)} cases are too many to list one by one (more than {compare.TABLE_LIMIT}): "
              "--all prints every case; --phase narrows them; `bench export` writes either side's rows.",
              soft_wrap=True)


def finish(table, unmatched, fail_at: float | None) -> int:
    """The unmatched rows, the count of each call and the exit code: every row counts, shown or not."""
    from bench import compare
    from bench.console import err, out

    if not unmatched.empty:
        err.print(f"[yellow]{len(unmatched)} measured rows have no partner in the other run:[/]")
        for r in unmatched.head(NAMED_UNMATCHED).itertuples():
            err.print(_e(f"  {r.side}: {r.suite} {r.case} {r.framework} ({r.mode}) {r.device} {r.phase}"))
        if len(unmatched) > NAMED_UNMATCHED:
            err.print(f"  and {len(unmatched) - NAMED_UNMATCHED} more")

    calls = table.verdict.value_counts().to_dict()
    out.print(_e(", ".join(f"{v}: {n}" for v, n in sorted(calls.items()))), soft_wrap=True)
    if fail_at is not None:
        worst = compare.regressions(table, fail_at)
        if len(worst):
            untested = int(worst.verdict.isin(compare.UNTESTED).sum())
            how = f"; {untested} of them by the medians alone (no samples to test)" if untested else ""
            err.print(f"[red]{len(worst)} regressions of at least {_pct(fail_at)} "
                      f"(worst speedup {worst.speedup.min():.2f}){how}[/]")
            return 1
    return 0
