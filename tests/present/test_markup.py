"""Rich markup in data (error messages, descriptions, GRID keys, machine facts) is shown, never parsed.

A "[/]" or "[/data/train.npy]" in a string that rich parses as markup raises
MarkupError: a run then ended with a traceback after its first case. Every
data string is printed as Text (or escaped); these tests feed such strings
through run, list and compare, and generated ones through the console helpers.
"""

from __future__ import annotations

import io
import json
import math
import re
import textwrap
from pathlib import Path

import pytest
from conftest import bench_cli, needs
from factories import SUITE_HEADER
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console

import bench
from bench import store
from bench.core.cases import parse_id
from bench.core.records import Record
from bench.execute.jobs import Job
from bench.execute.runner import JobOutcome
from bench.present import console

RAISES = SUITE_HEADER + textwrap.dedent("""
    def loss_jax(params, X, y):
        raise ValueError("cannot open [/data/train.npy]")
""")
# A GRID key and a DESCRIPTION that are broken markup; the model is the MLP's.
BRACKETS = SUITE_HEADER + textwrap.dedent("""
    DESCRIPTION = "closes [/] nothing, opens [bold]x"
    GRID = [{"a[/x]": 1}, {"a[/x]": 2}]
    QUICK = GRID
    _BASE = {"batch": 8, "width": 16, "depth": 2}

    def problem(params, seed):
        return _mlp.problem(_BASE, seed)

    def flops(params):
        return _mlp.flops(_BASE)
""")
EXITS = SUITE_HEADER + "import sys\nsys.exit(0)\n"


def _no_markup_leaked(text: str) -> None:
    """Styles were applied, not printed: a string that failed to parse would show its tags."""
    assert "Traceback" not in text and "MarkupError" not in text
    for tag in ("[yellow]", "[red]", "[/]\n"):
        assert tag not in text, text


@pytest.mark.slow  # a jax run of three cases: about 15 s
@needs("jax")
def test_run_survives_markup_in_data_an_exiting_suite_and_a_repeated_suite_name(tmp_path):
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "a_raises.py").write_text(RAISES)
    (folder / "b_brackets.py").write_text(BRACKETS)
    (folder / "c_exits.py").write_text(EXITS)
    results, reports = tmp_path / "results", tmp_path / "reports"

    proc = bench_cli("run", "--framework", "jax", "--suites", str(folder), "--quick", "--budget", "0.05",
                     "--suite", "a_raises,b_brackets,b_brackets", "--machine", "m",
                     "--results", str(results), "--reports", str(reports))

    assert proc.returncode == 1, proc.stderr  # a_raises did not measure; the rest went through
    _no_markup_leaked(proc.stderr)
    raised = [ln for ln in proc.stderr.splitlines() if "cannot open" in ln]
    assert raised and "ValueError: cannot open [/data/train.npy]" in raised[0]
    exits = [ln for ln in proc.stderr.splitlines() if "c_exits" in ln]
    assert len(exits) == 1 and "sys.exit(0)" in exits[0]
    # The summary table: the GRID key heads the case column, its values fill it.
    table = proc.stdout[proc.stdout.index("b_brackets: forward vs gradient"):]
    assert "a[/x]" in table.splitlines()[1]
    assert any(ln.split()[:1] == ["1"] for ln in table.splitlines())
    assert any(ln.split()[:1] == ["2"] for ln in table.splitlines())

    df = bench.load(results / "m")
    assert set(df.suite) == {"a_raises", "b_brackets"}
    assert set(df[df.suite == "a_raises"].status) == {"error"}
    brackets = df[df.suite == "b_brackets"]
    assert set(brackets.status) == {"ok"}
    assert set(brackets.case) == {"a[/x]=1", "a[/x]=2"}
    # --suite b_brackets,b_brackets measured each case once
    assert not df.duplicated(["suite", "case", "framework", "mode", "device", "phase"]).any()
    [path] = (results / "m").glob("*.parquet")
    assert store.read_metadata(path)["finished"] is not None
    assert len(list(reports.glob("*.html"))) == 1


def test_list_shows_markup_in_descriptions_grid_keys_and_import_errors_as_text(tmp_path):
    (tmp_path / "b_brackets.py").write_text(BRACKETS)
    (tmp_path / "broken.py").write_text(SUITE_HEADER + "raise RuntimeError('no file [/data/x.npy]')")

    proc = bench_cli("list", "--suites", str(tmp_path))

    assert proc.returncode == 0, proc.stderr
    _no_markup_leaked(proc.stdout + proc.stderr)
    assert "closes [/] nothing, opens [bold]x" in proc.stdout
    assert "a[/x]=1" in proc.stdout and "a[/x]: 1, 2" in proc.stdout
    [line] = [ln for ln in proc.stderr.splitlines() if "broken" in ln]
    assert "RuntimeError: no file [/data/x.npy]" in line


