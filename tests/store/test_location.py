"""bench.store.location: one interface over local folders and object stores (a real S3 server on
localhost)."""

from __future__ import annotations

import os

import pytest
from s3server import set_env

from bench.core.errors import UserError
from bench.store.location import Location, is_url


@pytest.fixture(params=["local", "memory", "s3"])
def location(request, tmp_path, monkeypatch, s3_endpoint):
    if request.param == "local":
        return Location.of(tmp_path / "results")
    if request.param == "memory":
        return Location.of(f"memory://bench-{os.getpid()}-{request.node.name}")
    set_env(monkeypatch, s3_endpoint)
    return Location.of(f"s3://bench-test/{request.node.name}")


def test_write_read_and_find_on_every_kind_of_location(location):
    a = location.path("m", "run-1.parquet")
    location.write(a, b"one")
    location.write(location.path("m", "run-2", "shard-000001.parquet"), b"two")
    location.write(location.path("m", ".run-3.parquet.tmp"), b"half-written")  # hidden: skipped
    location.write(location.path("m", "notes.txt"), b"not results")
    assert location.read_bytes(a) == b"one"
    found = location.find(location.root)
    assert [f.rsplit("/", 1)[-1] for f in found] == ["run-1.parquet", "shard-000001.parquet"]
    assert location.is_file(a) and not location.is_file(location.path("m"))
    assert location.display(a).endswith("m/run-1.parquet")


def test_a_write_replaces_whole_and_new_refuses_to_overwrite(location):
    a = location.path("r.parquet")
    location.write(a, b"first")
    location.write(a, b"second")
    assert location.read_bytes(a) == b"second"
    with pytest.raises(FileExistsError):
        location.write(a, b"third", new=True)
    assert location.read_bytes(a) == b"second"


def test_reads_are_capped(location):
    a = location.path("big.parquet")
    location.write(a, b"x" * 100)
    with pytest.raises(UserError, match=r"larger|MiB"):
        location.read_bytes(a, limit=10)


def test_no_credentials_in_what_a_location_shows(monkeypatch, s3_endpoint):
    set_env(monkeypatch, s3_endpoint)
    loc = Location.of("s3://bench-test/x")
    assert "bench-test-secret" not in repr(loc) and "bench-test-secret" not in str(loc)
    assert str(loc) == "s3://bench-test/x"


def test_local_paths_and_urls_are_told_apart(tmp_path):
    assert not is_url(tmp_path) and is_url("s3://b/x") and is_url("memory://x")
    loc = Location.of(f"file://{tmp_path}")
    assert loc.local and loc.root == str(tmp_path)
    with pytest.raises(UserError, match="cannot open nosuchscheme://"):
        Location.of("nosuchscheme://x")


def test_a_fifo_is_not_a_regular_file(tmp_path):
    loc = Location.of(tmp_path)
    os.mkfifo(tmp_path / "x.parquet")
    assert not loc.is_file(str(tmp_path / "x.parquet"))
    assert loc.find(loc.root) == []
    with pytest.raises(UserError, match="not a regular file"):
        loc.read_bytes(str(tmp_path / "x.parquet"))


def test_a_reader_gets_small_objects_whole_and_large_ones_in_ranges(location):
    """``Location.reader``: up to ``whole_below`` bytes the object's bytes (one GET); above, a file
    that reads only the ranges asked for; a folder is refused."""
    import pyarrow as pa

    if location.local:
        pytest.skip("local files are read where they are, not through a reader")
    a = location.path("m", "run.parquet")
    location.write(a, bytes(range(256)) * 40)
    small = location.reader(a)
    assert isinstance(small, pa.Buffer) and small.to_pybytes() == bytes(range(256)) * 40
    with location.reader(a, whole_below=100) as ranged:
        assert not isinstance(ranged, pa.Buffer)
        ranged.seek(5000)
        assert ranged.read(3) == bytes([5000 % 256, 5001 % 256, 5002 % 256])
    with pytest.raises(UserError, match="not a regular file"):
        location.reader(location.path("m"))
