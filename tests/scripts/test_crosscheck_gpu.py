"""scripts/crosscheck_gpu.py: bench vs CUDA events vs triton's do_bench.

Without a GPU the script must say so in one line and exit 2; its whole
measuring path also runs here with CUDA events, sync and do_bench faked on the
CPU (the verdict then means nothing, only that the code runs and writes its
JSON). The real check is marked ``gpu``.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ROOT, installed

SCRIPT = ROOT / "scripts" / "crosscheck_gpu.py"
SMALL = ["--batch", "128", "--width", "64", "--depth", "2"]


def run_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def no_cuda_or_skip() -> None:
    if not installed("torch"):
        pytest.skip("torch not installed")
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")


def test_without_cuda_exits_2_with_one_line():
    no_cuda_or_skip()
    proc = run_script()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "cuda" in lines[0].lower()


def load_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("crosscheck_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeEvent:
    """torch.cuda.Event on the host clock (CPU ops run synchronously)."""

    def __init__(self, enable_timing: bool = False) -> None:
        self.t = 0.0

    def record(self, stream: Any = None) -> None:
        self.t = time.perf_counter()

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: FakeEvent) -> float:
        return (end.t - self.t) * 1e3


def fake_do_bench(fn: Callable[[], Any], warmup: int = 25, rep: int = 100, grad_to_none: Any = None,
                  quantiles: Any = None, return_mode: str = "mean") -> float:
    assert return_mode == "median"
    times = []
    for _ in range(5):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


@pytest.mark.parametrize("with_triton", [True, False])
def test_measuring_path_runs_with_cuda_faked_on_cpu(monkeypatch, tmp_path, capsys, with_triton):
    no_cuda_or_skip()
    import torch

    cg = load_script()
    monkeypatch.setattr(cg, "cuda_torch", lambda spec: (torch, torch.device("cpu"), "fake"))
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: types.SimpleNamespace(L2_cache_size=1 << 20))
    if with_triton:
        triton = types.ModuleType("triton")
        triton.__version__ = "fake"
        testing = types.ModuleType("triton.testing")
        testing.do_bench = fake_do_bench
        triton.testing = testing
        monkeypatch.setitem(sys.modules, "triton", triton)
        monkeypatch.setitem(sys.modules, "triton.testing", testing)
    else:
        monkeypatch.setitem(sys.modules, "triton", None)  # import fails
    out = tmp_path / "x.json"
    code = cg.main([*SMALL, "--budget", "0.05", "--blocks", "3", "--l2", "flush", "--json", str(out)])
    assert code in (0, 1)
    text = capsys.readouterr().out
    assert "forward takes" in text and "R = T(gradient)/T(forward)" in text
    assert ("triton unavailable" in text) != with_triton
    doc = json.loads(out.read_text())
    assert doc["exit_code"] == code and set(doc["phases"]) == {"forward", "gradient"}
    assert doc["phases"]["forward"]["bench_ms"] > 0 and doc["phases"]["gradient"]["events_ms"] > 0
    assert (doc["phases"]["forward"]["do_bench_ms"] is None) != with_triton


@pytest.mark.gpu
def test_agrees_on_gpu(tmp_path):
    if not installed("torch"):
        pytest.skip("torch not installed")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    proc = run_script("--budget", "0.5", "--blocks", "10", "--rep-ms", "500", "--json",
                      str(tmp_path / "gpu.json"), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
