"""TensorFlow: tf.function (default), with XLA, or eager; GradientTape; device sync."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.backends import DeviceUnavailable, Implementation, Phase, as_device, cpu_flusher, skipped
from bench.core.contract import Optimizer, Problem
from bench.core.device import Device

NAME = "tensorflow"
# function: tf.function (graph); xla: tf.function(jit_compile=True); eager: op by op.
MODES: tuple[str, ...] = ("function", "xla", "eager")
DEFAULT_MODE = "function"
DEVICE_KINDS: tuple[str, ...] = ("cpu", "cuda")
_GRAPH_SPLIT = ("tf.function traces forward and backward into one graph; "
                "the direct split exists only in eager mode")
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("function", "backward_split"): _GRAPH_SPLIT, ("xla", "backward_split"): _GRAPH_SPLIT,
}
# TensorFlow has no public view of the tensors a GradientTape keeps.
_NO_SAVED = "saved: not exposed by TensorFlow's GradientTape"
# TensorFlow's default CPU allocator keeps freed memory for reuse, out of
# sight of the resident set, and counts nothing; its BFC allocator (opt-in on
# the CPU) counts. Measured: the RSS saw 8 KiB for a 2 MiB activation.
_CPU_BFC = os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("1", "true")
MEMORY_METHOD = {
    "cpu": f"{_NO_SAVED}; peak: " + (
        "tf.config.experimental.get_memory_info (BFC allocator)" if _CPU_BFC else
        "not measured: the default CPU allocator reuses memory unseen (set TF_CPU_ALLOCATOR_USE_BFC=true)"),
    "cuda": f"{_NO_SAVED}; peak: tf.config.experimental.get_memory_info",
}
_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly")


def available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def version() -> str:
    for dist in _DISTRIBUTIONS:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


def configure(threads: int, allow_tf32: bool, seed: int) -> dict[str, Any]:
    import tensorflow as tf

    # Must happen before TensorFlow creates its runtime (the first op).
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    tf.config.experimental.enable_tensor_float_32_execution(allow_tf32)
    tf.random.set_seed(seed)
    build = tf.sysconfig.get_build_info()
    return {
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
        "synchronous_execution": tf.config.experimental.get_synchronous_execution(),
        "cuda_build": str(build.get("cuda_version", "")),
    }


def devices() -> list[str]:
    import tensorflow as tf

    return ["cpu"] + [f"cuda:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]


def resolve_device(device: Device | str) -> tuple[Any, str]:
    import tensorflow as tf

    device = as_device(device)
    if not device.is_gpu:
        return "/CPU:0", "cpu"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        built = "built with CUDA" if tf.test.is_built_with_cuda() else "a CPU-only build"
        raise DeviceUnavailable(f"tensorflow {tf.__version__} ({built}) sees no GPU")
    if device.index >= len(gpus):
        raise DeviceUnavailable(f"tensorflow sees {len(gpus)} GPUs, not {device}")
    details = tf.config.experimental.get_device_details(gpus[device.index])
    return f"/GPU:{device.index}", str(details.get("device_name", gpus[device.index].name))


def to_device(array: np.ndarray, device: Any) -> Any:
    import tensorflow as tf

    with tf.device(device):
        return tf.identity(tf.constant(np.asarray(array, dtype=np.float32)))


def to_numpy(x: Any) -> np.ndarray:
    return x.numpy()


def sync(out: Any, device: Any) -> None:
    # On the CPU, TensorFlow executes synchronously (configure() records
    # this), so results are ready when a call returns. GPU kernels are queued.
    if device != "/CPU:0":
        import tensorflow as tf

        tf.test.experimental.sync_devices()


def matmul(device: Any, n: int) -> Callable[[Any], Any]:
    import tensorflow as tf

    with tf.device(device):
        a = tf.random.stateless_normal((n, n), seed=(0, 0), dtype=tf.float32)
    product = tf.function(lambda: tf.matmul(a, a))
    return lambda _: product()


def flusher(device: Any, nbytes: int) -> Callable[[], Any]:
    import tensorflow as tf

    if device == "/CPU:0":
        return cpu_flusher(nbytes)
    with tf.device(device):
        buf = tf.Variable(tf.zeros(nbytes // 4, tf.float32))
    return lambda: buf.assign(tf.ones_like(buf))


def _allocator_peak(device: str):
    import tensorflow as tf

    name = device.lstrip("/")  # "GPU:0", as the memory API names it

    def peak(phase: Phase) -> float:
        state = phase.prepare() if phase.prepare is not None else None
        tf.test.experimental.sync_devices()
        before = tf.config.experimental.get_memory_info(name)["current"]
        tf.config.experimental.reset_memory_stats(name)
        out = phase.run(state)
        tf.test.experimental.sync_devices()
        del out
        return float(tf.config.experimental.get_memory_info(name)["peak"] - before)

    return peak


def _unmeasured(phase: Phase) -> float:
    return math.nan


def _compiler(mode: str, device: Any, functions: list[Any]):
    """How a function runs in ``mode``: placed on the device, and traced unless eager."""
    import tensorflow as tf

    def compile_(fn):
        def placed(*args):
            # Inside tf.function the device scope is applied when tracing.
            with tf.device(device):
                return fn(*args)

        if mode == "eager":
            return placed
        compiled = tf.function(placed, jit_compile=mode == "xla")
        functions.append(compiled)  # counted by traces()
        return compiled

    return compile_


def _step_maker(compile_, loss, problem: Problem, X: Any, y: Any, device: Any,
                optimizer: Optimizer | None, lr: float):
    """A factory of training-step functions, each on its own copy of the initial variables."""
    import tensorflow as tf

    def make_step():
        # Each step function trains its own variables, so forward and
        # gradient keep timing the initial parameters.
        with tf.device(device):
            trained = [tf.Variable(to_device(p, device)) for p in problem.params]
            state = optimizer.init(trained) if optimizer else None

        @compile_
        def step_fn():
            with tf.GradientTape() as tape:
                value = loss(trained, X, y)
            grads = tape.gradient(value, trained)
            if optimizer:
                updated, _ = optimizer.update(trained, grads, state, lr)
                # Variables must be assigned to: new tensors returned instead
                # would never reach the next call, and nothing would train.
                if any(u is not v for u, v in zip(updated, trained, strict=True)):
                    raise TypeError("update_tensorflow must assign to the variables it is given "
                                    "and return them")
            else:
                for v, g in zip(trained, grads, strict=True):
                    v.assign_sub(lr * g)
            return value

        return step_fn

    return make_step


def _eager_split(loss, params: list[Any], X: Any, y: Any, device: Any) -> Phase:
    """The backward pass alone, through a persistent tape recorded untimed before each block."""
    import tensorflow as tf

    def record_forward() -> Any:
        tape = tf.GradientTape(persistent=True)  # persistent: one tape, many calls
        with tf.device(device), tape:
            value = loss(params, X, y)
        return tape, value

    def backward(state: Any) -> Any:
        tape, value = state
        with tf.device(device):
            return tape.gradient(value, params)

    return Phase("backward_split", backward, prepare=record_forward)


def implement(
    loss: Callable[..., Any], problem: Problem, device: Any, mode: str, lr: float,
    optimizer: Optimizer | None = None,
) -> Implementation:
    import tensorflow as tf

    if mode not in MODES:
        raise ValueError(f"tensorflow mode {mode!r} is not supported (modes: {', '.join(MODES)})")
    X, y = to_device(problem.X, device), to_device(problem.y, device)
    with tf.device(device):
        params = [tf.Variable(to_device(p, device)) for p in problem.params]
    functions: list[Any] = []
    compile_ = _compiler(mode, device, functions)

    @compile_
    def forward_fn():
        return loss(params, X, y)  # no tape: nothing is recorded

    @compile_
    def gradient_fn():
        with tf.GradientTape() as tape:
            value = loss(params, X, y)
        return value, tape.gradient(value, params)

    make_step = _step_maker(compile_, loss, problem, X, y, device, optimizer, lr)
    step_fn = make_step()
    phases = [
        Phase("forward", lambda _: forward_fn()),
        Phase("gradient", lambda _: gradient_fn()),
        *([_eager_split(loss, params, X, y, device)] if mode == "eager" else []),
        Phase("step", lambda _: step_fn()),
    ]

    def train(n: int) -> list[float]:
        fn = make_step()
        return [float(fn().numpy()) for _ in range(n)]

    def loss_and_grads() -> tuple[float, list[np.ndarray]]:
        value, grads = gradient_fn()
        return float(value.numpy()), [g.numpy() for g in grads]

    def traces() -> int:
        return sum(int(f.experimental_get_tracing_count()) for f in functions)

    return Implementation(
        tuple(phases), loss_and_grads, train, traces, skipped(UNSUPPORTED, mode),
        peak_bytes=_allocator_peak(device) if device != "/CPU:0" or _CPU_BFC else _unmeasured,
    )
