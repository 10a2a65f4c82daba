"""The command line: ``bench run | report | compare | export | list | env``. One thin handler per command.

Every user mistake is a ``UserError``, caught here once: one line on stderr,
exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from bench import __version__
from bench.cli import helptext
from bench.core.errors import UserError

DESCRIPTION = (
    "Times the forward pass against the backward pass of the same models in PyTorch, TensorFlow and JAX. "
    "The headline number is R = T(gradient) / T(forward): how many forward passes a gradient costs "
    "(theory for an MLP of L layers: 3 - 1/L).",
)
EXAMPLES = (
    ("bench list --cases", "the suites and every case a run would measure"),
    ("bench run --quick", "a quick run of every suite; prints R per case and writes a report"),
    ("bench compare results/laptop results/server", "two machines' newest runs, case by case"),
)
EXIT_CODES = (
    (0, "done"),
    (1, "bench run: some rows did not measure; bench compare --fail-on-regression: a regression"),
    (2, "a mistake in the command: one line on stderr says what to fix (also `bench` alone)"),
    (3, "bench run: the results file could not be written during the run"),
    (130, "interrupted by Ctrl-C (or, for bench run, SIGTERM)"),
)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: what was wrong and where to look."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from bench.cli import compare, env, export, importing, listing, report, run

    parser = Parser(
        prog="bench", description=helptext.paragraphs(*DESCRIPTION),
        epilog=helptext.epilog(EXAMPLES, EXIT_CODES) + "\n\n`bench COMMAND --help` explains each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                help="what to do; each has its own --help with examples")
    for module in (run, report, compare, export, importing, listing, env):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bench`` console script and ``python -m bench``."""
    # Ctrl-C at any point, also while the commands are still being imported or the
    # arguments parsed, is one line and exit code 130, not a traceback.
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
