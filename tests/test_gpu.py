"""GPU paths of torch and JAX (marked ``gpu``: deselected by default, run with -m gpu)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEST_SUITES, bench_cli, installed

import bench
from bench import frameworks
from bench.discovery import load_file
from bench.equivalence import relative_error

pytestmark = pytest.mark.gpu
SUITE = load_file(TEST_SUITES / "tiny" / "tiny_mlp.py")


def cuda_or_skip(name: str):
    if not installed(name):
        pytest.skip(f"{name} not installed")
    fw = frameworks.get(name)
    try:
        return fw, fw.resolve_device("cuda:0")[0]
    except frameworks.DeviceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_gradients_on_gpu_match_float64_reference_with_tf32_off(name):
    fw, device = cuda_or_skip(name)
    fw.configure(threads=1, allow_tf32=False, seed=0)
    prob = SUITE.module.problem({"batch": 64, "width": 256, "depth": 2}, seed=0)
    impl = fw.implement(SUITE.loss(name), prob, device, fw.DEFAULT_MODE, 1e-3)
    loss, grads = impl.loss_and_grads()
    ref_loss, ref_grads = SUITE.module.reference(prob)
    assert relative_error(loss, grads, ref_loss, ref_grads) < 1e-5
    out = impl.phases[0].run(None)
    fw.sync(out, device)
    assert np.isfinite(float(fw.to_numpy(out)))


def test_bench_run_on_cuda_writes_gpu_rows(tmp_path):
    if not any(installed(n) for n in ("torch", "jax")):
        pytest.skip("neither torch nor jax installed")
    cuda_or_skip("torch" if installed("torch") else "jax")
    proc = bench_cli("run", "--device", "cuda", "--framework", "torch,jax" if installed("jax") else "torch",
                     "--suites", str(TEST_SUITES / "tiny"), "--quick", "--budget", "0.1",
                     "--machine", "gpu", "--results", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    df = bench.load(tmp_path / "gpu")
    ok = df[df.status == "ok"]
    assert set(ok.device) == {"cuda:0"} and len(ok)
