"""Reading only the columns a command needs (issue #12): ``bench.load(..., columns=[...])`` and
``store.read_runs(..., columns=[...])``, on a local folder, memory:// and S3 (moto's server), over
compacted files and shard folders; the rows are the same as a whole read's, old formats still read.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from s3server import make_bucket, moto_server, set_env
from test_store import RECORDS
from test_store_hostile import record

import bench
from bench import store
from bench.core.errors import UserError
from bench.store import location, schema
from bench.store.location import Location

RUN = "20260104T000000Z-00aa11bb22cc33dd"
FORMAT2 = DATA / "format2"
V2_COLUMNS = ("saved_bytes", "peak_bytes", "memory_ratio", "theory_saved_bytes", "theory_peak_bytes",
              "theory_memory_ratio", "memory_method", "peak_flops_per_s", "l2", "gpu_state", "throttled")
# What the report and compare ask for (see the issue #12 closing note): no raw lists, or only samples.
FEW = ["case", "phase", "median_s", "l2"]
_unique = itertools.count()


@pytest.fixture(scope="module")
def own_s3_endpoint() -> Iterator[str]:
    """A moto server for this module's S3 tests alone, with bucket ``bench-test``.

    The session's server (conftest's ``s3_endpoint``) logs each request into a pipe that nobody
    reads: past about 64 KiB of log it blocks, and every later S3 request hangs. These tests'
    ranged reads would bring the session's server to that point (see the issue #12 report).
    """
    with moto_server() as url:
        make_bucket(url, "bench-test")
        yield url


@pytest.fixture
def own_s3(own_s3_endpoint, monkeypatch) -> Iterator[str]:
    """This module's S3 server, with the environment pointing s3fs at it."""
    set_env(monkeypatch, own_s3_endpoint)
    yield own_s3_endpoint
    fsspec.filesystem("s3").clear_instance_cache()  # the next test's server is another one


@pytest.fixture(params=["local", "memory", "s3"])
def root(request, tmp_path) -> Path | str:
    """A fresh results root: a local folder, memory://, or a prefix in moto's S3 bucket."""
    if request.param == "local":
        return tmp_path / "results"
    if request.param == "memory":
        return f"memory://bench-columns-{next(_unique)}/results"
    request.getfixturevalue("own_s3")
    return f"s3://bench-test/columns-{request.node.name.replace('[', '-').replace(']', '')}-{next(_unique)}"


def put(root: Path | str, records: list, finished: bool = True, **meta) -> Path | str:
    """A run of ``records`` under ``root``, one shard per two rows; compacted when ``finished``."""
    w = store.new_run(root, "box", RUN, {"run_id": RUN, "machine": "box", **meta})
    for i in range(0, len(records), 2):
        w.append(records[i:i + 2])
    if finished:
        w.close()
    return w.path


