"""The store's layout: a shard per case while a run goes on, one compacted file when it ends
(on a local folder and on memory://), and today's files loading unchanged."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from conftest import DATA
from factories import process
from hypothesis import given, settings
from hypothesis import strategies as st
from test_store import RECORDS, assert_frame_holds
from test_store_hostile import record

from bench import store
from bench.core.errors import UserError
from bench.present import report
from bench.store.layout import resolve_runs
from bench.store.location import Location
from bench.store.reader import load, read_metadata, read_runs

RUN = "20260102T000000Z-0123456789abcdef"
FORMAT2 = DATA / "format2"
_unique = itertools.count()


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path) -> Path | str:
    if request.param == "local":
        return tmp_path / "results"
    return f"memory://bench-shards-{next(_unique)}/results"


def case(n: int, **kw) -> list:
    return [record(phase, case=f"n={n}", **kw) for phase in ("forward", "gradient")]


def names(root: Path | str, *parts: str) -> list[str]:
    """The entries of a folder under ``root``, sorted by name."""
    loc = Location.of(root)
    folder = loc.path(*parts)
    if not loc.is_dir(folder):
        return []
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in loc.fs.ls(folder, detail=False))


def test_a_shard_per_case_then_one_compacted_file(root):
    w = store.new_run(root, "box", RUN, {"run_id": RUN, "machine": "box"})
    assert w.path == store.run_path(root, "box", RUN) and str(w.path).endswith(f"box/{RUN}.parquet")
    w.append(case(0))
    w.append(case(1))
    assert names(root, "box") == [RUN]
    assert names(root, "box", RUN) == ["part-000001.parquet", "part-000002.parquet"]
    # Readers see the run, by its name, before it ends: finished is null.
    assert store.files(root) == [w.path]
    assert len(load(root)) == 4 and len(load(w.path)) == 4
    assert read_metadata(w.path)["finished"] is None
    assert resolve_runs([RUN], root) == [w.path] and resolve_runs([], root) == [w.path]
    w.close(interrupted=False)
    assert names(root, "box") == [f"{RUN}.parquet"]  # the shards and their folder are gone
    df = load(root)
    assert len(df) == 4 and set(df.case) == {"n=0", "n=1"}
    meta = read_metadata(w.path)
    assert meta["finished"] is not None and meta["interrupted"] is False
    assert resolve_runs([RUN[:10]], root) == [w.path]


def test_a_case_appended_again_keeps_its_earlier_rows(root):
    """Readers take each case from the last shard that has it: that shard holds all its rows."""
    w = store.new_run(root, "box", RUN, {"run_id": RUN})
    w.append(case(0)[:1])
    w.append(case(0)[1:])
    assert sorted(load(w.path).phase) == ["forward", "gradient"]


def test_a_merged_case_is_read_from_its_newest_shard(root):
    """A later process of --processes N writes the case's merged rows as a new shard."""
    w = store.new_run(root, "box", RUN, {"run_id": RUN})
    w.append(process([1.0] * 3, [2.0] * 3, case="c"))
    w.append(process([1.0] * 3, [2.0] * 3, case="d"))
    w.merge(process([1.0] * 3, [2.4] * 3, case="c"))
    assert names(root, "box", RUN)[-1] == "part-000003.parquet"
    df = load(w.path)
    assert len(df) == 10
    c = df[(df.case == "c") & (df.phase == "gradient")].iloc[0]
    d = df[(df.case == "d") & (df.phase == "gradient")].iloc[0]
    assert list(c.process_rounds) == [3, 3] and c.rounds == 6  # the second process pooled in
    assert list(d.process_rounds) == [] and d.rounds == 3  # the other case, from its own shard
    w.close()
    again = load(w.path)
    assert list(again.rounds) == list(df.rounds)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=3), min_size=1, max_size=6))
