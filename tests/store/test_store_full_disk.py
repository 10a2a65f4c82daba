"""After a failed write (a full disk), where the run's finished cases are (issue #12).

A run is written as a shard per case and compacted at its end, so a run stopped by a full disk
exists only as shards: ``store.stored_as`` says so, and ``bench run``'s last line must name the
shards' folder and how to read them, not a "last complete results file" that does not exist.
The CLI test goes through ``bench.cli.main`` with scripted workers, as tests/cli/test_run_cli.py does.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from fake_worker import TINY, healthy
from test_store_hostile import record

import bench
from bench import store

RUN = "20260105T000000Z-0011223344556677"


@pytest.mark.parametrize("where", ["local", "memory"])
def test_stored_as_tells_a_compacted_run_from_one_only_in_shards(tmp_path, where):
    root = tmp_path / "results" if where == "local" else f"memory://bench-full-disk-{os.getpid()}/results"
    path = store.run_path(root, "box", RUN)
    assert store.stored_as(path) is None
    w = store.new_run(root, "box", RUN, {"run_id": RUN})
    w.append([record("forward"), record("gradient")])
    assert store.stored_as(path) == "shards"
    assert str(store.shard_folder(path)) == str(path)[: -len(".parquet")]
    w.close()
    assert store.stored_as(path) == "file"


def test_the_shard_folder_of_a_name_without_parquet_is_the_writers():
    assert store.shard_folder(Path("/r/box/x.bin")) == Path("/r/box/x.bin.shards")
    assert store.shard_folder("s3://b/r/box/RUN.parquet") == "s3://b/r/box/RUN"


def test_a_full_disk_names_the_shards_that_hold_the_finished_cases(fake_run, monkeypatch, capsys):
    """The second write fails (ENOSPC): the first case is kept as a shard, and the last line says
    where and how to read it. Fails until bench/cli/run.py's ``_unwritable`` asks
    ``store.stored_as`` (see the issue #12 report)."""
    run, start = fake_run
    start(healthy)
    original = store.ResultsWriter.flush
    paths = []

    def flush(self):
        paths.append(self.path)
        if len(paths) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self)

    monkeypatch.setattr(store.ResultsWriter, "flush", flush)
    assert run() == 3
    last = capsys.readouterr().err.strip().splitlines()[-1]
    path = paths[0]
    assert store.stored_as(path) == "shards"
    assert last == (f"bench: error: cannot write {path} (No space left on device): the run stopped; "
                    f"the cases finished before it are kept as shards in {store.shard_folder(path)} "
                    f"(`bench report {path}` and bench.load read them)")
    assert set(bench.load(path).case) == {TINY.cases(quick=True)[0].id}
