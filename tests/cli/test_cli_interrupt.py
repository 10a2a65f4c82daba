"""Ctrl-C at any moment of the command line is one line, ``bench: interrupted``, and exit code 130."""

from __future__ import annotations

import os
import textwrap

import pytest
from conftest import bench_cli

from bench.cli import main as cli

# Loaded at interpreter start-up from PYTHONPATH: sends bench a real SIGINT while
# its commands are being imported, before any command's own handler runs.
SITECUSTOMIZE = textwrap.dedent("""
    import os
    import signal
    import sys


    class _InterruptOnImport:
        def find_spec(self, name, path=None, target=None):
            if name == "bench.cli.run":
                os.kill(os.getpid(), signal.SIGINT)
            return None


    sys.meta_path.insert(0, _InterruptOnImport())
""")


def test_ctrl_c_while_the_commands_are_imported_is_one_line_and_exit_130(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)

    proc = bench_cli("list", env={"PYTHONPATH": path})

    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "bench: interrupted\n"


@pytest.mark.parametrize("where", ["build_parser", "parse_args"])
def test_ctrl_c_before_the_handler_is_caught_in_main(monkeypatch, capsys, where):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "build_parser":
        monkeypatch.setattr(cli, "build_parser", interrupt)
    else:
        monkeypatch.setattr(cli.Parser, "parse_args", interrupt)
    try:
        code = cli.main(["list"])
    except KeyboardInterrupt:  # caught here so that a failing test does not stop pytest itself
        pytest.fail("KeyboardInterrupt escaped bench.cli.main")
    assert code == 130
    assert capsys.readouterr().err == "bench: interrupted\n"