def test_shards_read_back_as_the_writers_rows(batches):
    """Whatever order cases arrive in, the shards read as exactly the rows the writer holds."""
    root = f"memory://bench-prop-{next(_unique)}"
    w = store.new_run(root, "box", RUN, {"run_id": RUN})
    for batch in batches:
        w.append([record("forward", case=f"n={n}") for n in batch])
    key = ["case", "phase"]
    got = load(w.path).sort_values(key)
    want = sorted((r.case, r.phase) for r in w.records)
    assert list(zip(got.case, got.phase, strict=True)) == want
    w.close()
    assert sorted(zip(load(w.path).case, load(w.path).phase, strict=True)) == want


def test_a_crash_between_compaction_and_deletion_reads_the_compacted_file(tmp_path, capsys):
    w = store.new_run(tmp_path, "box", RUN, {"run_id": RUN})
    w.append(case(0))
    shard = Path(w.path).with_suffix("") / "part-000001.parquet"
    kept = tmp_path / "kept.parquet"
    shutil.copy(shard, kept)
    w.append(case(1))
    w.close()
    shard.parent.mkdir()
    shutil.copy(kept, shard)
    kept.unlink()
    assert store.files(tmp_path) == [w.path]
    df, metas = read_runs([tmp_path])
    assert len(df) == 4 and len(metas) == 1 and metas[0]["finished"] is not None
    assert capsys.readouterr().err == ""


def test_a_second_writer_of_the_same_run_is_refused(root):
    w = store.new_run(root, "box", RUN, {"run_id": RUN})
    w.append(case(0))
    other = store.new_run(root, "box", RUN, {"run_id": RUN})
    with pytest.raises(store.RunExistsError):
        other.append(case(1))
    assert not other.written
    w.close()
    late = store.new_run(root, "box", RUN, {"run_id": RUN})
    with pytest.raises(store.RunExistsError):
        late.append(case(1))
    assert len(load(root)) == 2


def test_hidden_and_stray_files_in_a_shard_folder_are_ignored(tmp_path):
    w = store.new_run(tmp_path, "box", RUN, {"run_id": RUN})
    w.append(case(0))
    folder = Path(w.path).with_suffix("")
    (folder / ".part-000002.parquet.1a2b.tmp").write_bytes(b"PAR1 half")  # SIGKILL mid-write
    assert store.files(tmp_path) == [w.path]
    assert len(load(tmp_path)) == 2 and len(load(folder)) == 2


def test_an_unfinished_run_reports_that_it_never_finished(root, tmp_path):
    w = store.new_run(root, "box", RUN, {"run_id": RUN, "machine": "box", "settings": {"threads": 1}})
    w.append(case(0))
    out = report.write([w.path], tmp_path / "r.html")
    html = out.read_text()
    assert "never (the run did not end)" in html and "n=0" in html


def test_no_run_at_a_name_is_one_message(tmp_path):
    with pytest.raises(UserError, match="no results at"):
        load(tmp_path / "box" / f"{RUN}.parquet")
    with pytest.raises(UserError, match="no such results file"):
        resolve_runs([str(tmp_path / "box" / f"{RUN}.parquet")], tmp_path)


def test_files_of_the_previous_format_load_unchanged():
    """tests/data/format2 was written by the writer before shards: it loads as it always did."""
    [path] = store.files(FORMAT2)
    assert path.name == "20260101T000000Z-abcd.parquet"
    assert_frame_holds(load(FORMAT2), RECORDS)
    meta = read_metadata(path)
    assert meta["format_version"] == 2 and meta["finished"] and meta["interrupted"] is False
    assert meta["fingerprint"] == {"cpu": "Fake CPU"} and meta["settings"] == {"threads": 2}
    assert resolve_runs(["20260101T000000Z-abcd"], FORMAT2) == [path]


def test_each_case_writes_only_its_own_rows(tmp_path):
    """The cost of a write does not grow with the run: shard k holds case k's rows and nothing else."""
    import pyarrow.parquet as pq

    w = store.new_run(tmp_path, "box", RUN, {"run_id": RUN})
    for n in range(20):
        w.append(case(n))
    shards = sorted(Path(w.path).with_suffix("").iterdir())
    assert len(shards) == 20
    assert [pq.read_metadata(s).num_rows for s in shards] == [2] * 20
    assert set(pq.read_table(shards[-1], columns=["case"]).column("case").to_pylist()) == {"n=19"}
