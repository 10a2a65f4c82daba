"""`bench report` against its own inputs and odd outputs (issue #9 items 3, 10, 11, 13, 15).

Through the real entry point: a file named twice is counted once; the page never replaces a results
file, an input, a device node or a FIFO; bad output names are one line, exit 2.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import bench_cli

from bench import store
from bench.core.errors import UserError
from bench.core.records import Record
from bench.present import report
from bench.store import schema
from bench.store.writer import ResultsWriter

RUN = "20260102T030405Z-0123456789abcdef"
CASES = 11


def results(folder: Path, cases: int = CASES) -> Path:
    """A run of ``cases`` cases, forward and gradient ok, R = 2."""
    path = folder / "box" / f"{RUN}.parquet"
    rows = []
    for i in range(cases):
        for phase, t in (("forward", 0.001), ("gradient", 0.002)):
            rows.append(Record(run_id=RUN, machine="box", suite="s", case=f"n={i + 1}", params="{}",
                               framework="torch", framework_version="2", mode="eager", device="cpu",
                               phase=phase, status="ok", median_s=t * (i + 1), rounds=3,
                               samples_s=(t * (i + 1),) * 3, ratio=t / 0.001, ratio_ci_low=1.9,
                               ratio_ci_high=2.1, flops=1e6 * (i + 1) * t / 0.001, theory_ratio=t / 0.001))
    w = ResultsWriter(path, {"run_id": RUN, "machine": "box", "settings": {"threads": 1}})
    w.append(rows)
    w.close()
    return path


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    return results(tmp_path_factory.mktemp("results"))


def one_line_exit_2(proc, *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


# --- item 3 -------------------------------------------------------------------------------------


def test_one_file_named_twice_is_counted_once(run_file, tmp_path):
    out = tmp_path / "r.html"
    proc = bench_cli("report", run_file.name, str(run_file), "-o", str(out), cwd=run_file.parent)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert re.search(rf"over {CASES} cases", page), re.findall(r"over \d+ cases", page)
    assert f"over {2 * CASES} cases" not in page


# --- item 10 and 13: where the page may be written ----------------------------------------------


def test_the_page_never_replaces_the_results_it_reads(run_file):
    before = run_file.read_bytes()
    proc = bench_cli("report", str(run_file), "-o", str(run_file))
    one_line_exit_2(proc, str(run_file))
    assert run_file.read_bytes() == before


def test_the_page_never_replaces_a_results_file(run_file, tmp_path):
    other = tmp_path / "other.html"
    shutil.copy(run_file, other)  # a results file under an innocent name
    before = other.read_bytes()
    one_line_exit_2(bench_cli("report", str(run_file), "-o", str(other)), "Parquet")
    assert other.read_bytes() == before
    one_line_exit_2(bench_cli("report", str(run_file), "-o", str(tmp_path / "new.parquet")), "HTML")
    assert not (tmp_path / "new.parquet").exists()


def test_an_input_reached_through_a_folder_or_a_link_is_not_replaced(run_file, tmp_path):
    link = tmp_path / "page.html"
    link.symlink_to(run_file)
    with pytest.raises(UserError, match="being read"):
        report.check_output(link, store.expand([run_file.parent]))


@pytest.mark.parametrize(("out", "words"), [
    ("", ["empty"]),
    ("   ", ["empty"]),
    ("{tmp}", ["is a folder"]),
    ("{tmp}/afile/x.html", ["afile", "not a folder"]),
])
def test_bad_output_names_are_one_line_exit_2(run_file, tmp_path, out, words):
    (tmp_path / "afile").write_text("a file\n")
    proc = bench_cli("report", str(run_file), "-o", out.format(tmp=tmp_path))
    one_line_exit_2(proc, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_device_node_is_written_through_not_replaced(run_file, tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        node = Path("/dev/null")  # not root: the old code could not replace it either
    proc = bench_cli("report", str(run_file), "-o", str(node))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat(node).st_mode)
    assert not list(node.parent.glob(f".{node.name}*"))


@pytest.mark.timeout(120)
def test_a_fifo_is_written_through(run_file, tmp_path):
    fifo = tmp_path / "page.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    proc = bench_cli("report", str(run_file), "-o", str(fifo))
    reader.join(30)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].startswith("<!doctype html>")


def test_a_link_stays_a_link_and_its_target_gets_the_page(run_file, tmp_path):
    target = tmp_path / "pages" / "r.html"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.html"
    link.symlink_to(target)
    report.write([run_file], link)
    assert link.is_symlink() and target.read_text().startswith("<!doctype html>")


def test_a_failed_write_leaves_no_temporary_file(run_file, tmp_path, monkeypatch):
    """A full disk: the hidden temporary page is removed, the old page stays."""
    out = tmp_path / "r.html"
    out.write_text("old page")

    def full(fd):  # the page is written, but the disk cannot hold it
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError, match="No space left"):
        report.write([run_file], out)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"] and out.read_text() == "old page"


# --- item 11: a broken file, named or inside a folder --------------------------------------------


def _break(path: Path, raw: bytes) -> Path:
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({schema.METADATA_KEY: raw}), path)
    return path


@pytest.mark.parametrize("raw", [b"null", b"[]", b"[" * 100_000 + b"]" * 100_000, b'{"format_version": "1"}'],
                         ids=["null", "list", "deep", "version-text"])
def test_report_on_corrupt_metadata(run_file, tmp_path, raw):
    bad = _break(results(tmp_path / "t", cases=1), raw)
    bad = bad.rename(bad.with_name("bad.parquet"))
    shutil.copy(run_file, bad.parent / run_file.name)
    out = tmp_path / "r.html"
    one_line_exit_2(bench_cli("report", str(bad), "-o", str(out)), "bad.parquet")
    assert not out.exists()
    proc = bench_cli("report", str(tmp_path / "t"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and line.startswith("bench: skipping") and "bad.parquet" in line
    assert f"over {CASES} cases" in out.read_text()


# --- numbers a figure cannot place ---------------------------------------------------------------


def _with(path: Path, **columns: float) -> Path:
    import pyarrow as pa

    table = pq.read_table(path)
    for name, value in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, pa.array([value] * len(table)))
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(("column", "value"), [("memory_ratio", 1.7976931348623157e308),
                                               ("theory_saved_bytes", 1.7976931348623157e308),
                                               ("theory_memory_ratio", 1.7976931348623157e308),
                                               ("theory_saved_bytes", 5e-324)])
def test_absurd_secondary_numbers_do_not_break_the_figures(tmp_path, column, value):
    """Found by tests/store/test_fuzz_load.py: log axes overflowed ("Axis limits cannot be NaN or Inf")."""
    path = _with(results(tmp_path, cases=3), **{column: value, "saved_bytes": 1e3, "peak_bytes": 2e3})
    out = report.write([path], tmp_path / "r.html")
    assert out.read_text().startswith("<!doctype html>")


def test_a_run_without_flops_but_with_first_calls_renders(tmp_path):
    path = _with(results(tmp_path, cases=3), flops=float("nan"), theory_ratio=float("nan"), first_call_s=0.5)
    assert report.write([path], tmp_path / "r.html").read_text().startswith("<!doctype html>")


# --- values of the table that only the report reads ----------------------------------------------


@pytest.mark.parametrize("params", ["[" * 100_000 + "]" * 100_000, '{"n": 1' + "0" * 400 + "}", "null", "{"],
                         ids=["deep", "huge-integer", "null", "truncated"])
def test_case_params_of_any_text_is_a_dict(params):
    from bench.present.report import data

    assert data.case_params("not-a-grid-id", params) == {}


def test_sizes_that_divide_by_zero_read_as_missing():
    import math

    import pandas as pd

    from bench.present.report import data

    row = Record(run_id=RUN, machine="box", suite="s", case="n=1", params="{}", framework="torch",
                 framework_version="2", mode="eager", device="cpu", phase="gradient", status="ok",
                 median_s=0.001, flops=1e6, theory_ratio=0.0).to_dict()
    df = data.prepare(pd.DataFrame([row]))
    assert math.isnan(df["size"].iloc[0]) and df["flops_per_s"].iloc[0] == pytest.approx(1e9)


def test_a_verdict_with_an_unbounded_interval_renders_without_it():
    """``render`` takes any table, not only what the store read: one case's CI of 1e308 has no
    rounded text (the rounding overflowed: OverflowError)."""
    import pandas as pd

    from bench.present.report import data

    base = dict(run_id=RUN, machine="box", suite="s", case="n=1", params="{}", framework="torch",
                framework_version="2", mode="eager", device="cpu", status="ok")
    rows = [Record(**base, phase="forward", median_s=0.001, ratio=1.0).to_dict(),
            Record(**base, phase="gradient", median_s=0.002, ratio=2.0, ratio_ci_low=1.0,
                   ratio_ci_high=1.7976931348623157e308).to_dict()]
    (verdict,) = data.build(pd.DataFrame(rows)).verdicts
    assert verdict["sentence"].startswith(
        "torch eager · cpu: the gradient costs 2.0× the forward pass (1 case)")
