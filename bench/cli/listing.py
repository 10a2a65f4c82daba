"""``bench list``: suites, their cases, the frameworks and devices here."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import backends
from bench.catalog import discovery, loader
from bench.cli import helptext
from bench.core.records import FRAMEWORKS
from bench.execute import machine


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = helptext.add_command(
        sub, "list", summary="suites, their cases, frameworks and devices available here",
        description=["List the suites (each parameter's values, the number of cases, the quick subset), "
                     "the frameworks with their versions and modes, and this machine's devices. Imports "
                     "no framework."],
        examples=(
            ("bench list", "suites, frameworks and devices"),
            ("bench list --cases", "every case a run measures, one per line; the --quick ones marked *"),
            ("bench list --suites my_suites", "check that the suites in a folder of your own load"),
        ),
        exit_codes=((0, "listed (a suite that does not load is named on stderr)"), helptext.USAGE,
                    helptext.INTERRUPTED),
    )
    p.add_argument("--suites", type=Path, default=None, metavar="DIR",
                   help="folder of suite modules (default: ./suites, else the project's)")
    p.add_argument("--cases", action="store_true",
                   help="print every case that `bench run` (and `--quick`) would measure, one per line")
    p.set_defaults(handler=handle)


def _values(suite: loader.Suite) -> dict[str, list[int]]:
    """Each parameter's values over the suite's full-run cases."""
    values: dict[str, set[int]] = {}
    for case in suite.cases():
        for k, v in case.params:
            values.setdefault(k, set()).add(v)
    return {k: sorted(v) for k, v in values.items()}


def handle(args: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    from bench.present.console import out, warn

    directory = args.suites or discovery.default_dir()
    suites, problems = discovery.load_dir(directory)
    if args.cases:
        return _print_cases(suites, problems)
    # Every cell is Text: names, descriptions and GRID keys are the suite author's data,
    # and a "[/]" in them is text to show, not markup to parse.
    table = Table(title=Text(f"suites in {directory}", style="table.title"))
    for col in ("suite", "description", "grid", "cases", "quick subset", "frameworks"):
        table.add_column(col)
    for s in suites:
        grid = "\n".join(f"{k}: {', '.join(map(str, v))}" for k, v in _values(s).items())
        if isinstance(s.grid, list):
            grid += "\n(sweeps, not every combination)"
        quick = "\n".join(c.id for c in s.cases(quick=True))
        table.add_row(Text(s.name), Text(s.description), Text(grid), str(len(s.cases())), Text(quick),
                      ", ".join(s.frameworks))
    out.print(table)
    for message in problems:
        warn(f"broken suite: {message}")

    gpus = machine.gpus()
    devices = ["cpu"] + [f"cuda:{g['index']} ({g['name']})" for g in gpus]
    fw = Table(title="frameworks")
    for col in ("framework", "installed", "modes (default first)"):
        fw.add_column(col)
    for name in FRAMEWORKS:
        mod = backends.get(name)
        version = mod.version() if mod.available() else f"no: pip install 'bench[{name}]'"
        fw.add_row(name, Text(version), ", ".join(mod.MODES))  # "bench[torch]" is not a style tag
    out.print(fw)
    out.print(Text(f"devices on this machine: {', '.join(devices)}"))  # GPU names come from the driver
    out.print("(`bench env` shows which devices each framework can actually use)")
    return 0


def _print_cases(suites: list[loader.Suite], problems: list[str]) -> int:
    """Every case of every suite, one line each: what a run measures, with no grid notation to decode."""
    from rich.text import Text

    from bench.present.console import out, warn

    for s in suites:
        quick = {c.id for c in s.cases(quick=True)}
        cases = s.cases()
        out.print(Text(f"{s.name}: {len(cases)} cases ({len(quick)} with --quick, marked *)", style="bold"))
        for c in cases:
            out.print(Text(f"  {'*' if c.id in quick else ' '} {c.id}"))
        for c in s.cases(quick=True):  # a quick case outside the full grid still runs with --quick
            if c.id not in {x.id for x in cases}:
                out.print(Text(f"  * {c.id} (--quick only)"))
    for message in problems:
        warn(f"broken suite: {message}")
    return 0
