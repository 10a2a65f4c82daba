"""scripts/device_check.sh and scripts/device_summary.py, on this machine.

The device check itself runs only where an NVIDIA GPU is; here it must stop
at once with one line. Its summary is checked on real results: the files in
tests/data/h200 come from its run on an NVIDIA H200 (2026-11-26).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DATA, ROOT

H200 = DATA / "h200"


def test_device_check_fails_fast_with_one_line_without_a_gpu(tmp_path):
    if shutil.which("nvidia-smi"):
        pytest.skip("nvidia-smi is here: this machine may have a GPU")
    out = tmp_path / "out"
    start = time.monotonic()
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "device_check.sh"), str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "no NVIDIA GPU" in proc.stderr
    assert time.monotonic() - start < 10
    assert not out.exists()  # nothing that looks like a result


def test_device_check_without_a_folder_prints_its_usage():
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "device_check.sh")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("usage:")


def summarise(tmp_path: Path) -> str:
    shutil.copy(H200 / "crosscheck.json", tmp_path / "crosscheck.json")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "device_summary.py"), str(H200 / "gpu"),
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "summary.txt").read_text()
    assert proc.stdout.strip() == text.strip()
    return text


def test_summary_of_the_h200_run_quotes_its_figures(tmp_path):
    text = summarise(tmp_path)
    assert "torch 2.11.0 on cuda:0 (NVIDIA H200)" in text
    # Three-way timing agreement of the cross-check, per phase.
    assert "gradient  bench 60.540 ms, events 60.460 ms (-0.13 %), do_bench 60.277 ms (-0.43 %)" in text
    # The wide MLP's gradient: 50.06 of 50.54 TFLOP/s.
    assert "torch  gradient  50.06 of 50.54 TFLOP/s = 99.1 %" in text
    # M on the depth sweep, measured by torch's CUDA allocator: (depth + 2) / 3 from depth 2 on.
    assert "torch  batch=4096,width=1024,depth=8 M 3.33" in text
    assert "peak fwd 48.0 MiB, grad 160.0 MiB" in text
    # The JAX wide case ran while the GPU held its power cap for 703 ms.
    assert "jax batch=8192,width=4096,depth=4: power cap 703 ms" in text
    assert "Rows not measured: 0 failed/error/crashed" in text


def test_summary_of_an_empty_folder_says_so(tmp_path):
    empty = tmp_path / "results"
    empty.mkdir()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "device_summary.py"), str(empty),
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "no results files" in proc.stderr
    assert "no cross-check file" in (tmp_path / "summary.txt").read_text()