def same_frames(a, b) -> None:
    """Equal column by column, arrays element by element (NaN equal to NaN)."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for col in a.columns:
        for x, y in zip(a[col], b[col], strict=True):
            if isinstance(x, np.ndarray):
                assert np.array_equal(x, y, equal_nan=True), col
            elif isinstance(x, float) and math.isnan(x):
                assert isinstance(y, float) and math.isnan(y), col
            else:
                assert x == y, col


# --- the same rows, fewer columns -------------------------------------------------------------


@pytest.mark.parametrize("finished", [True, False], ids=["compacted", "shards"])
def test_a_column_list_gives_those_columns_of_the_rows_a_whole_read_gives(root, finished):
    path = put(root, RECORDS, finished=finished)
    assert store.stored_as(path) == ("file" if finished else "shards")
    whole = bench.load(path)
    asked = ["median_s", "case", "samples_s", "gpu_state"]
    part = bench.load(path, columns=asked)
    assert list(part.columns) == asked  # in the order asked, nothing else
    same_frames(part, whole[asked])
    # The folder and the tree read the same way, and so does read_runs.
    same_frames(bench.load(root, columns=asked), part)
    df, meta = store.read_runs([root], columns=asked)
    same_frames(df, part)
    assert meta[0]["run_id"] == RUN


def test_shards_read_with_a_column_list_as_they_read_whole(root):
    """For each case the rows of its newest shard: the same with a column list."""
    w = store.new_run(root, "box", RUN, {"run_id": RUN})
    w.append([record("forward", median_s=0.001)])
    w.append([record("gradient", case="n=2")])
    w.append([record("forward", median_s=0.002, samples_s=(0.002, 0.002, 0.002))])  # n=1 again
    whole = bench.load(w.path)
    assert list(whole.case) == ["n=1", "n=1", "n=2"]
    same_frames(bench.load(w.path, columns=["median_s", "case"]), whole[["median_s", "case"]])


def test_bench_load_returns_every_column_by_default(tmp_path):
    path = put(tmp_path, RECORDS)
    assert inspect.signature(bench.load).parameters["columns"].default is None
    df = bench.load(path)
    assert list(df.columns) == list(store.COLUMNS)
    assert list(df.samples_s.iloc[0]) == [0.00099, 0.001, 0.00101]


def test_a_column_named_twice_is_read_once(tmp_path):
    path = put(tmp_path, RECORDS)
    assert list(bench.load(path, columns=["case", "median_s", "case"]).columns) == ["case", "median_s"]
    assert list(bench.load(path, columns=iter(["phase"])).columns) == ["phase"]  # any iterable


# --- validation does not depend on the columns asked for ---------------------------------------


def hostile_rows() -> list:
    """Two good cases and three ok rows that are not measurements: a negative sample, process rounds
    that do not add up to the samples, a median beyond any time."""
    good = [record(p, case=f"n={i}") for i in range(2) for p in ("forward", "gradient")]
    return [*good,
            record("forward", case="negative-sample", samples_s=(0.001, -0.001, 0.001)),
            record("forward", case="rounds-misfit", process_rounds=(2, 2)),
            record("forward", case="huge-median", median_s=1e9)]


@pytest.mark.parametrize("columns", [None, ["case"], ["case", "median_s"], ["loss_curve"]])
def test_invalid_rows_are_left_out_whatever_the_columns(tmp_path, capsys, columns):
    """Validation reads what it needs (times, ratios, samples, process rounds) even when the caller
    asks for none of them: every command sees the same rows."""
    path = put(tmp_path, hostile_rows())
    df = bench.load(path, columns=columns)
    assert len(df) == 4
    if "case" in df:
        assert sorted(set(df.case)) == ["n=0", "n=1"]
    assert "left out 3 of 7 rows" in capsys.readouterr().err


def test_the_process_rounds_of_a_misfit_non_ok_row_read_empty(tmp_path):
    rows = [*RECORDS[:2], record("step", status="error", reason="boom", process_rounds=(5,))]
    path = put(tmp_path, rows)
    df = bench.load(path, columns=["phase", "process_rounds"])
    assert [list(v) for v in df.process_rounds] == [[], [], []]
    assert df.process_rounds.iloc[0].dtype == np.int64


# --- columns only read as asked --------------------------------------------------------------


def test_only_the_asked_and_the_validated_columns_are_read_from_the_file(tmp_path, monkeypatch):
    path = put(tmp_path, RECORDS)
    asked = []
    real = pq.ParquetFile.read

    def spy(self, *args, columns=None, **kw):
        asked.append(columns)
        return real(self, *args, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read", spy)
    bench.load(path, columns=["case", "gpu_state"])
    assert set(asked[-1]) == {"case", "gpu_state", *schema.VALIDATION_COLUMNS}
    assert "loss_curve" not in asked[-1] and "params" not in asked[-1]
    bench.load(path)
    assert set(asked[-1]) == set(store.COLUMNS)


class CountingFile:
    """A file object that counts the bytes read through it."""

    def __init__(self, fh, counter: list[int]) -> None:
        self._fh, self._counter = fh, counter

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._counter[0] += len(data)
        return data

    def __getattr__(self, name: str):
        return getattr(self._fh, name)


@pytest.mark.parametrize("where", ["memory", "s3"])
def test_a_large_object_is_read_in_ranges_of_the_asked_columns(request, tmp_path, monkeypatch, where):
    """Above WHOLE_OBJECT_BYTES an object is not fetched whole: only its footer and the chunks of
    the columns read. Here the loss curves are most of the bytes and nobody asks for them."""
    if where == "s3":
        request.getfixturevalue("own_s3")
        root = f"s3://bench-test/ranges-{next(_unique)}"
    else:
        root = f"memory://bench-ranges-{next(_unique)}"
    curve = tuple(np.random.default_rng(0).random(20_000))
    path = put(root, [record(p, case=f"n={i}", loss_curve=curve) for i in range(4)
                      for p in ("forward", "gradient")])
    loc = Location.of(path)
    size = loc.fs.size(loc.root)
    assert size > 300_000
    monkeypatch.setattr(location, "WHOLE_OBJECT_BYTES", 1000)
    read = [0]
    real = Location.reader

    def counting(self, p, whole_below=None):
        got = real(self, p, whole_below)
        assert not isinstance(got, pa.Buffer)  # the ranged path
        return CountingFile(got, read)

    monkeypatch.setattr(Location, "reader", counting)
    df = bench.load(path, columns=["case", "median_s"])
    assert len(df) == 8
    assert 0 < read[0] < size / 4, (read[0], size)
    read[0] = 0
    whole = bench.load(path)  # every column, through the same ranged reader
    assert len(whole.loss_curve.iloc[0]) == 20_000
    assert read[0] > size / 2


# --- programmers' mistakes -------------------------------------------------------------------


def test_unknown_column_names_are_a_value_error_naming_them(tmp_path):
    path = put(tmp_path, RECORDS)
    said = r"unknown columns 'median', 'bogus' \(did you mean 'median_s'\?\).*bench\.core\.records\.Record"
    with pytest.raises(ValueError, match=said):
        bench.load(path, columns=["median", "case", "bogus"])
    with pytest.raises(ValueError, match="unknown column 1"):
        store.read_runs([path], columns=["case", 1])
    with pytest.raises(TypeError, match=r"columns=\['median_s'\]"):
        bench.load(path, columns="median_s")


def test_column_names_are_checked_before_anything_is_read(tmp_path):
    """A wrong name is the caller's mistake wherever the results are: not a UserError about them."""
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        bench.load(tmp_path / "nowhere", columns=["nope"])
    with pytest.raises(UserError, match="no results"):
        bench.load(tmp_path / "nowhere", columns=["case"])


