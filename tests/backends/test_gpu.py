"""GPU paths of torch and JAX (marked ``gpu``: deselected by default, run with -m gpu).

Each test skips with the reason where no CUDA device is usable, so
``pytest -m gpu`` on a CPU machine reports every GPU path as skipped, and
``scripts/device_check.sh`` runs them where a GPU exists.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import TEST_SUITES, bench_cli, installed

import bench
from bench import backends
from bench.catalog.loader import load_file
from bench.core.device import Device, flush_bytes, nvml_index
from bench.measure import gpu_state
from bench.measure.equivalence import relative_error
from bench.measure.timing import Timer, TimingConfig
from bench.measure.worker import Worker

pytestmark = pytest.mark.gpu
SUITE = load_file(TEST_SUITES / "tiny" / "tiny_mlp.py")
# TensorFlow's GPU paths run where a CUDA build of it is installed (the H200
# of the device check had none: they skipped there).
GPU_FRAMEWORKS = ["torch", "jax", "tensorflow"]


def cuda_or_skip(name: str):
    if not installed(name):
        pytest.skip(f"{name} not installed")
    fw = backends.get(name)
    try:
        return fw, fw.resolve_device(Device("cuda", 0))[0]
    except backends.DeviceUnavailable as exc:
        pytest.skip(str(exc))


def implement(name: str, params: dict[str, int]):
    fw, device = cuda_or_skip(name)
    fw.configure(threads=1, allow_tf32=False, seed=0)
    prob = SUITE.module.problem(params, seed=0)
    return fw, device, prob, fw.implement(SUITE.loss(name), prob, device, fw.DEFAULT_MODE, 1e-3)


@pytest.mark.parametrize("name", GPU_FRAMEWORKS)
def test_gradients_on_gpu_match_float64_reference_with_tf32_off(name):
    fw, device, prob, impl = implement(name, {"batch": 64, "width": 256, "depth": 2})
    loss, grads = impl.loss_and_grads()
    ref_loss, ref_grads = SUITE.module.reference(prob)
    assert relative_error(loss, grads, ref_loss, ref_grads) < 1e-5
    out = impl.phases[0].run(None)
    fw.sync(out, device)
    assert np.isfinite(float(fw.to_numpy(out)))


@pytest.mark.parametrize("name", GPU_FRAMEWORKS)
def test_gpu_memory_grows_with_depth_and_saved_bytes_match_the_theory(name):
    peaks, saved = {}, {}
    for depth in (1, 4):
        params = {"batch": 1024, "width": 512, "depth": depth}
        _, _, _, impl = implement(name, params)
        phases = {p.name: p for p in impl.phases}
        peaks[depth] = {n: impl.peak_bytes(phases[n]) for n in ("forward", "gradient")}
        saved[depth] = impl.saved_bytes() / SUITE.memory(params).saved
    for depth, p in peaks.items():
        # The gradient keeps activations the forward pass frees: M > 1.
        assert p["gradient"] > p["forward"] > 0, (depth, p)
    # Three more layers keep at least three more batch x width activations.
    # (Not M itself: XLA's GPU programs hold a fixed cuBLAS workspace that
    # dominates small cases.)
    activation = 4 * 1024 * 512
    assert peaks[4]["gradient"] - peaks[1]["gradient"] >= 3 * activation, peaks
    if name == "torch":  # autograd keeps exactly what the theory counts, on any device
        assert all(abs(r - 1) < 0.05 for r in saved.values()), saved
    elif name == "tensorflow":  # its tape does not say what it keeps
        assert all(np.isnan(r) for r in saved.values()), saved
    else:
        assert all(0.95 < r < 2.5 for r in saved.values()), saved


@pytest.mark.parametrize("name", GPU_FRAMEWORKS)
def test_l2_flush_runs_on_the_gpu_and_is_synced_before_the_clock(name):
    fw, device, _, impl = implement(name, {"batch": 64, "width": 256, "depth": 2})
    flush = fw.flusher(device, flush_bytes(Device("cuda", 0)))
    calls = []

    def counted_flush():
        calls.append(1)
        return flush()

    timer = Timer(lambda out: fw.sync(out, device), TimingConfig(budget_s=0.05, min_rounds=3),
                  flush=counted_flush)
    timing = timer.measure(impl.phases[:2])
    assert timing["forward"].median_s > 0 and calls


@pytest.fixture
def keep_affinity():
    """The worker pins its process to its threads; give pytest its CPUs back."""
    cpus = os.sched_getaffinity(0)
    yield
    os.sched_setaffinity(0, cpus)


@pytest.mark.parametrize("name", GPU_FRAMEWORKS)
def test_matmul_peak_is_measured_on_the_gpu(name, keep_affinity):
    cuda_or_skip(name)
    worker = Worker({"framework": name, "device": "cuda:0", "mode": backends.get(name).DEFAULT_MODE,
                     "settings": {"threads": 1}, "run_id": "t", "machine": "m"}, lambda e: None)
    assert worker.start()
    # Any GPU of this decade multiplies float32 faster than 1 TFLOP/s.
    assert worker.peak_flops > 1e12


def test_nvml_reads_clocks_of_the_gpu():
    cuda_or_skip("torch")
    state = gpu_state.snapshot(nvml_index(Device("cuda", 0)))
    if not state:
        pytest.skip("NVML (nvidia-ml-py) is not usable here")
    assert state.get("sm_clock_mhz", 0) > 0 and "reasons" in state


def test_bench_run_on_cuda_writes_gpu_rows(tmp_path):
    if not any(installed(n) for n in ("torch", "jax")):
        pytest.skip("neither torch nor jax installed")
    cuda_or_skip("torch" if installed("torch") else "jax")
    proc = bench_cli("run", "--device", "cuda", "--framework", "torch,jax" if installed("jax") else "torch",
                     "--suites", str(TEST_SUITES / "tiny"), "--quick", "--budget", "0.1",
                     "--l2", "flush", "--machine", "gpu", "--results", str(tmp_path), "--no-report")
    assert proc.returncode == 0, proc.stderr
    df = bench.load(tmp_path / "gpu")
    ok = df[df.status == "ok"]
    assert set(ok.device) == {"cuda:0"} and len(ok)
    assert (ok.l2 == "flush").all() and (ok.peak_flops_per_s > 1e12).all()
    grad = ok[ok.phase == "gradient"]
    assert (grad.peak_bytes > 0).all() and (grad.memory_ratio > 1).all()
    states = [json.loads(s) for s in ok.gpu_state if s]
    assert states and all("before" in s and "after" in s for s in states)
