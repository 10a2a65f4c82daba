"""Fleet runs on a real Dask cluster: a scheduler and two workers as separate processes on localhost.

Each worker is one "machine" (its own name, its own CPU with taskset, one thread), and the store is
either a real S3 server (moto, as in the store tests) or a local folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TEST_SUITES, bench_cli
from s3server import client_env, free_port

pytestmark = pytest.mark.slow
DASK = Path(sys.executable).with_name("dask")


@contextlib.contextmanager
def cluster(cwd: Path, env: dict[str, str], names=("m1", "m2")):
    """A scheduler and one worker per name (on CPU i when taskset exists); yields (address, workers)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env, start_new_session=True)]
    workers = {}
    cpus = sorted(os.sched_getaffinity(0))
    for i, name in enumerate(names):
        pin = ["taskset", "-c", str(cpus[i % len(cpus)])] if shutil.which("taskset") else []
        workers[name] = subprocess.Popen(
            [*pin, str(DASK), "worker", address, "--nworkers", "1", "--nthreads", "1", "--resources",
             "bench=1", "--name", name, "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
    procs += workers.values()
    try:
        from distributed import Client

        with Client(address, timeout=60) as c:
            c.wait_for_workers(len(names), timeout=120)
        yield address, workers
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_a_two_machine_fleet_run_into_s3_gives_both_machines_and_one_report(tmp_path, s3_endpoint,
                                                                             monkeypatch):
    import bench

    env = {**os.environ, **client_env(s3_endpoint)}
    for k, v in client_env(s3_endpoint).items():
        monkeypatch.setenv(k, v)
    url = f"s3://bench-test/fleet-{os.getpid()}"
    with cluster(tmp_path, env) as (address, _):
        start = time.monotonic()
        proc = bench_cli("run", "--cluster", address, "--results", url, "--suite", "mlp_regression",
                         "--quick", "--framework", "torch", "--threads", "1",
                         "--reports", str(tmp_path / "reports"), timeout=600, env=env)
        wall = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    df = bench.load(url)
    assert set(df.machine) == {"m1", "m2"}
    grad = df[(df.phase == "gradient") & (df.status == "ok")]
    assert grad.groupby("machine").case.nunique().to_dict() == {"m1": 3, "m2": 3}
    pages = list((tmp_path / "reports").glob("*.html"))
    assert len(pages) == 1, proc.stdout
    html = pages[0].read_text()
    assert "m1" in html and "m2" in html
    # Any two machines of the fleet compare: each side is that machine's newest run, in the bucket.
    cmp = bench_cli("compare", f"{url}/m1", f"{url}/m2", env=env)
    assert cmp.returncode == 0, cmp.stderr
    assert "m1" in cmp.stdout and "m2" in cmp.stdout and "batch=64,width=128,depth=2" in cmp.stdout
    print(f"fleet wall time: {wall:.1f} s")


def test_a_machine_killed_mid_run_keeps_its_finished_cases_and_the_summary_names_it(tmp_path):
    import bench

    results = tmp_path / "results"
    env = dict(os.environ)
    with cluster(tmp_path, env) as (address, workers):
        run = subprocess.Popen(
            [sys.executable, "-m", "bench", "run", "--cluster", address, "--results", str(results),
             "--suites", str(TEST_SUITES / "paced"), "--quick", "--framework", "torch",
             "--threads", "1", "--processes", "1", "--budget", "0.5", "--no-report"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        deadline = time.monotonic() + 300
        # Kill m2's worker once it has stored a case (a shard or a run file under results/m2).
        while time.monotonic() < deadline and not list((results / "m2").rglob("*.parquet")):
            time.sleep(0.2)
        os.killpg(workers["m2"].pid, signal.SIGKILL)
        _, err = run.communicate(timeout=300)
    assert run.returncode == 1, err
    assert "m2" in err and "lost" in err
    df = bench.load(results)
    grad = df[(df.phase == "gradient") & (df.status == "ok")]
    assert grad[grad.machine == "m1"].case.nunique() == 4  # the other machine finished
    kept = grad[grad.machine == "m2"].case.nunique()
    assert 1 <= kept < 4  # the killed machine's finished cases are kept