# --- older formats and hostile files -----------------------------------------------------------


def version_1(path: Path) -> Path:
    """Rewrite ``path`` as a format-1 file: without the columns format 2 added."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[schema.METADATA_KEY])
    old = table.drop_columns(list(V2_COLUMNS)).replace_schema_metadata(
        {schema.METADATA_KEY: json.dumps({**meta, "format_version": 1}).encode()})
    pq.write_table(old, path)
    return path


def test_a_column_an_old_format_file_lacks_reads_as_its_default(tmp_path):
    """Asking a format-1 file for a column it predates is not an error: the column reads as it
    does in a whole read (NaN, "warm", "")."""
    path = version_1(put(tmp_path, RECORDS))
    assert "peak_bytes" not in pq.read_schema(path).names
    df = bench.load(path, columns=["peak_bytes", "l2", "gpu_state", "median_s"])
    assert list(df.columns) == ["peak_bytes", "l2", "gpu_state", "median_s"]
    assert df.peak_bytes.isna().all() and (df.l2 == "warm").all() and (df.gpu_state == "").all()
    assert list(df.median_s.iloc[:2]) == [0.001, 0.003]
    same_frames(df, bench.load(path)[list(df.columns)])


def test_a_current_file_without_a_column_is_refused_as_damaged_not_read_as_defaults(tmp_path):
    """A column its version has, missing from a file, would read as its default and look measured
    (empty samples, no processes): the file is damaged, whichever columns are asked for."""
    path = put(tmp_path, RECORDS)
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["samples_s", "process_rounds"]), path)
    said = f"is damaged: results format version {schema.FORMAT_VERSION} has the column samples_s"
    for columns in (["case", "samples_s", "process_rounds"], ["case"], None):
        with pytest.raises(UserError, match=said):
            bench.load(path, columns=columns)


def test_the_previous_format_fixture_reads_with_a_column_list():
    whole = bench.load(FORMAT2)
    same_frames(bench.load(FORMAT2, columns=FEW), whole[FEW])


@pytest.mark.parametrize("damage", ["samples as text", "no phase column", "ratio as text"])
def test_a_damaged_file_is_refused_the_same_with_a_column_list(tmp_path, damage):
    """Damage in a column the caller did not ask for but validation reads is still found."""
    path = put(tmp_path, RECORDS)
    table = pq.read_table(path)
    meta = table.schema.metadata
    if damage == "samples as text":
        i = table.schema.get_field_index("samples_s")
        table = table.set_column(i, "samples_s", pa.array([["x"]] * len(table)))
    elif damage == "no phase column":
        table = table.drop_columns(["phase"])
    else:
        i = table.schema.get_field_index("ratio")
        table = table.set_column(i, "ratio", pa.array(["fast"] * len(table)))
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(UserError) as whole:
        bench.load(path)
    with pytest.raises(UserError) as part:
        bench.load(path, columns=["case"])
    assert str(part.value) == str(whole.value)


def test_a_copy_of_a_run_is_read_once_with_a_column_list(tmp_path, capsys):
    """Runs are told apart by their run id even when the caller did not ask for run_id."""
    path = put(tmp_path / "a", RECORDS)
    copy = tmp_path / "b" / "box" / Path(path).name
    copy.parent.mkdir(parents=True)
    shutil.copy(path, copy)
    df = bench.load(tmp_path, columns=["case"])
    assert len(df) == 4
    assert "already read" in capsys.readouterr().err


# --- any subset ------------------------------------------------------------------------------

_VALUES = st.sampled_from([0.001, 0.002, -0.001, 0.0, math.nan, math.inf, 1e9, 1e-13])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.lists(st.sampled_from(store.COLUMNS), max_size=8),
       rows=st.lists(st.tuples(st.sampled_from(["forward", "gradient", "backward"]), _VALUES, _VALUES,
                               st.sampled_from([(), (1,), (2, 1), (1.5, 1.5)])), min_size=1, max_size=6))
def test_any_column_list_reads_those_columns_of_a_whole_read(tmp_path_factory, columns, rows):
    """Whatever columns are asked for, of whatever rows (times out of range, NaN, process rounds
    that do not fit): the frame is the whole read's, those columns, in that order, or both refuse."""
    path = tmp_path_factory.mktemp("any") / "box" / f"{RUN}.parquet"
    records = [record(p, case=f"n={i}", median_s=m, samples_s=(s, 0.001, 0.001), process_rounds=pr)
               for i, (p, m, s, pr) in enumerate(rows)]
    w = store.ResultsWriter(path, {"run_id": RUN})
    w.append(records)
    w.close()
    try:
        whole = bench.load(path)
    except UserError as exc:
        with pytest.raises(UserError) as part:
            bench.load(path, columns=columns)
        assert str(part.value) == str(exc)
        return
    asked = list(dict.fromkeys(columns))
    same_frames(bench.load(path, columns=columns), whole[asked])
