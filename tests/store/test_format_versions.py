"""The results format's versions: every column belongs to one, every older file upgrades step by step.

The files read here are one of every earlier version: tests/data/format2 (a complete version-2
run), the H200 runs of 2026-11-26 (version 2, written before the columns version 3 requires),
and a synthetic version 1 (a run rewritten without the columns version 2 added).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DATA
from test_store import RECORDS, record

import bench
from bench.core.errors import UserError
from bench.core.records import Record
from bench.store import schema
from bench.store.writer import ResultsWriter

FORMAT2 = DATA / "format2"
H200 = sorted((DATA / "h200" / "gpu").glob("*.parquet"))


def rewrite(path: Path, version: int, drop: tuple[str, ...] = (), params: str | None = None) -> Path:
    """``path`` rewritten as a file of ``version`` without the columns ``drop`` (and with every row's
    params set to ``params``, when given)."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[schema.METADATA_KEY])
    table = table.drop_columns(list(drop))
    if params is not None:
        at = table.column_names.index("params")
        table = table.set_column(at, "params", pa.array([params] * table.num_rows, pa.string()))
    pq.write_table(table.replace_schema_metadata(
        {schema.METADATA_KEY: json.dumps({**meta, "format_version": version}).encode()}), path)
    return path


def written(tmp_path: Path, rows=RECORDS) -> Path:
    path = tmp_path / "box-1" / "20260101T000000Z-abcd.parquet"
    w = ResultsWriter(path, {"run_id": "20260101T000000Z-abcd", "machine": "box-1"})
    w.append(rows)
    w.close()
    return path


def test_every_column_is_documented_and_belongs_to_a_version():
    assert set(schema.COLUMN_DOCS) == set(schema.COLUMNS)
    assert max(schema.VERSIONS) == schema.FORMAT_VERSION
    # The current version requires every column: a new Record field without a new version fails here.
    assert set(schema.VERSIONS[schema.FORMAT_VERSION].required) == {f.name for f in fields(Record)}
    for older, newer in zip(sorted(schema.VERSIONS)[:-1], sorted(schema.VERSIONS)[1:], strict=True):
        assert set(schema.VERSIONS[older].required) < set(schema.VERSIONS[newer].required)
        assert set(schema.VERSIONS[older].optional) <= set(schema.VERSIONS[newer].required)
    assert sorted(schema._UPGRADES) == sorted(schema.VERSIONS)[:-1]


def test_the_writer_writes_the_current_version(tmp_path):
    meta = bench.store.read_metadata(written(tmp_path))
    assert meta["format_version"] == schema.FORMAT_VERSION == 3


@pytest.mark.parametrize("version", sorted(schema.VERSIONS)[:-1])
def test_each_upgrade_step_gives_the_current_columns(tmp_path, version):
    """A table holding only what ``version`` requires leaves ``upgrade`` with every current column."""
    table = pq.read_table(written(tmp_path)).select(list(schema.VERSIONS[version].required))
    upgraded = schema.upgrade(table, version)
    assert set(upgraded.column_names) == set(schema.COLUMNS)
    assert upgraded.num_rows == table.num_rows


def test_the_version_2_fixture_reads_as_it_always_did():
    df = bench.load(FORMAT2)
    assert len(df) == 4 and (df.status == "ok").any()
    assert bench.store.read_metadata(next(FORMAT2.rglob("*.parquet")))["format_version"] == 2
    assert all(json.loads(p) for p in df.params)  # measured rows hold their parameters


@pytest.mark.parametrize("path", H200, ids=[p.stem for p in H200])
def test_the_h200_runs_read_with_the_columns_they_predate_empty(path):
    assert "quality" not in pq.read_schema(path).names  # written before version 3's columns
    df = bench.load(path)
    assert len(df) == pq.ParquetFile(path).metadata.num_rows
    assert (df.quality == "").all() and df.interference.isna().all() and df.precision_target.isna().all()
    assert all(len(p) == 0 for p in df.process_rounds) and (df.recalibrations == 0).all()
    assert (df[df.status == "ok"].median_s > 0).all()  # the measured columns are intact


def test_a_synthetic_version_1_file_reads_with_version_2_and_3_columns_empty(tmp_path):
    v1_lacks = tuple(c for c in schema.COLUMNS if c not in schema.VERSIONS[1].required)
    path = rewrite(written(tmp_path), 1, drop=v1_lacks)
    assert set(pq.read_schema(path).names) == set(schema.VERSIONS[1].required)
    df = bench.load(path)
    assert set(df.columns) == set(schema.COLUMNS)
    assert df.peak_bytes.isna().all() and (df.l2 == "warm").all() and (df.quality == "").all()
    assert list(df.median_s.iloc[:2]) == [0.001, 0.003]


def test_imported_rows_of_version_2_get_the_parameters_their_case_id_names(tmp_path):
    """Before version 3 an imported row's params held {"case": id}; now they hold the parameters."""
    rows = [record("forward", median_s=1e-3, samples_s=(1e-3,) * 3, rounds=3, ratio=1.0)]
    case = rows[0].case
    path = rewrite(written(tmp_path, rows), 2, params=json.dumps({"case": case}))
    params = json.loads(bench.load(path).params.iloc[0])
    assert params == {"batch": 4, "width": 3, "depth": 2}
    # A case id of another tool's form names no parameters: {}.
    other = tmp_path / "other"
    rows = [record("forward", case="test_mlp[big]", median_s=1e-3, samples_s=(1e-3,) * 3, rounds=3,
                   ratio=1.0)]
    path = rewrite(written(other, rows), 2, params=json.dumps({"case": "test_mlp[big]"}))
    assert json.loads(bench.load(path).params.iloc[0]) == {}


def test_a_version_3_file_keeps_its_params_as_written(tmp_path):
    path = rewrite(written(tmp_path), 3, params=json.dumps({"case": RECORDS[0].case}))
    assert set(bench.load(path).params) == {json.dumps({"case": RECORDS[0].case})}


@pytest.mark.parametrize(("version", "column"),
                         [(3, "quality"), (3, "process_rounds"), (2, "l2"), (1, "equiv_tol")])
def test_a_file_missing_a_column_its_version_has_is_refused_as_damaged(tmp_path, version, column):
    others = tuple(c for c in schema.COLUMNS if c not in schema.VERSIONS[version].required)
    path = rewrite(written(tmp_path), version, drop=(*others, column))
    with pytest.raises(UserError, match=f"damaged: results format version {version} has the column {column}"):
        bench.load(path)


@pytest.mark.parametrize("column", ["quality", "process_rounds"])
def test_a_version_2_file_may_lack_what_came_later_in_version_2(tmp_path, column):
    path = rewrite(written(tmp_path), 2, drop=(column,))
    df = bench.load(path)
    assert len(df) == len(RECORDS)
    empty = (df[column] == "").all() if column == "quality" else all(len(v) == 0 for v in df[column])
    assert empty and list(df.median_s.iloc[:2]) == [0.001, 0.003]


def test_the_schema_reference_lists_every_column_and_version():
    text = schema.markdown_reference()
    assert all(f"| `{c}` |" in text for c in schema.COLUMNS)
    assert all(f"| {v} | {schema.VERSIONS[v].date} |" in text for v in schema.VERSIONS)
