"""Results files that are damaged, foreign, hand-edited or duplicated (issue #9 items 3, 5, 11, 15).

Each test is a repro from the issue: a file a user could have, and what bench must do with it: read
it, leave out what is not a measurement with one warning, or refuse it with one line (skip it inside a
folder). Never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import store
from bench.core.errors import UserError
from bench.core.records import Record
from bench.store import schema
from bench.store.reader import load, read_metadata, read_runs
from bench.store.writer import ResultsWriter

RUN = "20260101T000000Z-abcd"


def record(phase: str = "forward", status: str = "ok", case: str = "n=1", **kw) -> Record:
    base = dict(run_id=RUN, machine="box", suite="s", case=case, params='{"n": 1}', framework="torch",
                framework_version="2", mode="eager", device="cpu", phase=phase, status=status)
    if status == "ok":
        t = 0.002 if phase == "gradient" else 0.001
        base.update(median_s=t, min_s=t * 0.9, ci_low_s=t * 0.95, ci_high_s=t * 1.05, rounds=3,
                    samples_s=(t * 0.99, t, t * 1.01), ratio=t / 0.001, ratio_ci_low=t / 0.001 - 0.1,
                    ratio_ci_high=t / 0.001 + 0.1)
    base.update(kw)
    return Record(**base)


def good_records(cases: int = 2) -> list[Record]:
    return [record(phase, case=f"n={i}") for i in range(cases) for phase in ("forward", "gradient")]


def write(path: Path, records: list[Record] | None = None, run_id: str = RUN) -> Path:
    w = ResultsWriter(path, {"run_id": run_id, "machine": path.parent.name})
    w.append(records if records is not None else good_records())
    w.close()
    return path


def rewrite(path: Path, table: pa.Table | None = None, meta: bytes | None = None) -> Path:
    """Write ``path`` again with another table and/or other raw bench metadata."""
    old = pq.read_table(path)
    table = old if table is None else table
    raw = old.schema.metadata[schema.METADATA_KEY] if meta is None else meta
    pq.write_table(table.replace_schema_metadata({schema.METADATA_KEY: raw}), path)
    return path


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- item 3: each file and each run read once --------------------------------------------------


def test_one_file_named_twice_is_read_once(tmp_path, monkeypatch):
    path = write(tmp_path / "box" / f"{RUN}.parquet")
    monkeypatch.chdir(tmp_path)
    relative = Path("box") / path.name
    df, metas = read_runs([relative, path.resolve(), tmp_path / "box" / ".." / "box" / path.name])
    assert len(df) == 4 and len(metas) == 1
    link = tmp_path / "link.parquet"
    link.symlink_to(path)
    df, metas = read_runs([path, link, tmp_path / "box"])
    assert len(df) == 4 and len(metas) == 1


def test_resolve_runs_names_each_file_once(tmp_path, monkeypatch):
    path = write(tmp_path / "box" / f"{RUN}.parquet")
    monkeypatch.chdir(tmp_path)
    assert len(store.resolve_runs([str(path), f"box/{path.name}", RUN], tmp_path)) == 1


def test_a_copy_of_a_run_is_read_once_with_a_message(tmp_path, capsys):
    path = write(tmp_path / "box" / f"{RUN}.parquet")
    (tmp_path / "backup").mkdir()
    shutil.copy(path, tmp_path / "backup" / "copy.parquet")
    df = load(tmp_path)
    assert len(df) == 4
    line = one_line(capsys.readouterr().err)
    assert "copy.parquet" in line and RUN in line and "already read" in line


# --- item 5: values that are not times -----------------------------------------------------------


BAD_TIMES = [-0.001, 0.0, math.nan, math.inf, -math.inf, 1e300, 1e-300]


@pytest.mark.parametrize("value", BAD_TIMES, ids=str)
def test_an_ok_row_whose_median_is_not_a_time_is_left_out_with_one_warning(tmp_path, capsys, value):
    rows = good_records()
    rows[1] = record("gradient", median_s=value)
    path = write(tmp_path / "box" / f"{RUN}.parquet", rows)
    df = load(path)
    assert len(df) == 3 and list(df["phase"]) == ["forward", "forward", "gradient"]
    ok = df[df["status"] == "ok"]
    assert np.isfinite(ok["median_s"]).all() and (ok["median_s"] > 0).all()
    line = one_line(capsys.readouterr().err)
    assert str(path) in line and "left out 1 of 4 rows" in line


@pytest.mark.parametrize("column", ["samples_s", "min_s", "ci_low_s", "ratio", "ratio_ci_high"])
@pytest.mark.parametrize("value", [-1.0, 0.0, math.inf])
def test_other_times_and_ratios_are_checked_too(tmp_path, capsys, column, value):
    rows = good_records()
    rows[1] = record("gradient", **{column: (0.002, value) if column == "samples_s" else value})
    df = load(write(tmp_path / "box" / f"{RUN}.parquet", rows))
    assert len(df) == 3
    assert "left out 1 of 4 rows" in one_line(capsys.readouterr().err)


def test_every_row_invalid_is_an_error_named_and_a_skip_in_a_folder(tmp_path, capsys):
    bad = write(tmp_path / "box" / "bad.parquet", [record(median_s=-1.0), record("gradient", median_s=0.0)],
                run_id="bad")
    with pytest.raises(UserError, match="no valid row"):
        load(bad)
    write(tmp_path / "box" / f"{RUN}.parquet")
    assert len(load(tmp_path)) == 4
    line = one_line(capsys.readouterr().err)
    assert "skipping" in line and "bad.parquet" in line


def test_a_derived_backward_time_may_be_negative(tmp_path, capsys):
    """backward = gradient - forward per round: noise can make it <= 0 (bench.measure.worker says so)."""
    rows = [*good_records(1), record("backward", median_s=-1e-6, samples_s=(-1e-6, 0.0, 1e-6), ratio=-0.01,
                                     ratio_ci_low=-0.02, ratio_ci_high=0.0, min_s=-1e-6, ci_low_s=-2e-6)]
    df = load(write(tmp_path / "box" / f"{RUN}.parquet", rows))
    assert list(df["phase"]) == ["forward", "gradient", "backward"]
    assert capsys.readouterr().err == ""


def test_rows_that_are_not_measured_keep_their_nan_times(tmp_path, capsys):
    rows = [*good_records(1), record("step", status="error", reason="boom")]
    df = load(write(tmp_path / "box" / f"{RUN}.parquet", rows))
    assert len(df) == 3 and math.isnan(df["median_s"].iloc[2])
    assert capsys.readouterr().err == ""


def test_non_finite_secondary_values_read_as_missing(tmp_path):
    rows = good_records(1)
    rows[0] = record(flops=math.inf, memory_ratio=-math.inf, first_call_s=math.nan)
    df = load(write(tmp_path / "box" / f"{RUN}.parquet", rows))
    assert len(df) == 2 and math.isnan(df["flops"].iloc[0]) and math.isnan(df["memory_ratio"].iloc[0])


def test_process_rounds_that_do_not_split_the_samples_leave_the_row_out(tmp_path, capsys):
    rows = good_records(1)
    rows[1] = record("gradient", process_rounds=(2, 2))  # 3 samples
    df = load(write(tmp_path / "box" / f"{RUN}.parquet", rows))
    assert list(df["phase"]) == ["forward"]
    assert "left out 1 of 2 rows" in one_line(capsys.readouterr().err)


def test_unknown_phase_or_status_is_left_out(tmp_path, capsys):
    path = write(tmp_path / "box" / f"{RUN}.parquet")
    table = pq.read_table(path)
    phases = table.column("phase").to_pylist()
    phases[0] = "sideways"
    status = table.column("status").to_pylist()
    status[1] = None
    table = table.set_column(table.schema.get_field_index("phase"), "phase", pa.array(phases))
    table = table.set_column(table.schema.get_field_index("status"), "status", pa.array(status, pa.string()))
    df = load(rewrite(path, table))
    assert len(df) == 2
    assert "left out 2 of 4 rows" in one_line(capsys.readouterr().err)


# --- item 11: corrupt or foreign metadata -------------------------------------------------------


BAD_METADATA = {
    "null": b"null",
    "list": b"[1, 2]",
    "string": b'"bench"',
    "number": b"2",
    "deep-100000": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"format_version": 2, "settings": ' + b'{"a": ' * 200 + b"1" + b"}" * 200 + b"}",
    "not-utf8": b"\xff\xfe{",
    "truncated": b'{"format_version": 2, "run_id": ',
    "version-string": b'{"format_version": "1", "run_id": "x"}',
    "version-bool": b'{"format_version": true}',
    "version-float": b'{"format_version": 2.0}',
    "version-missing": b'{"run_id": "x"}',
    "settings-list": b'{"format_version": 2, "settings": [1, 2]}',
    "fingerprint-string": b'{"format_version": 2, "fingerprint": "cpu"}',
    "run-id-number": b'{"format_version": 2, "run_id": 7}',
    "frameworks-list": b'{"format_version": 2, "frameworks": ["torch"]}',
}


@pytest.mark.parametrize("raw", BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_corrupt_metadata_is_one_user_error(tmp_path, raw):
    path = rewrite(write(tmp_path / "box" / f"{RUN}.parquet"), meta=raw)
    with pytest.raises(UserError) as info:
        read_metadata(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UserError):
        load(path)


@pytest.mark.parametrize("raw", BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_corrupt_metadata_in_a_folder_is_skipped(tmp_path, capsys, raw):
    write(tmp_path / "box" / f"{RUN}.parquet")
    rewrite(write(tmp_path / "box" / "zz-bad.parquet", run_id="other"), meta=raw)
    assert len(load(tmp_path)) == 4
    line = one_line(capsys.readouterr().err)
    assert line.startswith("bench: skipping ") and "zz-bad.parquet" in line


def test_a_version_given_as_text_is_not_called_the_version_bench_reads(tmp_path):
    path = rewrite(write(tmp_path / "r.parquet"), meta=b'{"format_version": "1"}')
    with pytest.raises(UserError) as info:
        load(path)
    assert "this bench reads version 1" not in str(info.value)
    assert '"1"' in str(info.value) and "not a whole number" in str(info.value)


def test_null_containers_in_metadata_read_as_absent(tmp_path):
    path = write(tmp_path / "r.parquet")
    meta = json.loads(pq.read_schema(path).metadata[schema.METADATA_KEY])
    meta.update(settings=None, fingerprint=None, devices=None)
    meta = read_metadata(rewrite(path, meta=json.dumps(meta).encode()))
    assert "settings" not in meta and "fingerprint" not in meta and meta["finished"]


# --- item 11: foreign or damaged columns --------------------------------------------------------


def _table(path: Path) -> pa.Table:
    return pq.read_table(path)


def test_a_foreign_table_with_bench_metadata_is_refused(tmp_path):
    path = write(tmp_path / "r.parquet")
    rewrite(path, pa.table({"x": [1, 2, 3]}))
    with pytest.raises(UserError, match="not a bench results table"):
        load(path)


def test_a_missing_run_id_column_is_refused(tmp_path):
    path = write(tmp_path / "r.parquet")
    rewrite(path, _table(path).drop_columns(["run_id"]))
    with pytest.raises(UserError, match="run_id"):
        load(path)


def test_foreign_columns_are_dropped(tmp_path):
    path = write(tmp_path / "r.parquet")
    t = _table(path)
    rewrite(path, t.append_column("mine", pa.array(["x"] * len(t))))
    df = load(path)
    assert "mine" not in df and len(df) == 4


def test_ratio_stored_as_text(tmp_path):
    path = write(tmp_path / "r.parquet")
    t = _table(path)
    at = t.schema.get_field_index("ratio")
    rewrite(path, t.set_column(at, "ratio", pa.array(["1.0", "2.0", "1.0", "2.0"])))
    assert list(load(path)["ratio"]) == [1.0, 2.0, 1.0, 2.0]  # text that is a number reads as it
    rewrite(path, t.set_column(at, "ratio", pa.array(["fast"] * 4)))
    with pytest.raises(UserError, match="column ratio holds string"):
        load(path)


def test_a_whole_number_column_with_fractions_is_refused(tmp_path):
    path = write(tmp_path / "r.parquet")
    t = _table(path)
    rewrite(path, t.set_column(t.schema.get_field_index("rounds"), "rounds", pa.array([1.5] * 4)))
    with pytest.raises(UserError, match="column rounds"):
        load(path)


@pytest.mark.parametrize("samples", [None, []], ids=["null", "empty"])
def test_null_or_empty_samples_read_as_none(tmp_path, samples):
    path = write(tmp_path / "r.parquet")
    t = _table(path)
    at = t.schema.get_field_index("samples_s")
    rewrite(path, t.set_column(at, "samples_s", pa.array([samples] * 4, pa.list_(pa.float64()))))
    df = load(path)
    assert len(df) == 4 and all(len(s) == 0 for s in df["samples_s"])
    assert all(len(s) == 0 for s in df["process_rounds"])


def test_nulls_in_columns_read_as_the_defaults(tmp_path):
    path = write(tmp_path / "r.parquet")
    t = _table(path)
    for name in ("rounds", "allow_tf32", "reason", "l2"):
        at = t.schema.get_field_index(name)
        t = t.set_column(at, name, pa.nulls(len(t), t.schema.field(name).type))
    df = load(rewrite(path, t))
    assert list(df["rounds"]) == [0] * 4 and not df["allow_tf32"].any()
    assert list(df["reason"]) == [""] * 4 and list(df["l2"]) == ["warm"] * 4


def test_all_zero_times_are_not_measurements(tmp_path):
    rows = [record(p, median_s=0.0, samples_s=(0.0, 0.0), min_s=0.0, ratio=math.nan, ratio_ci_low=math.nan,
                   ratio_ci_high=math.nan) for p in ("forward", "gradient")]
    with pytest.raises(UserError, match="no valid row"):
        load(write(tmp_path / "r.parquet", rows))


def test_a_table_without_rows_is_refused(tmp_path):
    path = write(tmp_path / "r.parquet")
    rewrite(path, _table(path).slice(0, 0))
    with pytest.raises(UserError, match="holds no rows"):
        load(path)


# --- item 15: what a killed or failed write leaves, FIFOs, never overwriting a run ---------------


def test_leftover_temporary_files_are_ignored(tmp_path, capsys):
    path = write(tmp_path / "box" / f"{RUN}.parquet")
    (path.parent / f".{path.name}.tmp").write_bytes(b"PAR1 half a file")  # SIGKILL mid-write
    (path.parent / f".{path.name}.1a2b3c4d.tmp").write_bytes(b"PAR1 half")
    (tmp_path / ".r.html.tmp").write_text("<!doctype html>")  # a report on a full disk
    (tmp_path / ".trash").mkdir()
    shutil.copy(path, tmp_path / ".trash" / "old.parquet")
    assert store.files(tmp_path) == [path]
    assert len(load(tmp_path)) == 4
    assert capsys.readouterr().err == ""


@pytest.mark.timeout(30)
def test_a_fifo_in_a_results_tree_is_not_opened(tmp_path, capsys):
    path = write(tmp_path / "box" / f"{RUN}.parquet")
    fifo = tmp_path / "box" / "x.parquet"
    os.mkfifo(fifo)
    assert store.files(tmp_path) == [path]
    assert len(load(tmp_path)) == 4 and len(read_runs([tmp_path / "box"])[0]) == 4
    with pytest.raises(UserError, match="not a regular file"):
        load(fifo)
    with pytest.raises(UserError, match="not a regular file"):
        store.resolve_runs([str(fifo)], tmp_path)


def test_the_first_write_never_replaces_another_runs_file(tmp_path):
    path = write(tmp_path / "box" / f"{RUN}.parquet")
    before = path.read_bytes()
    other = ResultsWriter(path, {"run_id": RUN, "machine": "box"})
    with pytest.raises(store.RunExistsError) as info:
        other.append(good_records(1))
    assert isinstance(info.value, FileExistsError) and str(path) in str(info.value)
    assert path.read_bytes() == before and not other.written
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left


def test_the_writer_rewrites_its_own_file(tmp_path):
    path = tmp_path / "box" / f"{RUN}.parquet"
    w = ResultsWriter(path, {"run_id": RUN, "machine": "box"})
    assert not w.written
    w.append(good_records(1))
    assert w.written
    w.append([record("step", case="n=0")])
    w.close()
    assert len(load(path)) == 3 and sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_the_writer_without_hard_links_still_creates_exclusively(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "box" / f"{RUN}.parquet"
    w = ResultsWriter(path, {"run_id": RUN})
    w.append(good_records(1))
    assert len(load(path)) == 2
    with pytest.raises(store.RunExistsError):
        ResultsWriter(path, {"run_id": RUN}).append(good_records(1))
    assert len(load(path)) == 2


def test_every_write_uses_its_own_hidden_temporary_file_beside_the_target(tmp_path, monkeypatch):
    """Two writers of one folder (two runs' compactions, two reports) never share a temporary file."""
    from bench.store import location

    moved = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (moved.append(Path(src)), real(src, dst)))
    path = tmp_path / f"{RUN}.parquet"
    location.write_file(path, b"one")
    location.write_text(path, "two")
    assert len(moved) == 2 and moved[0] != moved[1]
    assert all(m.name.startswith(f".{path.name}.") and m.parent == path.parent for m in moved)
    assert path.read_text() == "two" and sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("value", [1.7976931348623157e308, -1e31, 5e-324, -1e-31])
def test_absurd_secondary_numbers_read_as_missing(tmp_path, capsys, value):
    rows = good_records(1)
    rows[0] = record(flops=value, saved_bytes=value, theory_memory_ratio=value, peak_bytes=0.0)
    df = load(write(tmp_path / "r.parquet", rows))
    assert len(df) == 2 and df[["flops", "saved_bytes", "theory_memory_ratio"]].iloc[0].isna().all()
    assert df["peak_bytes"].iloc[0] == 0.0  # zero is a number
    assert capsys.readouterr().err == ""  # not a measurement of time: the row stays, no warning


def test_a_wide_interval_may_reach_far_below_the_median(tmp_path, capsys):
    """CIs are symmetric on a log scale (bench.stats.intervals): positive however wide, but not bounded
    below."""
    rows = good_records(1)
    rows[1] = record("gradient", ci_low_s=1e-15, ratio_ci_low=1e-9, min_s=1e-13)
    assert len(load(write(tmp_path / "r.parquet", rows))) == 2
    assert capsys.readouterr().err == ""
