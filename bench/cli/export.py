"""``bench export``: a run as CSV, Markdown or pytest-benchmark JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli import helptext
from bench.store.location import results_arg

FORMATS = ("csv", "markdown", "pytest-benchmark")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = helptext.add_command(
        sub, "export", summary="write stored results as CSV, Markdown or pytest-benchmark JSON",
        description=[
            "Export runs (run ids, results files, machine folders or trees) to another format: CSV "
            "(every column), Markdown (a table for people: times in ms, R with its CI and its theory, "
            "the status) or pytest-benchmark JSON. pytest-benchmark files are read by `pytest-benchmark "
            "compare`; they "
            "hold the rows with raw samples (an imported median without them is left out, with a message).",
            "In CSV, a text that starts with = + - or @ gets a leading ' so that a spreadsheet shows it "
            "instead of running it as a formula."],
        examples=(
            ("bench export results/laptop -o laptop.csv", "every run of one machine as one CSV file"),
            ("bench export RUN_ID --format markdown", "one run as a Markdown table on standard output"),
            ("bench export results --format pytest-benchmark -o all.json",
             "the whole results tree for pytest-benchmark compare"),
        ),
        exit_codes=((0, "written (to -o FILE, whose path is printed, or to standard output)"),
                    helptext.USAGE, helptext.INTERRUPTED),
    )
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="a run id, a results file, a machine folder or a results tree, local or a URL; "
                        "several are exported together")
    p.add_argument("--format", choices=FORMATS, default="csv", help="output format (default csv)")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="file to write, whole or not at all; its folder is made if missing; never a "
                        "results file (default: standard output)")
    p.add_argument("--results", type=results_arg, default=Path("results"), metavar="DIR|URL",
                   help="where run ids are looked up: a folder or a URL such as s3://bucket/results "
                        "(default: ./results)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bench import store
    from bench.interop import export
    from bench.store import outputs

    sources = store.resolve_runs(args.runs, args.results)
    output = None
    if args.output is not None:
        # Checked before anything is read: the inputs themselves are never the output.
        inputs = [f for s in sources for f in store.files(s) if isinstance(f, Path)]  # -o is local
        output = outputs.output_file(args.output, "-o", protect=inputs)
    df, metadata = store.read_runs(sources, columns=export.COLUMNS[args.format])
    if args.format == "csv":
        text = export.to_csv(df)
    elif args.format == "markdown":
        text = export.to_markdown(df)
    else:
        text = export.to_pytest_benchmark(df, metadata)
        left_out = export.exportable(df)[1]
        if left_out:
            print(f"bench: {left_out} measured rows without raw samples are left out of the "
                  "pytest-benchmark file (its statistics need them)", file=sys.stderr)
    if output is None:
        sys.stdout.write(text)
    else:
        outputs.write_text(output, text)
        print(output)
    return 0
