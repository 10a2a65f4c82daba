"""A real S3-compatible HTTP server on localhost for the tests: moto's server mode in a subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

# What a client needs to reach the server; no real credentials anywhere.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench-test-key", "AWS_SECRET_ACCESS_KEY": "bench-test-secret",
                    "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server(timeout_s: float = 30.0) -> Iterator[str]:
    """Start ``python -m moto.server`` on a free port; yield its endpoint URL; stop it."""
    port = free_port()
    # moto logs every request on stderr: a pipe nobody reads fills up (64 KiB) and then blocks
    # the server, and every later request hangs. A file never fills.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, proc, log, time.monotonic() + timeout_s)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_up(url: str, proc: subprocess.Popen, log, deadline: float) -> None:
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                err = log.read().decode(errors="replace")
                raise RuntimeError(f"moto server did not start: {err[-500:]}") from None
            time.sleep(0.05)


def client_env(endpoint: str) -> dict[str, str]:
    """Environment variables that point boto3/s3fs at ``endpoint`` (``AWS_ENDPOINT_URL``)."""
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def make_bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, **{
        "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": FAKE_CREDENTIALS["AWS_DEFAULT_REGION"]}).create_bucket(Bucket=name)


def set_env(monkeypatch, endpoint: str) -> None:
    for k, v in client_env(endpoint).items():
        monkeypatch.setenv(k, v)
    # s3fs caches file-system instances per set of arguments: a new server must get a new one.
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()
    os.environ.pop("AWS_PROFILE", None)
