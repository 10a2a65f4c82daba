"""The Parquet results store: round trips, format version, atomic rewrites."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import store
from bench.core.errors import UserError
from bench.core.records import Record
from bench.store import schema
from bench.store import writer as writer_module
from bench.store.reader import load, read_metadata
from bench.store.writer import ResultsWriter


def record(phase: str = "forward", status: str = "ok", **kw) -> Record:
    base = {
        "run_id": "20260101T000000Z-abcd",
        "machine": "box-1",
        "suite": "mlp_regression",
        "case": "batch=4,width=3,depth=2",
        "params": json.dumps({"batch": 4, "depth": 2, "width": 3}, sort_keys=True),
        "framework": "torch",
        "framework_version": "2.9.0",
        "mode": "eager",
        "device": "cpu",
        "phase": phase,
        "status": status,
    }
    base.update(kw)
    return Record(**base)


RECORDS = [
    record("forward", median_s=0.001, iqr_s=1e-5, min_s=0.00095, ci_low_s=0.00098, ci_high_s=0.00102,
           rounds=3, calls_per_block=100, samples_s=(0.00099, 0.001, 0.00101), first_call_s=0.5,
           ratio=1.0, flops=168.0, theory_ratio=18 / 7, equiv_error=1e-7, equiv_tol=1e-4, threads=2),
    record("gradient", median_s=0.003, rounds=3, calls_per_block=33, samples_s=(0.003, 0.0031, 0.0029),
           ratio=3.0, ratio_ci_low=2.9, ratio_ci_high=3.1, allow_tf32=True, timestamp="2026-01-01T00:00:01"),
    record("backward_split", status="skipped", reason="tensorflow records no tape here"),
    record("step", status="error", reason="RuntimeError: boom", framework="jax", mode="jit",
           device="cuda:0", device_name="NVIDIA H100", dtype="float64"),
]

COLUMNS = ["suite", "case", "framework", "mode", "device", "phase", "median_s", "status", "samples_s"]


def same(a, b) -> bool:
    """Equal, with NaN equal to NaN and sequences compared element by element."""
    if isinstance(a, (tuple, list, np.ndarray)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        # Compared as float64: a float32 column would round 0.001 and must not pass.
        assert np.asarray(b).dtype == np.float64, (a, b)
        return (math.isnan(a) and math.isnan(b)) or a == float(b)
    return a == b


def assert_frame_holds(df, records: list[Record]) -> None:
    assert len(df) == len(records)
    for i, rec in enumerate(records):
        row = df.iloc[i]
        for name, value in rec.to_dict().items():
            assert same(value, row[name]), (i, name, value, row[name])


def write(path: Path, records: list[Record], **meta) -> ResultsWriter:
    writer = ResultsWriter(path, {"run_id": path.stem, "machine": path.parent.name, **meta})
    writer.append(records)
    return writer


# --- round trips -----------------------------------------------------------------------------


def test_records_round_trip(tmp_path):
    path = tmp_path / "box-1" / "run-a.parquet"
    write(path, RECORDS)
    df = load(path)
    assert set(COLUMNS) <= set(df.columns)
    assert_frame_holds(df, RECORDS)
    # Spot checks that do not go through the helper.
    assert list(df["phase"]) == ["forward", "gradient", "backward_split", "step"]
    assert list(df["status"]) == ["ok", "ok", "skipped", "error"]
    assert math.isnan(df["median_s"].iloc[2])
    assert list(df["samples_s"].iloc[0]) == [0.00099, 0.001, 0.00101]
    assert len(df["samples_s"].iloc[3]) == 0
    assert bool(df["allow_tf32"].iloc[1]) is True
    assert int(df["calls_per_block"].iloc[0]) == 100


def test_loaded_rows_rebuild_the_records(tmp_path):
    path = tmp_path / "box-1" / "run-a.parquet"
    write(path, RECORDS)
    df = load(path)
    for rec, row in zip(RECORDS, df.to_dict("records"), strict=True):
        row["samples_s"] = list(row["samples_s"])
        back = Record.from_dict(row)
        for name, value in rec.to_dict().items():
            assert same(value, getattr(back, name)), name


def test_metadata_round_trip(tmp_path):
    path = tmp_path / "box-1" / "run-a.parquet"
    meta = {"fingerprint": {"cpu": "Fake CPU", "cores": 2}, "settings": {"threads": 2, "budget_s": 2.0},
            "devices": ["cpu"], "suites": ["mlp_regression"]}
    writer = write(path, RECORDS[:1], **meta)
    got = read_metadata(path)
    assert got["format_version"] == store.FORMAT_VERSION
    for key, value in meta.items():
        assert got[key] == value
    assert got["run_id"] == "run-a" and got["machine"] == "box-1"
    assert got["started"] and got["finished"] is None
    writer.close(interrupted=False, frameworks={"torch@cpu": {"version": "2.9.0"}})
    done = read_metadata(path)
    assert done["finished"] is not None and done["interrupted"] is False
    assert done["frameworks"] == {"torch@cpu": {"version": "2.9.0"}}
    assert done["started"] == got["started"]
    assert len(load(path)) == 1


def test_appends_accumulate_in_one_file(tmp_path):
    path = tmp_path / "box-1" / "run-a.parquet"
    writer = write(path, RECORDS[:2])
    writer.append(RECORDS[2:])
    assert_frame_holds(load(path), RECORDS)
    assert [p.name for p in path.parent.iterdir()] == ["run-a"]  # the shards, until the run ends
    writer.close()
    assert_frame_holds(load(path), RECORDS)
    assert [p.name for p in path.parent.iterdir()] == ["run-a.parquet"]


def test_load_a_machine_folder_and_a_tree(tmp_path):
    write(tmp_path / "box-1" / "run-a.parquet", RECORDS[:2])
    write(tmp_path / "box-1" / "run-b.parquet", [record("forward", run_id="b", median_s=0.001)])
    write(tmp_path / "box-2" / "run-c.parquet",
          [record("step", machine="box-2", run_id="c", median_s=0.002)] * 3)
    folder = load(tmp_path / "box-1")
    assert len(folder) == 3
    assert sorted(folder["run_id"]) == sorted([RECORDS[0].run_id, RECORDS[1].run_id, "b"])
    tree = load(tmp_path)
    assert len(tree) == 6
    assert sorted(set(tree["machine"])) == ["box-1", "box-2"]
    assert list(tree.index) == list(range(6))  # concatenated with a fresh index
    assert load(str(tmp_path)).shape == tree.shape


def test_load_of_nothing_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no results"):
        load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no results files"):
        load(tmp_path / "empty")


# --- refusing what is not a results file -----------------------------------------------------


@pytest.mark.parametrize(("version", "hint"), [(store.FORMAT_VERSION + 1, "upgrade bench"), (0, "re-run")])
def test_unknown_format_version_is_refused(tmp_path, monkeypatch, version, hint):
    path = tmp_path / "box-1" / "run-a.parquet"
    monkeypatch.setattr(writer_module, "FORMAT_VERSION", version)
    writer = ResultsWriter(path, {})
    monkeypatch.undo()
    writer.append(RECORDS[:1])
    with pytest.raises(UserError, match=f"version {version}") as info:
        read_metadata(path)
    assert hint in str(info.value)
    with pytest.raises(UserError, match=f"version {version}"):
        load(path)
    with pytest.raises(UserError, match=f"version {version}"):
        load(tmp_path)


def test_version_rewritten_in_the_schema_metadata_is_refused(tmp_path):
    path = tmp_path / "run-a.parquet"
    write(path, RECORDS[:1]).close()
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[schema.METADATA_KEY])
    meta["format_version"] = 99
    pq.write_table(table.replace_schema_metadata({schema.METADATA_KEY: json.dumps(meta).encode()}), path)
    with pytest.raises(UserError, match="version 99"):
        load(path)


def test_non_parquet_file_is_refused(tmp_path):
    path = tmp_path / "box-1" / "notes.parquet"
    path.parent.mkdir()
    path.write_text("not parquet at all\n")
    with pytest.raises(UserError, match="not a readable Parquet file"):
        load(path)
    with pytest.raises(UserError, match="not a readable Parquet file"):
        read_metadata(path)


def test_parquet_without_bench_metadata_is_refused(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), path)
    with pytest.raises(UserError, match="not a bench results file"):
        load(path)


# --- when and how the file is written --------------------------------------------------------


def test_hidden_files_in_a_folder_are_not_loaded(tmp_path):
    write(tmp_path / "box-1" / "run-a.parquet", RECORDS[:2])
    (tmp_path / "box-1" / ".run-b.parquet").write_bytes(b"PAR1 half a file")
    assert_frame_holds(load(tmp_path), RECORDS[:2])


def test_no_file_until_a_record_arrives(tmp_path):
    path = tmp_path / "box-1" / "run-a.parquet"
    writer = ResultsWriter(path, {"run_id": "run-a"})
    writer.flush()
    writer.append([])
    writer.close(interrupted=True)
    assert not writer.written
    assert not path.exists() and not path.parent.exists()
    writer.append(RECORDS[:1])
    assert writer.written
    assert_frame_holds(load(path), RECORDS[:1])


def test_a_failed_shard_write_leaves_the_shards_written_before(tmp_path, monkeypatch):
    path = tmp_path / "box-1" / "run-a.parquet"
    writer = write(path, RECORDS[:2])
    real = pq.write_table

    def broken_write_table(table, where, *args, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write_table)
    with pytest.raises(OSError, match="disk full"):
        writer.append(RECORDS[2:])
    monkeypatch.setattr(pq, "write_table", real)

    # Nothing half-written reached the results: only the first shard is there.
    shards = path.with_suffix("")
    assert [p.name for p in path.parent.iterdir()] == ["run-a"]
    assert [p.name for p in shards.iterdir()] == ["part-000001.parquet"]
    assert_frame_holds(load(path), RECORDS[:2])
    assert_frame_holds(load(path.parent), RECORDS[:2])
    assert_frame_holds(load(tmp_path), RECORDS[:2])
    # The next successful write has everything, the failed batch included.
    writer.append([])
    assert_frame_holds(load(path.parent), RECORDS)


def test_a_broken_file_in_a_folder_is_skipped_and_the_rest_load(tmp_path, capsys):
    write(tmp_path / "box-1" / "run-a.parquet", RECORDS[:2])
    (tmp_path / "box-2").mkdir()
    (tmp_path / "box-2" / "run-b.parquet").write_bytes(b"PAR1 copied badly")
    assert_frame_holds(load(tmp_path), RECORDS[:2])
    assert "run-b.parquet" in capsys.readouterr().err
    # Named explicitly, the broken file is an error.
    with pytest.raises(UserError, match="not a readable Parquet file"):
        load(tmp_path / "box-2" / "run-b.parquet")


# --- older format versions -------------------------------------------------------------------

# Columns that version 2 added; a version-1 file has none of them.
V2_COLUMNS = ("saved_bytes", "peak_bytes", "memory_ratio", "theory_saved_bytes", "theory_peak_bytes",
              "theory_memory_ratio", "memory_method", "peak_flops_per_s", "l2", "gpu_state", "throttled")


def test_version_1_files_read_with_the_new_columns_empty(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "box-1" / "old.parquet"
    write(path, RECORDS).close()
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"bench"])
    old = table.drop_columns(list(V2_COLUMNS)).replace_schema_metadata(
        {b"bench": json.dumps({**meta, "format_version": 1}).encode()})
    pq.write_table(old, path)
    assert not set(V2_COLUMNS) & set(pq.read_schema(path).names)

    df = load(path)
    assert set(V2_COLUMNS) <= set(df.columns)
    assert df.saved_bytes.isna().all() and df.peak_flops_per_s.isna().all()
    assert (df.l2 == "warm").all() and (df.throttled == "").all()
    assert list(df.median_s.iloc[:2]) == [0.001, 0.003]  # the old columns are intact
