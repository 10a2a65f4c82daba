"""``bench report``: one self-contained HTML page from stored results."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli import helptext
from bench.store.location import results_arg

DEFAULT_REPORTS = Path("reports")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = helptext.add_command(
        sub, "report", summary="write one self-contained HTML page (verdict, figures, tables) from results",
        description=["Write one HTML page from stored results: the verdict (median R = T(gradient) / "
                     "T(forward) per framework and device, against the FLOP theory), the figures and the "
                     "full table. The page opens offline: nothing is loaded from the network. It prints "
                     "the page's path."],
        examples=(
            ("bench report", "a page of the newest run under ./results, in reports/<run-id>.html"),
            ("bench report results/laptop results/server -o reports/two.html",
             "one page over the runs of two machines' folders"),
            ("bench report --results s3://bucket/results --fleet FLEET_ID",
             "every machine's run of one fleet run (bench run --cluster prints its id)"),
        ),
        exit_codes=((0, "the page was written"), helptext.USAGE, helptext.INTERRUPTED),
    )
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="a run id, a results file, a machine folder or a results tree, local or a URL "
                        "(default: the newest run under --results); several make one page")
    # A str, not a Path: Path("") would be ".", and an empty name must be refused.
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="the page to write (default: reports/<run-id>.html, or reports/report.html "
                        "for several runs); never a results file or a folder")
    p.add_argument("--results", type=results_arg, default=Path("results"), metavar="DIR|URL",
                   help="results tree (a folder or a URL such as s3://bucket/results) where run ids and the "
                        "newest run are looked up (default: ./results)")
    p.add_argument("--fleet", default=None, metavar="ID",
                   help="every machine's run of this fleet run (bench run --cluster prints its id) under "
                        "--results, on one page")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bench import store
    from bench.core.errors import UserError
    from bench.present import report

    output = args.output
    if output is not None and not output.strip():
        raise UserError("-o is empty: give the page's file name, such as -o report.html")
    if args.fleet and args.runs:
        raise UserError("--fleet picks the runs itself: give either RUN arguments or --fleet")
    found = store.fleet_runs(args.results, args.fleet) if args.fleet else store.resolve_runs(args.runs,
                                                                                              args.results)
    if output is None:
        name = (f"{args.fleet}.html" if args.fleet else
                f"{store.stem(found[0])}.html" if len(found) == 1 else "report.html")
        output = DEFAULT_REPORTS / name
    written = report.write(found, output)
    print(written)
    return 0
