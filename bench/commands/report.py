"""``bench report``: one self-contained HTML page from stored results."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_REPORTS = Path("reports")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write one self-contained HTML page (verdict, figures, tables) from results",
        description=(
            "Write one HTML page from stored results: the verdict (median R = T(gradient) / "
            "T(forward) per framework and device, against the FLOP theory), the figures and the "
            "full table. The page opens offline: nothing is loaded from the network."
        ),
    )
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="a run id, a results file, a machine folder or a results tree (default: the "
                        "newest run under --results); several make one page")
    # A str, not a Path: Path("") would be ".", and an empty name must be refused.
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="the page to write (default: reports/<run-id>.html, or reports/report.html "
                        "for several runs); never a results file or a folder")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results tree where run ids and the newest run are looked up (default: ./results)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bench import report, store
    from bench.errors import UserError

    output = args.output
    if output is not None and not output.strip():
        raise UserError("-o is empty: give the page's file name, such as -o report.html")
    found = store.resolve_runs(args.runs, args.results)
    if output is None:
        name = f"{found[0].stem}.html" if len(found) == 1 else "report.html"
        output = DEFAULT_REPORTS / name
    written = report.write(found, output)
    print(written)
    return 0
