"""Help that teaches (issue #11, item 5): every command's --help through the real entry point.

Each has examples whose command lines parse, its exit codes as the code
returns them, a line of help for every positional argument, and fits 80 columns.
"""

from __future__ import annotations

import argparse
import re
import shlex

import pytest
from conftest import bench_cli

from bench.cli import main as cli

# What each command really returns (bench.cli.main, and the command's handler).
EXIT_CODES = {
    "": {0, 1, 2, 3, 130},
    "run": {0, 1, 2, 3, 130},
    "compare": {0, 1, 2, 130},
    "report": {0, 2, 130},
    "export": {0, 2, 130},
    "import": {0, 2, 130},
    "list": {0, 2, 130},
    "env": {0, 2, 130},
}


def subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    if not name:
        return parser
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def section(text: str, heading: str) -> list[str]:
    """The lines under ``heading`` up to the next blank line."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def help_at_80(name: str) -> str:
    proc = bench_cli(*([name] if name else []), "--help", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert not proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", list(EXIT_CODES), ids=lambda n: n or "bench")
def test_help_has_examples_that_parse(name):
    text = help_at_80(name)
    lines = section(text, "examples:")
    examples = [(i, line.strip()) for i, line in enumerate(lines) if line.startswith("  bench ")]
    assert 2 <= len(examples) <= 3, text
    parser = cli.build_parser()
    for i, example in examples:
        argv = shlex.split(example)[1:]
        if name:
            assert argv[0] == name, example
        try:
            parser.parse_args(argv)
        except SystemExit as exc:  # argparse refuses it: the example is wrong
            pytest.fail(f"{example!r} does not parse (exit {exc.code})")
        # Every example says what it does, on the line below it.
        assert lines[i + 1].startswith("      ") and lines[i + 1].strip(), example


@pytest.mark.parametrize("name", list(EXIT_CODES), ids=lambda n: n or "bench")
def test_help_lists_the_exit_codes_the_command_returns(name):
    lines = section(help_at_80(name), "exit codes:")
    codes = {int(m.group(1)) for line in lines if (m := re.match(r"  (\d+) +\S", line))}
    assert codes == EXIT_CODES[name], lines


@pytest.mark.parametrize("name", list(EXIT_CODES), ids=lambda n: n or "bench")
def test_help_fits_80_columns(name):
    text = help_at_80(name)
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert not wide, wide


@pytest.mark.parametrize("name", list(EXIT_CODES), ids=lambda n: n or "bench")
def test_every_positional_argument_has_help(name):
    parser = subparser(name)
    positionals = [a for a in parser._actions if not a.option_strings]
    assert bool(positionals) == (name in ("", "report", "compare", "export", "import")), name
    text = " ".join(help_at_80(name).split())
    for action in positionals:
        assert action.help and action.help != argparse.SUPPRESS, action.dest
        # Printed as well: its first words, as argparse wrapped them.
        assert " ".join(action.help.split()[:4]) in text, action.dest


def test_the_positionals_that_had_no_help_now_say_what_they_take():
    text = " ".join(help_at_80("export").split())
    assert "RUN a run id, a results file" in text
    text = " ".join(help_at_80("compare").split())
    assert "BASE the reference side" in text and "NEW the side compared with BASE" in text
    text = " ".join(help_at_80("import").split())
    assert "FILE a pytest-benchmark JSON file" in text
