"""PyTorch: eager mode or torch.compile, autograd, CUDA sync."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.backends import DeviceUnavailable, Implementation, Phase, as_device, cpu_flusher, skipped
from bench.core.contract import Optimizer, Problem
from bench.core.device import Device

NAME = "torch"
MODES: tuple[str, ...] = ("eager", "compile")
DEFAULT_MODE = "eager"
DEVICE_KINDS: tuple[str, ...] = ("cpu", "cuda")
UNSUPPORTED: dict[tuple[str, str], str] = {}
MEMORY_METHOD = {
    "cpu": "saved: autograd saved_tensors_hooks (unique storages); peak: allocations seen by "
           "torch.profiler (profile_memory)",
    "cuda": "saved: autograd saved_tensors_hooks (unique storages); peak: torch.cuda.max_memory_allocated",
}


def available() -> bool:
    return importlib.util.find_spec("torch") is not None


def version() -> str:
    return importlib.metadata.version("torch") if available() else ""


def configure(threads: int, allow_tf32: bool, seed: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # settable only before the first parallel work
        torch.set_num_interop_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    torch.set_float32_matmul_precision("high" if allow_tf32 else "highest")
    torch.manual_seed(seed)
    return {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cuda_build": torch.version.cuda or "",
    }


def devices() -> list[str]:
    import torch

    return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def resolve_device(device: Device | str) -> tuple[Any, str]:
    import torch

    device = as_device(device)
    if not device.is_gpu:
        return torch.device("cpu"), "cpu"
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise DeviceUnavailable(f"torch {torch.__version__} ({build}) sees no CUDA device")
    if device.index >= torch.cuda.device_count():
        raise DeviceUnavailable(f"torch sees {torch.cuda.device_count()} CUDA devices, not {device}")
    return torch.device("cuda", device.index), torch.cuda.get_device_name(device.index)


def to_device(array: np.ndarray, device: Any) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)


def to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy()


def sync(out: Any, device: Any) -> None:
    # CPU kernels run synchronously; CUDA kernels are queued on a stream.
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def matmul(device: Any, n: int) -> Callable[[Any], Any]:
    import torch

    a = torch.randn(n, n, device=device, dtype=torch.float32)
    return lambda _: a @ a


def flusher(device: Any, nbytes: int) -> Callable[[], Any]:
    import torch

    if device.type != "cuda":
        return cpu_flusher(nbytes)
    buf = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    return buf.zero_


def _saved_bytes(record: Any) -> float:
    """Bytes of the distinct storages autograd saves while ``record()`` runs a forward pass."""
    import torch

    storages: dict[int, int] = {}

    def pack(t: Any) -> Any:
        # Views share a storage (a weight and its transpose): count it once.
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        value = record()
    del value
    return float(sum(storages.values()))


def _cuda_peak(device: Any):
    import torch

    def peak(phase: Phase) -> float:
        state = phase.prepare() if phase.prepare is not None else None
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        out = phase.run(state)
        torch.cuda.synchronize(device)
        del out
        return float(torch.cuda.max_memory_allocated(device) - before)

    return peak


def _profiled_peak(phase: Phase) -> float:
    """Peak of the running sum of CPU allocations and frees that the profiler records in one call.

    torch's CPU allocator keeps no statistics, but with ``profile_memory``
    the profiler logs every allocation and free with its size: their running
    sum is exact, where the process's resident set also sees other threads.
    """
    from torch.profiler import ProfilerActivity, profile

    state = phase.prepare() if phase.prepare is not None else None
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = phase.run(state)
    del out
    try:
        events = prof.profiler.kineto_results.events()
        sizes = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    except AttributeError:  # the profiler's private result API changed
        return math.nan
    total = top = 0
    for _, nbytes in sizes:
        total += nbytes
        top = max(top, total)
    return float(top)


def _traces() -> int:
    import torch._dynamo.utils

    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def implement(
    loss: Callable[..., Any], problem: Problem, device: Any, mode: str, lr: float,
    optimizer: Optimizer | None = None,
) -> Implementation:
    import torch

    fn = _in_mode(loss, mode)
    X, y = to_device(problem.X, device), to_device(problem.y, device)
    params = [to_device(p, device).requires_grad_(True) for p in problem.params]

    def forward(_: Any) -> Any:
        with torch.no_grad():  # no tape: the forward baseline must not record
            return fn(params, X, y)

    def gradient(_: Any) -> Any:
        value = fn(params, X, y)
        return value, torch.autograd.grad(value, params)

    def record_forward() -> Any:
        return fn(params, X, y)

    def backward(value: Any) -> Any:
        # The same engine as loss.backward(), minus accumulating into .grad;
        # retain_graph lets one recorded forward serve every call of a block.
        return torch.autograd.grad(value, params, retain_graph=True)

    def make_step():
        return _training_step(fn, params, X, y, lr, optimizer)

    def train(n: int) -> list[float]:
        step = make_step()
        return [float(step(None).item()) for _ in range(n)]

    def loss_and_grads() -> tuple[float, list[np.ndarray]]:
        value, grads = gradient(None)
        return float(value.item()), [to_numpy(g) for g in grads]

    return Implementation(
        phases=(
            Phase("forward", forward),
            Phase("gradient", gradient),
            Phase("backward_split", backward, prepare=record_forward),
            Phase("step", make_step()),
        ),
        loss_and_grads=loss_and_grads,
        train=train,
        traces=_traces if mode == "compile" else (lambda: 0),
        skipped=skipped(UNSUPPORTED, mode),
        saved_bytes=lambda: _saved_bytes(record_forward),
        peak_bytes=_cuda_peak(device) if device.type == "cuda" else _profiled_peak,
    )


def _in_mode(loss, mode: str):
    """The loss as the mode runs it: as written (eager) or through torch.compile."""
    if mode not in MODES:
        raise ValueError(f"torch mode {mode!r} is not supported (modes: {', '.join(MODES)})")
    if mode != "compile":
        return loss
    import torch
    import torch._functorch.config

    # A compiled backward may reuse ("donate") its saved buffers, which
    # forbids running it twice on one graph, as the direct split does.
    torch._functorch.config.donated_buffer = False
    # torch.compile compiles the model; autograd then runs its compiled backward.
    return torch.compile(loss)


def _training_step(fn, params: list, X: Any, y: Any, lr: float, optimizer: Optimizer | None):
    """A training step of no argument. It trains its own copy of the parameters, so
    forward and gradient keep timing the initial ones."""
    import torch

    trained = [p.detach().clone().requires_grad_(True) for p in params]
    state = optimizer.init(trained) if optimizer else None

    def step(_: Any) -> Any:
        nonlocal trained, state
        value = fn(trained, X, y)
        grads = torch.autograd.grad(value, trained)
        with torch.no_grad():
            if optimizer:
                trained, state = optimizer.update(trained, grads, state, lr)
            else:
                for p, g in zip(trained, grads, strict=True):
                    p.sub_(g, alpha=lr)
        return value

    return step
