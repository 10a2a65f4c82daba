"""Help pages with one layout for every command: what it does, examples, exit codes; 80 columns.

argparse wraps the option help itself; the description and the epilog are
wrapped here (RawDescriptionHelpFormatter keeps them as written), so that the
examples keep one command per line and the exit codes line up.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence

# argparse wraps at the terminal width minus 2; 80 columns is the width to fit.
WIDTH = 78
INDENT = "      "

# Exit codes every command shares (bench.cli.main): argparse's and UserError's, and Ctrl-C.
USAGE = (2, "a mistake in the command (an unknown option, a bad value, a missing file): one line "
            "on stderr says what to fix")
INTERRUPTED = (130, "interrupted by Ctrl-C")


def paragraphs(*texts: str, indent: int = 0) -> str:
    """Each text filled to the help width, a blank line between them.

    ``indent``: the columns argparse puts before each line (2 for an argument group's description).
    """
    return "\n\n".join(textwrap.fill(" ".join(t.split()), WIDTH - indent, break_on_hyphens=False)
                       for t in texts)


def epilog(examples: Sequence[tuple[str, str]], exit_codes: Sequence[tuple[int, str]]) -> str:
    """The examples (a command line, then what it does, indented) and the exit codes, one per line."""
    lines = ["examples:"]
    for command, what in examples:
        # A command is one line to copy: never wrapped (the help test checks it fits).
        lines.append(f"  {command}")
        lines += textwrap.wrap(what, WIDTH, initial_indent=INDENT, subsequent_indent=INDENT,
                               break_on_hyphens=False)
    lines += ["", "exit codes:"]
    for code, meaning in exit_codes:
        lines += textwrap.wrap(meaning, WIDTH, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7,
                               break_on_hyphens=False)
    return "\n".join(lines)


def add_command(sub: argparse._SubParsersAction, name: str, *, summary: str, description: Sequence[str],
                examples: Sequence[tuple[str, str]], exit_codes: Sequence[tuple[int, str]]
                ) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` has the shared layout.

    ``summary`` is its line in ``bench --help``; ``description`` its paragraphs.
    """
    return sub.add_parser(name, help=summary, description=paragraphs(*description),
                          epilog=epilog(examples, exit_codes),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