def _write(path: Path, processor: str, cases: tuple[str, ...], scale: float) -> Path:
    records = []
    for case in cases:
        for phase, seconds in (("forward", scale * 1e-3), ("gradient", scale * 2.5e-3)):
            samples = tuple(seconds * (1 + i / 100) for i in range(10))
            records.append(Record(
                run_id=path.stem, machine="m", suite="s", case=case, params="{}", framework="jax",
                framework_version="0", mode="jit", device="cpu", phase=phase, status="ok",
                median_s=seconds, samples_s=samples, threads=1))
    w = store.ResultsWriter(path, {"run_id": path.stem, "machine": "m",
                                   "fingerprint": {"processor": processor}, "settings": {"threads": 1}})
    w.append(records)
    w.close()
    return path


def test_compare_shows_markup_in_case_ids_and_machine_facts_as_text(tmp_path):
    base = _write(tmp_path / "base.parquet", "Intel [/x]", ("a[/x]=1", "only[/]here=1"), 1.0)
    new = _write(tmp_path / "new.parquet", "AMD [/y]", ("a[/x]=1",), 1.0)

    proc = bench_cli("compare", str(base), str(new))

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "MarkupError" not in proc.stderr
    assert re.search(r"^a\[/x\]=1 ", proc.stdout, re.MULTILINE)
    # Narrow, the case is a line of its own above its rows.
    narrow = bench_cli("compare", str(base), str(new), env={"COLUMNS": "60"}).stdout
    assert re.search(r"^a\[/x\]=1$", narrow, re.MULTILINE), narrow
    assert "Intel [/x]" in proc.stdout and "AMD [/y]" in proc.stdout
    as_json = bench_cli("compare", str(base), str(new), "--format", "json")
    assert {c["case"] for c in json.loads(as_json.stdout)["cases"]} == {"a[/x]=1"}
    assert "only[/]here=1" in proc.stderr  # the row without a partner


# --- generated strings through the console helpers ------------------------------------------

# Heavy on what markup is made of: brackets, slashes, backslashes, @ and #.
DATA = st.text(alphabet=st.sampled_from("[]/\\@#:=ab x._-'\""), min_size=1, max_size=40)
# Each example empties the shared buffer first, so a function-scoped fixture is safe here.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def captured(monkeypatch):
    """console.err and console.out writing into one string buffer, wide enough never to wrap.

    A plain rich Console, without SafeConsole's net: what is printed must be safe by itself.
    """
    buf = io.StringIO()
    test_console = Console(file=buf, width=2000, emoji=False, color_system=None, soft_wrap=True)
    monkeypatch.setattr(console, "err", test_console)
    monkeypatch.setattr(console, "out", test_console)
    return buf


def _record(text: str, phase: str, status: str = "ok", reason: str = "") -> Record:
    return Record(run_id="r", machine="m", suite=text, case=text, params="{}", framework="jax",
                  framework_version="0", mode=text, device=text, phase=phase, status=status,
                  reason=reason, median_s=1e-3, ratio=2.0 if phase == "gradient" else math.nan)


@FAST
@given(text=DATA)
def test_warn_prints_any_string_as_it_is(captured, text):
    captured.seek(0)
    captured.truncate()
    console.warn(text)
    assert captured.getvalue() == text + "\n"


@FAST
@given(text=DATA)
def test_progress_shows_any_case_and_error_message_as_they_are(captured, text):
    captured.seek(0)
    captured.truncate()
    job = Job(framework="jax", device=text, mode="jit", suites=())
    display = console.ProgressDisplay(3)
    display.case_started(job, text)
    console.out.print(display.progress.get_renderable())
    display.case_finished(job, text, [_record(text, "forward", "error", reason=f"ValueError: {text}")])
    display.job_finished(job, JobOutcome(crashed=text))
    shown = captured.getvalue()
    assert f"jax (jit) on {text}: {text}" in shown  # the bar's description
    assert f"{text}: error: ValueError: {text}\n" in shown
    assert f"on {text}: {text}\n" in shown  # the crash line


@FAST
@given(text=DATA)
def test_summary_shows_any_suite_case_and_reason_as_they_are(captured, text):
    captured.seek(0)
    captured.truncate()
    failed = _record(text, "gradient", "failed", reason=text)
    console.out.print(console.summary([_record(text, "forward"), failed]))
    shown = captured.getvalue()
    assert f"{text}: forward vs gradient".strip() in shown
    values = parse_id(text)  # a case id of the k=v form shows its values under the keys
    case = ",".join(v for _, v in values) if values else text
    assert case.strip() in shown
    label = "jax" if text == "jit" else f"jax {text}"  # the mode shows when it is not the default
    assert label.strip() in shown
    assert "failed [1]" in shown
    assert f"[1] {label} {case}: {text}" in shown  # the reason, verbatim, under the table


@FAST
@given(text=DATA)
@example(text=":a:")  # an emoji code, found by hypothesis: data, not a picture
def test_the_consoles_print_a_string_with_broken_markup_as_plain_text(text):
    buf = io.StringIO()
    safe = console.SafeConsole(file=buf, width=2000, color_system=None, soft_wrap=True)
    # "[/data/x.npy]" closes a tag never opened (DATA cannot spell one): a plain Console raises.
    message = f"[yellow]{text} cannot open [/data/x.npy][/]"
    safe.print(message)
    assert buf.getvalue() == message + "\n"
