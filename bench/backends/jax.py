"""JAX: jit, value_and_grad, the vjp split, block_until_ready."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.backends import DeviceUnavailable, Implementation, Phase, as_device, cpu_flusher, skipped
from bench.core.contract import Optimizer, Problem
from bench.core.device import Device

NAME = "jax"
MODES: tuple[str, ...] = ("jit",)
DEFAULT_MODE = "jit"
DEVICE_KINDS: tuple[str, ...] = ("cpu", "cuda")
UNSUPPORTED: dict[tuple[str, str], str] = {}
# XLA plans every buffer of a compiled program ahead of time, so its buffer
# assignment gives the program's peak exactly, on every backend.
_METHOD = "saved: jax.vjp residuals (distinct buffers); peak: XLA memory_analysis (temp + output)"
MEMORY_METHOD = {"cpu": _METHOD, "cuda": _METHOD}


def available() -> bool:
    return importlib.util.find_spec("jax") is not None


def version() -> str:
    return importlib.metadata.version("jax") if available() else ""


def configure(threads: int, allow_tf32: bool, seed: int) -> dict[str, Any]:
    # XLA's CPU thread pool has no public knob: the worker pins the process to
    # `threads` cores instead (see bench.measure.worker), which bounds it the same way.
    # No preallocation of GPU memory: the runner sets
    # XLA_PYTHON_CLIENT_PREALLOCATE=false before JAX starts.
    import jax

    precision = "tensorfloat32" if allow_tf32 else "float32"
    jax.config.update("jax_default_matmul_precision", precision)
    return {
        "matmul_precision": precision,
        "x64": bool(jax.config.read("jax_enable_x64")),  # set dynamically: not an attribute to mypy
        "backend": jax.default_backend(),
        "jaxlib": importlib.metadata.version("jaxlib"),
    }


def _gpus() -> list[Any]:
    import jax

    try:
        return jax.devices("gpu")
    except RuntimeError:  # no GPU backend in this jaxlib
        return []


def devices() -> list[str]:
    return ["cpu"] + [f"cuda:{i}" for i in range(len(_gpus()))]


def resolve_device(device: Device | str) -> tuple[Any, str]:
    import jax

    device = as_device(device)
    if not device.is_gpu:
        return jax.devices("cpu")[0], "cpu"
    gpus = _gpus()
    if not gpus:
        raise DeviceUnavailable(
            f"jax {jax.__version__} sees no GPU (install jax[cuda12] for NVIDIA GPUs)"
        )
    if device.index >= len(gpus):
        raise DeviceUnavailable(f"jax sees {len(gpus)} GPUs, not {device}")
    return gpus[device.index], gpus[device.index].device_kind


def to_device(array: np.ndarray, device: Any) -> Any:
    import jax

    return jax.device_put(np.asarray(array, dtype=np.float32), device)


def to_numpy(x: Any) -> np.ndarray:
    return np.asarray(x)


def sync(out: Any, device: Any) -> None:
    # JAX dispatches asynchronously on every backend, the CPU included.
    import jax

    jax.block_until_ready(out)


def matmul(device: Any, n: int) -> Callable[[Any], Any]:
    import jax

    a = jax.device_put(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32), device)
    product = jax.jit(lambda a: a @ a)
    return lambda _: product(a)


def flusher(device: Any, nbytes: int) -> Callable[[], Any]:
    import jax
    import jax.numpy as jnp

    if device.platform == "cpu":
        return cpu_flusher(nbytes)
    # JAX arrays are immutable: each flush writes a fresh buffer, which the
    # allocator hands back from its pool, so nothing is allocated from CUDA.
    # The output lives where the (committed) input lives.
    one = jax.device_put(np.float32(1.0), device)
    fill = jax.jit(lambda v: jnp.full((nbytes // 4,), v, jnp.float32))
    return lambda: fill(one)


def _distinct_bytes(tree: Any) -> float:
    """Bytes of the distinct device buffers among the arrays of ``tree``."""
    import jax

    buffers: dict[Any, int] = {}
    for leaf in jax.tree_util.tree_leaves(tree):
        if isinstance(leaf, jax.Array):
            key = leaf.unsafe_buffer_pointer() if leaf.is_fully_addressable else id(leaf)
            buffers[key] = leaf.nbytes
    return float(sum(buffers.values()))


def _compiled_peak(fn: Any, *args: Any) -> float:
    """Temporaries plus outputs of the compiled program: the extra bytes one call needs."""
    stats = fn.lower(*args).compile().memory_analysis()
    if stats is None:
        return math.nan
    return float(stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes)


def implement(
    loss: Callable[..., Any], problem: Problem, device: Any, mode: str, lr: float,
    optimizer: Optimizer | None = None,
) -> Implementation:
    if mode not in MODES:
        raise ValueError(f"jax mode {mode!r} is not supported (modes: {', '.join(MODES)})")
    X, y = to_device(problem.X, device), to_device(problem.y, device)
    params = [to_device(p, device) for p in problem.params]
    traced = 0

    def counted(*args: Any) -> Any:
        # Python runs only while JAX traces, so this counts (re)traces.
        nonlocal traced
        traced += 1
        return loss(*args)

    forward_fn, gradient_fn, record_fn, backward_fn, step_fn = _compiled(counted, lr, optimizer)

    def make_step():
        return _training_step(step_fn, params, X, y, optimizer)

    def train(n: int) -> list[float]:
        step = make_step()
        return [float(step(None)[0]) for _ in range(n)]

    def loss_and_grads() -> tuple[float, list[np.ndarray]]:
        value, grads = gradient_fn(params, X, y)
        return float(value), [np.asarray(g) for g in grads]

    def record() -> Any:
        return record_fn(params, X, y)

    def peak_bytes(phase: Phase) -> float:
        state = optimizer.init(list(params)) if optimizer else None
        compiled = {
            "forward": (forward_fn, params, X, y),
            "gradient": (gradient_fn, params, X, y),
            "backward_split": (backward_fn, record()),
            "step": (step_fn, params, state, X, y),
        }
        fn, *args = compiled[phase.name]
        return _compiled_peak(fn, *args)

    return Implementation(
        phases=(
            Phase("forward", lambda _: forward_fn(params, X, y)),
            Phase("gradient", lambda _: gradient_fn(params, X, y)),
            Phase("backward_split", backward_fn, prepare=record),
            Phase("step", make_step()),
        ),
        loss_and_grads=loss_and_grads,
        train=train,
        traces=lambda: traced,
        skipped=skipped(UNSUPPORTED, mode),
        # The residuals of jax.vjp are what the backward pass is handed.
        saved_bytes=lambda: _distinct_bytes(record()),
        peak_bytes=peak_bytes,
    )


def _training_step(step_fn, params: list, X: Any, y: Any, optimizer: Optimizer | None):
    """A training step of no argument that trains its own copy of the parameters."""
    trained = list(params)
    state = optimizer.init(trained) if optimizer else None

    def step(_: Any) -> Any:
        nonlocal trained, state
        value, trained, state = step_fn(trained, state, X, y)
        return value, trained, state

    return step


def _compiled(loss, lr: float, optimizer: Optimizer | None) -> tuple:
    """The jitted forward, value-and-gradient, split (record, backward) and training step of ``loss``."""
    import jax
    import jax.numpy as jnp

    forward_fn = jax.jit(loss)
    gradient_fn = jax.jit(jax.value_and_grad(loss))
    # The split: vjp runs the forward pass and keeps its residuals; calling
    # the returned function runs only the backward pass.
    record_fn = jax.jit(lambda p, X, y: jax.vjp(lambda q: loss(q, X, y), p)[1])
    backward_fn = jax.jit(lambda vjp: vjp(jnp.ones((), jnp.float32))[0])

    @jax.jit
    def step_fn(p, state, X, y):
        value, grads = jax.value_and_grad(loss)(p, X, y)
        if optimizer:
            p, state = optimizer.update(p, grads, state, lr)
        else:
            p = [w - lr * g for w, g in zip(p, grads, strict=True)]
        return value, p, state

    return forward_fn, gradient_fn, record_fn, backward_fn, step_fn
