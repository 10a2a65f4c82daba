"""``bench export``: a run as CSV, Markdown or pytest-benchmark JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMATS = ("csv", "markdown", "pytest-benchmark")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write stored results as CSV, Markdown or pytest-benchmark JSON",
        description="Export runs (run ids, results files, machine folders or trees) to another format. "
                    "pytest-benchmark files are read by `pytest-benchmark compare`.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--format", choices=FORMATS, default="csv", help="output format (default csv)")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                   help="file to write (default: standard output)")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="where run ids are looked up (default: ./results)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bench import export, store

    df, metadata = store.read_runs(store.resolve_runs(args.runs, args.results))
    if args.format == "csv":
        text = export.to_csv(df)
    elif args.format == "markdown":
        text = export.to_markdown(df)
    else:
        text = export.to_pytest_benchmark(df, metadata)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(args.output)
    return 0
