"""The three framework modules: one interface, and the same model in each.

These run the tiny MLP in-process in every installed framework and check it
against the float64 reference and against the other frameworks.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import numpy as np
import pytest
from conftest import (
    FRAMEWORKS,
    MODES,
    TEST_SUITES,
    each_framework,
    each_mode,
    forward_loss,
    implement_suite,
    installed,
    numpy_training_curve,
    phase,
)

from bench import backends
from bench.catalog.loader import load_file
from bench.measure.equivalence import relative_error

SUITE = load_file(TEST_SUITES / "tiny" / "tiny_mlp.py")
PARAMS = {"batch": 16, "width": 16, "depth": 2}
LR = 0.05


def build(name: str, mode: str | None = None):
    prob = SUITE.module.problem(PARAMS, seed=0)
    fw, device, impl = implement_suite(SUITE, name, prob, LR, mode)
    return fw, device, prob, impl


def is_of_type(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type ``hint``, element by element for containers."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin is None:
        return isinstance(value, hint)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(is_of_type(v, args[0]) for v in value)
        return len(value) == len(args) and all(is_of_type(v, a) for v, a in zip(value, args, strict=True))
    if origin in (list, set, frozenset):
        return isinstance(value, origin) and all(is_of_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            is_of_type(k, args[0]) and is_of_type(v, args[1]) for k, v in value.items())
    # A new kind of annotation on the protocol should extend this check, not pass unchecked.
    raise NotImplementedError(f"no run-time check for {hint!r}: extend is_of_type")


def protocol_functions() -> dict[str, inspect.Signature]:
    """The functions ``Framework`` declares, with their signatures as a module function has them (no self)."""
    functions = {}
    for attr, value in vars(backends.Framework).items():
        if attr.startswith("_") or not inspect.isfunction(value):
            continue
        sig = inspect.signature(value)
        functions[attr] = sig.replace(parameters=list(sig.parameters.values())[1:])
    return functions


def shape(sig: inspect.Signature) -> list[tuple[str, str, object]]:
    """What a caller relies on in a signature: each parameter's name, kind and default."""
    return [(p.name, p.kind.description, p.default) for p in sig.parameters.values()]


def test_protocol_declares_the_interface_bench_uses():
    # A protocol emptied by mistake would make the conformance test vacuous.
    assert {"available", "configure", "resolve_device", "matmul", "flusher", "implement"} <= set(
        protocol_functions())
    assert {"NAME", "MODES", "UNSUPPORTED", "MEMORY_METHOD"} <= set(typing.get_type_hints(backends.Framework))


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_module_conforms_to_the_framework_protocol(name):
    mod = backends.get(name)
    where = f"bench.backends.{name}"
    problems = []
    for attr, hint in typing.get_type_hints(backends.Framework).items():
        if not hasattr(mod, attr):
            problems.append(f"{where}.{attr}: missing (Framework declares {attr}: {hint})")
        elif not is_of_type(getattr(mod, attr), hint):
            problems.append(f"{where}.{attr} = {getattr(mod, attr)!r} is not of type {hint}")
    for attr, expected in protocol_functions().items():
        fn = getattr(mod, attr, None)
        if not callable(fn):
            problems.append(f"{where}.{attr}: missing (Framework declares {attr}{expected})")
        elif shape(inspect.signature(fn)) != shape(expected):
            problems.append(f"{where}.{attr}{inspect.signature(fn)} differs from Framework.{attr}{expected}")
    assert not problems, "\n".join(problems)
    assert mod.DEFAULT_MODE in mod.MODES
    assert name == mod.NAME


def test_modes_are_the_modules_modes():
    assert sorted((n, m) for n in FRAMEWORKS for m in backends.get(n).MODES) == sorted(MODES)
    # MODES (what the tests run over) is built from the modules: pin the modes themselves too.
    assert sorted(MODES) == sorted([("torch", "eager"), ("torch", "compile"), ("tensorflow", "function"),
                                    ("tensorflow", "xla"), ("tensorflow", "eager"), ("jax", "jit")])


@each_mode
def test_loss_and_gradients_match_float64_reference(name, mode):
    _, _, prob, impl = build(name, mode)
    loss, grads = impl.loss_and_grads()
    ref_loss, ref_grads = SUITE.module.reference(prob)
    assert relative_error(loss, grads, ref_loss, ref_grads) < 1e-5
    assert [g.dtype for g in grads] == [np.float32] * len(grads)


@each_mode
def test_forward_phase_computes_the_same_loss(name, mode):
    fw, device, prob, impl = build(name, mode)
    ref_loss, _ = SUITE.module.reference(prob)
    assert forward_loss(fw, device, impl) == pytest.approx(ref_loss, rel=1e-5)


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


@each_mode
def test_sgd_steps_follow_the_float64_training_curve(name, mode):
    curve = build(name, mode)[3].train(20)
    expected = numpy_training_curve(SUITE.module.reference, SUITE.module.problem(PARAMS, seed=0), LR)
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
    fw = backends.get(name)
    if "cuda:0" in fw.devices():
        pytest.skip("this machine has a GPU")
    with pytest.raises(backends.DeviceUnavailable, match=r"(?i)(cuda|gpu)"):
        fw.resolve_device("cuda:0")


@each_mode
def test_timed_step_trains_its_own_copy(name, mode):
    fw, device, prob, impl = build(name, mode)
    step = phase(impl, "step")
    for _ in range(3):
        fw.sync(step.run(None), device)
    # forward and gradient still see the initial parameters
    loss, _ = impl.loss_and_grads()
    assert loss == pytest.approx(SUITE.module.reference(prob)[0], rel=1e-5)
    # and a training run starts from them too
    assert impl.train(1)[0] == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize(("name", "mode"), [("tensorflow", "function"), ("tensorflow", "xla"),
                                            ("jax", "jit")])
def test_trace_count_is_steady_after_the_first_calls(name, mode):
    if not installed(name):
        pytest.skip(f"{name} not installed")
    fw, device, _, impl = build(name, mode)
    for p in impl.phases:
        fw.sync(p.run(p.prepare() if p.prepare else None), device)
    before = impl.traces()
    assert before > 0  # the first calls traced
    for p in impl.phases:
        fw.sync(p.run(p.prepare() if p.prepare else None), device)
    assert impl.traces() == before


@pytest.mark.slow  # torch.compile takes tens of seconds on a small CPU
@pytest.mark.skipif(not installed("torch"), reason="torch not installed")
def test_torch_compile_runs_every_phase_twice():
    fw, _, prob, impl = build("torch", "compile")
    _, ref_grads = SUITE.module.reference(prob)
    for p in impl.phases:
        state = p.prepare() if p.prepare else None
        for _ in range(2):  # a block calls run repeatedly on one prepared state
            out = p.run(state)
    split = phase(impl, "backward_split")
    state = split.prepare()
    split.run(state)
    grads = [fw.to_numpy(g) for g in split.run(state)]
    assert relative_error(0.0, grads, 0.0, ref_grads) < 1e-5
    assert impl.traces() > 0
    assert out is not None
