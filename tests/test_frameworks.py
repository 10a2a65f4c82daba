"""The three framework modules: one interface, and the same model in each.

These run the tiny MLP in-process in every installed framework and check it
against the float64 reference and against the other frameworks.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FRAMEWORKS, TEST_SUITES, installed

from bench import frameworks
from bench.discovery import load_file
from bench.equivalence import relative_error

INTERFACE = ("available", "version", "configure", "devices", "resolve_device", "to_device",
             "to_numpy", "sync", "implement")
SUITE = load_file(TEST_SUITES / "tiny" / "tiny_mlp.py")
PARAMS = {"batch": 16, "width": 16, "depth": 2}
LR = 0.05

each_framework = pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.skipif(not installed(n), reason=f"{n} not installed"))
     for n in FRAMEWORKS],
)


def build(name: str, mode: str | None = None):
    fw = frameworks.get(name)
    device, _ = fw.resolve_device("cpu")
    prob = SUITE.module.problem(PARAMS, seed=0)
    impl = fw.implement(SUITE.loss(name), prob, device, mode or fw.DEFAULT_MODE, LR)
    return fw, device, prob, impl


def phase(impl, name):
    return next(p for p in impl.phases if p.name == name)


def test_modules_mirror_one_interface():
    for name in FRAMEWORKS:
        mod = frameworks.get(name)
        missing = [f for f in INTERFACE if not callable(getattr(mod, f, None))]
        assert not missing, f"{name} lacks {missing}"
        assert mod.DEFAULT_MODE in mod.MODES
        assert name == mod.NAME


@each_framework
def test_loss_and_gradients_match_float64_reference(name):
    _, _, prob, impl = build(name)
    loss, grads = impl.loss_and_grads()
    ref_loss, ref_grads = SUITE.module.reference(prob)
    assert relative_error(loss, grads, ref_loss, ref_grads) < 1e-5
    assert [g.dtype for g in grads] == [np.float32] * len(grads)


@each_framework
def test_forward_phase_computes_the_same_loss(name):
    fw, device, prob, impl = build(name)
    out = phase(impl, "forward").run(None)
    fw.sync(out, device)
    ref_loss, _ = SUITE.module.reference(prob)
    assert float(fw.to_numpy(out)) == pytest.approx(ref_loss, rel=1e-5)


@pytest.mark.parametrize(("name", "mode"), [("torch", "eager"), ("jax", "jit"),
                                            ("tensorflow", "eager")])
def test_backward_split_gives_the_gradient(name, mode):
    if not installed(name):
        pytest.skip(f"{name} not installed")
    fw, _device, prob, impl = build(name, mode)
    split = phase(impl, "backward_split")
    state = split.prepare()
    grads = split.run(state)
    grads2 = split.run(state)  # a block calls run repeatedly on one prepared state
    _, ref_grads = SUITE.module.reference(prob)
    for g in (grads, grads2):
        values = [fw.to_numpy(x) for x in g]
        assert relative_error(0.0, values, 0.0, ref_grads) < 1e-5


@pytest.mark.skipif(not installed("tensorflow"), reason="tensorflow not installed")
def test_tf_function_mode_says_why_it_has_no_direct_split():
    _, _, _, impl = build("tensorflow", "function")
    assert "backward_split" not in [p.name for p in impl.phases]
    assert "tf.function" in impl.skipped["backward_split"]


def training_curve(name: str, steps: int = 20) -> list[float]:
    fw, device, _, impl = build(name)
    step = phase(impl, "step")
    losses = []
    for _ in range(steps):
        out = step.run(None)
        fw.sync(out, device)
        value = out[0] if isinstance(out, tuple) else out
        losses.append(float(fw.to_numpy(value)))
    return losses


def numpy_training_curve(steps: int = 20) -> list[float]:
    prob = SUITE.module.problem(PARAMS, seed=0)
    params = [p.astype(np.float64) for p in prob.params]
    losses = []
    for _ in range(steps):
        cur = type(prob)(prob.X, prob.y, tuple(params), prob.names)
        loss, grads = SUITE.module.reference(cur)
        losses.append(loss)
        params = [p - LR * g for p, g in zip(params, grads, strict=True)]
    return losses


@each_framework
def test_sgd_steps_follow_the_float64_training_curve(name):
    curve = training_curve(name)
    expected = numpy_training_curve()
    assert curve[-1] < curve[0]  # it learns
    np.testing.assert_allclose(curve, expected, rtol=1e-4)


@pytest.mark.skipif(not all(installed(n) for n in FRAMEWORKS), reason="needs all three frameworks")
def test_three_frameworks_agree_with_each_other():
    results = {n: build(n)[3].loss_and_grads() for n in FRAMEWORKS}
    base_loss, base_grads = results["torch"]
    for name in ("tensorflow", "jax"):
        loss, grads = results[name]
        assert relative_error(loss, grads, base_loss, base_grads) < 1e-5, name


@each_framework
def test_missing_cuda_is_reported_not_raised_as_crash(name):
    fw = frameworks.get(name)
    if "cuda:0" in fw.devices():
        pytest.skip("this machine has a GPU")
    with pytest.raises(frameworks.DeviceUnavailable, match=r"(?i)(cuda|gpu)"):
        fw.resolve_device("cuda:0")
