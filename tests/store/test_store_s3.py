"""Results in a real S3 bucket: moto's S3 server on localhost (tests/s3server.py), reached through s3fs.

The commands take ``--results s3://bench-test/...``; ``bench.load`` takes the URL. Credentials and the
endpoint come from the environment (fake ones, ``AWS_ENDPOINT_URL``) and never show in what bench writes.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, bench_cli, needs
from s3server import FAKE_CREDENTIALS, client_env
from test_store_hostile import record

import bench
from bench import store
from bench.core.errors import UserError
from bench.store.location import Location

RUN = "20260103T000000Z-00112233aabbccdd"
_unique = itertools.count()


@pytest.fixture
def bucket(s3, request) -> str:
    """A fresh results root in the bucket for this test."""
    return f"s3://bench-test/{request.node.name.replace('[', '-').replace(']', '')}-{next(_unique)}"


def put_run(root: str, machine: str = "box", run_id: str = RUN, finished: bool = True) -> str:
    w = store.new_run(root, machine, run_id, {"run_id": run_id, "machine": machine,
                                              "settings": {"threads": 1}})
    for n in range(2):
        w.append([record(phase, case=f"n={n}", run_id=run_id, machine=machine)
                  for phase in ("forward", "gradient")])
    if finished:
        w.close(interrupted=False)
    return str(w.path)


def no_secrets(*texts: str) -> None:
    for text in texts:
        assert FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in text
        assert FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"] not in text


def test_a_run_in_the_bucket_round_trips(bucket):
    path = put_run(bucket)
    assert path == f"{bucket}/box/{RUN}.parquet"
    loc = Location.of(bucket)
    assert [p.rsplit("/", 1)[-1] for p in loc.find(loc.root)] == [f"{RUN}.parquet"]  # shards gone
    assert store.files(bucket) == [path]
    assert len(bench.load(bucket)) == 4 and len(bench.load(path)) == 4
    assert store.read_metadata(path)["finished"] is not None
    assert store.resolve_runs([RUN], bucket) == [path] and store.resolve_runs([], bucket) == [path]


def test_load_takes_storage_options(bucket, s3, monkeypatch):
    put_run(bucket)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()
    df = bench.load(bucket, storage_options={"endpoint_url": s3})
    assert len(df) == 4


def test_an_unfinished_run_in_the_bucket_reads_from_its_shards(bucket, tmp_path):
    path = put_run(bucket, finished=False)
    loc = Location.of(bucket)
    assert [p.rsplit("/", 1)[-1] for p in loc.find(loc.root)] == ["part-000001.parquet",
                                                                  "part-000002.parquet"]
    assert store.files(bucket) == [path]
    df = bench.load(bucket)
    assert sorted(set(df.case)) == ["n=0", "n=1"]
    assert store.read_metadata(path)["finished"] is None
    proc = bench_cli("report", RUN, "--results", bucket, "-o", str(tmp_path / "r.html"),
                     env=client_env(os.environ["AWS_ENDPOINT_URL"]))
    assert proc.returncode == 0, proc.stderr
    assert "never (the run did not end)" in (tmp_path / "r.html").read_text()


def test_report_compare_export_and_import_with_the_bucket(bucket, tmp_path):
    env = client_env(os.environ["AWS_ENDPOINT_URL"])
    remote = put_run(bucket)
    local = put_run(str(tmp_path / "results"), run_id="20260101T000000Z-aaaa")

    proc = bench_cli("report", "--results", bucket, "-o", str(tmp_path / "r.html"), env=env)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "r.html").read_text()
    assert RUN in html
    no_secrets(proc.stdout, proc.stderr, html)

    proc = bench_cli("report", "--results", bucket, cwd=tmp_path, env=env)  # the default output: local
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "reports" / f"{RUN}.html").exists()

    proc = bench_cli("compare", local, remote, env=env)
    assert proc.returncode == 0, proc.stderr
    # Both cases of both phases matched, the bucket's run named (the table's layout is compare's).
    assert RUN in proc.stdout and "no significant change: 4" in proc.stdout, proc.stdout
    no_secrets(proc.stdout, proc.stderr)

    proc = bench_cli("export", RUN, "--results", bucket, "--format", "pytest-benchmark",
                     "-o", str(tmp_path / "pb.json"), env=env)
    assert proc.returncode == 0, proc.stderr
    proc = bench_cli("import", str(tmp_path / "pb.json"), "--machine", "other", "--results", bucket, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"{bucket}/other/" in proc.stdout
    assert len(store.files(f"{bucket}/other")) == 1


def test_compare_resolves_ids_in_the_bucket(bucket):
    env = client_env(os.environ["AWS_ENDPOINT_URL"])
    put_run(bucket)
    put_run(bucket, run_id="20260104T000000Z-ffeeddccbbaa0099")
    proc = bench_cli("compare", RUN, "20260104T", "--results", bucket, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"base: run {RUN}" in proc.stdout and "new: run 20260104T000000Z-ffeeddccbbaa0099" in proc.stdout
    assert "no significant change: 4" in proc.stdout


def test_an_unwritable_bucket_is_one_line_before_anything_runs(s3):
    url = "s3://no-such-bucket-bench/results"
    proc = bench_cli("run", "--results", url, "--suite", "linear_regression", "--quick", "--no-report",
                     env=client_env(s3))
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "--results" in lines[0] and "cannot write under" in lines[0]
    no_secrets(proc.stderr)


def test_an_unknown_scheme_is_one_line(tmp_path):
    proc = bench_cli("report", "--results", "nosuchscheme://x/y", "-o", str(tmp_path / "r.html"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nosuchscheme://x" in proc.stderr


def test_a_missing_run_in_the_bucket_is_a_user_error(bucket):
    put_run(bucket)
    with pytest.raises(UserError, match="no results at"):
        bench.load(f"{bucket}/box/nope.parquet")
    with pytest.raises(UserError, match="unknown run id"):
        store.resolve_runs(["nope"], bucket)


CASES = ("batch=16,features=256", "batch=128,features=256", "batch=1024,features=16",
         "batch=1024,features=64")


@pytest.mark.slow
@needs("torch")
def test_bench_run_into_the_bucket_then_report_and_compare(bucket, tmp_path):
    env = client_env(os.environ["AWS_ENDPOINT_URL"])
    proc = bench_cli("run", "--results", bucket, "--suite", "linear_regression", "--case", CASES[0],
                     "--framework", "torch", "--budget", "0.05", "--processes", "1", "--machine", "m",
                     "--no-report", env=env)
    assert proc.returncode == 0, proc.stderr
    [path] = store.files(bucket)
    assert path.startswith(f"{bucket}/m/") and f"results: {path}" in proc.stdout.replace("\n", "")
    df = bench.load(bucket)
    assert set(df.case) == {CASES[0]} and store.read_metadata(path)["finished"] is not None
    no_secrets(proc.stdout, proc.stderr, str(store.read_metadata(path)))

    proc = bench_cli("report", "--results", bucket, "-o", str(tmp_path / "r.html"), env=env)
    assert proc.returncode == 0, proc.stderr
    # One side local (a copy of the run), one in the bucket.
    local = tmp_path / "copy" / "run.parquet"
    local.parent.mkdir()
    local.write_bytes(Location.of(path).read_bytes(Location.of(path).root))
    proc = bench_cli("compare", str(local), path, env=env)
    assert proc.returncode == 0, proc.stderr
    # The bucket's run is named, and the last line counts the calls (the table's layout is compare's).
    assert store.stem(path) in proc.stdout, proc.stdout
    assert re.fullmatch(r"[a-z :]+: \d+(, [a-z :]+: \d+)*", proc.stdout.strip().splitlines()[-1]), proc.stdout


def start_run(results: str, env: dict[str, str]) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("bench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bench"]
    args = ["run", "--results", results, "--suite", "linear_regression", "--framework", "torch",
            "--budget", "0.3", "--processes", "1", "--machine", "m", "--no-report"]
    for c in CASES:
        args += ["--case", c]
    return subprocess.Popen([*cmd, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **env}, start_new_session=True)


@pytest.mark.slow
@needs("torch")
@pytest.mark.parametrize("where", ["s3", "local"])
def test_a_run_killed_mid_run_leaves_readable_shards(where, bucket, tmp_path):
    env = client_env(os.environ["AWS_ENDPOINT_URL"])
    results = bucket if where == "s3" else str(tmp_path / "results")
    proc = start_run(results, env)
    loc = Location.of(results)
    try:
        deadline = time.monotonic() + 120
        while not loc.find(loc.root) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert loc.find(loc.root), "no shard appeared"
    finally:
        # SIGKILL the whole session: bench and its worker, no chance to compact.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    [path] = store.files(results)
    meta = store.read_metadata(path)
    assert meta["finished"] is None
    df = bench.load(results)
    assert CASES[0] in set(df.case) and set(df.case) < set(CASES)
    proc = bench_cli("report", "--results", results, "-o", str(tmp_path / "r.html"), env=env)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "r.html").read_text()
    assert "never (the run did not end)" in html and CASES[0] in html


def test_the_writable_check_leaves_no_probe_behind(bucket):
    from bench.store import outputs

    outputs.location(bucket)
    loc = Location.of(bucket)
    assert loc.fs.find(loc.root) == []


def test_the_test_server_keeps_answering_after_many_requests(s3_endpoint):
    """moto logs every request on stderr; through a pipe nobody read, 64 KiB of log blocked the
    server and the session's later S3 tests hung. 1500 requests log well over that."""
    import urllib.request

    for _ in range(1500):
        urllib.request.urlopen(f"{s3_endpoint}/moto-api/", timeout=5).close()
