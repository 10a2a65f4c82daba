"""``bench compare BASE NEW``: speedups with CIs and verdicts that survive noise."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two runs (or machines): speedups, verdicts, R, fingerprint diff",
        description=(
            "Match the cases of BASE and NEW (suite, parameters, framework, mode, device, dtype, "
            "phase) and call each faster, slower or no significant change: a call needs both a "
            "minimum effect and significance (Mann-Whitney U on the raw samples). BASE and NEW "
            "are run ids, results files, machine folders or trees."
        ),
    )
    p.add_argument("base", metavar="BASE")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="where run ids are looked up (default: ./results)")
    p.add_argument("--min-effect", default="5%", metavar="PCT",
                   help="smallest speedup or slowdown worth calling (default 5%%)")
    p.add_argument("--fail-on-regression", default=None, metavar="PCT",
                   help="exit 1 if any case is significantly slower by at least PCT (e.g. 5%%)")
    p.add_argument("--phase", default="forward,gradient,step", metavar="LIST",
                   help="phases to show (default: forward,gradient,step)")
    p.set_defaults(handler=handle)


def percent(value: str, option: str) -> float:
    """'5%' or '5' -> 0.05; '0.05' -> 0.05."""
    text = value.strip().rstrip("%")
    try:
        x = float(text)
    except ValueError:
        raise UserError(f"{option} {value!r}: give a percentage such as 5%") from None
    if value.strip().endswith("%") or x >= 1:
        x /= 100
    if not 0 < x < 1:
        raise UserError(f"{option} {value!r}: give a percentage between 0% and 100%")
    return x


def _ms(x: float) -> str:
    return "-" if x != x else f"{x * 1e3:#.3g}"


def _bytes(x: float) -> str:
    from bench.report.data import fmt_bytes

    return fmt_bytes(x)


def _times(x: float) -> str:
    return "-" if x != x else f"{x:.2f}"


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
        t.add_row(r.suite, r.case, f"{r.framework} ({r.mode})", r.device, r.phase,
                  _bytes(r.base_peak_bytes), _bytes(r.new_peak_bytes), _times(r.peak_bytes_ratio),
                  _times(r.base_memory_ratio) if grad else "", _times(r.new_memory_ratio) if grad else "")
    return t


def handle(args: argparse.Namespace) -> int:
    from rich.table import Table

    from bench import compare, store
    from bench.console import err, out

    min_effect = percent(args.min_effect, "--min-effect")
    fail_at = percent(args.fail_on_regression, "--fail-on-regression") if args.fail_on_regression else None
    phases = [p.strip() for p in args.phase.split(",") if p.strip()]
    base_df, base_meta = store.read_runs(store.resolve_runs([args.base], args.results))
    new_df, new_meta = store.read_runs(store.resolve_runs([args.new], args.results))
    table, unmatched = compare.compare(base_df, new_df, min_effect)
    if table.empty:
        raise UserError(f"{args.base} and {args.new} have no measured case in common "
                        "(same suite, parameters, framework, mode, device, dtype and phase)")

    diff = compare.fingerprint_diff(base_meta[0], new_meta[0])
    if diff:
        t = Table(title="what differs between the runs (first run of each side)", title_justify="left")
        for col in ("fact", "base", "new"):
            t.add_column(col)
        for row in diff:
            t.add_row(*row)
        out.print(t)

    shown = table[table.phase.isin(phases)]
    t = Table(title=f"speedup = T(base) / T(new), 95% CI; a call needs p < 0.05 and at least "
                    f"{min_effect:.0%}", title_justify="left")
    for col in ("suite", "case", "framework", "device", "phase", "base ms", "new ms", "speedup",
                "verdict"):
        t.add_column(col, no_wrap=col != "verdict")
    colour = {"faster": "green", "slower": "red", compare.INCONCLUSIVE: "yellow"}
    for r in shown.itertuples():
        speed = f"{r.speedup:.2f} [{r.speedup_ci_low:.2f}, {r.speedup_ci_high:.2f}]"
        c = colour.get(r.verdict)
        t.add_row(r.suite, r.case, f"{r.framework} ({r.mode})", r.device, r.phase,
                  _ms(r.base_median_s), _ms(r.new_median_s), speed,
                  f"[{c}]{r.verdict}[/]" if c else r.verdict)
    out.print(t)

    g = compare.geomean_speedups(table[table.phase.isin(phases)])
    t = Table(title="geometric mean speedup over matched cases", title_justify="left")
    for col in ("framework", "device", "phase", "cases", "geomean speedup"):
        t.add_column(col)
    for r in g.itertuples():
        t.add_row(f"{r.framework} ({r.mode})", r.device, r.phase, str(r.cases), f"{r.geomean_speedup:.3f}")
    out.print(t)

    ratios = compare.compare_ratios(base_df, new_df, min_effect)
    if not ratios.empty:
        t = Table(title="R = T(gradient)/T(forward) in both runs (it travels between machines)",
                  title_justify="left")
        for col in ("suite", "case", "framework", "device", "base R", "new R", "R change"):
            t.add_column(col, no_wrap=True)
        for r in ratios.itertuples():
            t.add_row(r.suite, r.case, f"{r.framework} ({r.mode})", r.device,
                      f"{r.base_R:.2f} [{r.base_R_low:.2f}, {r.base_R_high:.2f}]",
                      f"{r.new_R:.2f} [{r.new_R_low:.2f}, {r.new_R_high:.2f}]", r.R_change)
        out.print(t)

    memory = memory_table(table, phases)
    if memory is not None:
        out.print(memory)

    if not unmatched.empty:
        err.print(f"[yellow]{len(unmatched)} measured rows have no partner in the other run:[/]")
        for r in unmatched.itertuples():
            err.print(f"  {r.side}: {r.suite} {r.case} {r.framework} ({r.mode}) {r.device} {r.phase}")

    calls = table.verdict.value_counts().to_dict()
    out.print(", ".join(f"{v}: {n}" for v, n in sorted(calls.items())))
    if fail_at is not None:
        worst = table[(table.verdict == "slower") & (table.speedup <= 1 / (1 + fail_at))]
        if len(worst):
            err.print(f"[red]{len(worst)} regressions of at least {fail_at:.0%} "
                      f"(worst speedup {worst.speedup.min():.2f})[/]")
            return 1
    return 0
