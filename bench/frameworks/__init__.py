"""One interface over three frameworks: mirrored modules with the same names.

``bench/frameworks/{torch,tensorflow,jax}.py`` each define:

- ``MODES``, ``DEFAULT_MODE``: how the framework can execute the model.
- ``DEVICE_KINDS``: the device kinds it can run on (``bench.device.KINDS``).
- ``UNSUPPORTED``: ``{(mode, phase): reason}`` for phases a mode cannot offer.
- ``MEMORY_METHOD``: ``{device kind: text}``, how saved and peak bytes are
  measured there (stored with every row).
- ``available() -> bool`` and ``version() -> str``: without importing it.
- ``configure(threads, allow_tf32, seed) -> dict``: threads, numerics, memory
  and seeds, set before any work; returns the settings actually in effect.
- ``resolve_device(device) -> (native, name)``: a ``bench.device.Device`` (or
  its text) to the framework's own device object and the device's name, or
  ``DeviceUnavailable`` with the reason.
- ``devices() -> list[str]``: the device specs this framework can use here.
- ``to_device(array, device)``, ``to_numpy(x)``: placing and reading data.
- ``sync(out, device)``: wait until ``out`` (and all queued work) is computed.
- ``matmul(device, n) -> run``: a call of an ``n x n`` float32 matrix product,
  timed once per worker to measure the device's peak FLOP/s in this framework.
- ``flusher(device, nbytes) -> flush``: a call that overwrites ``nbytes`` on
  the device (the ``--l2 flush`` cache policy); returns what to sync on.
- ``implement(loss, problem, device, mode, lr, optimizer) -> Implementation``:
  the phases to time, the loss and gradients to check, a training run, a
  count of traces and compilations (to catch recompiles while timing), and
  the memory probes (bytes saved for the backward pass, peak bytes per phase).

Only ``available`` and ``version`` are safe before the worker has decided to
use the framework; everything else imports it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from bench.device import Device
from bench.spec import FRAMEWORKS
from bench.timing import Phase


class DeviceUnavailable(Exception):
    """The framework cannot use the requested device here; the message says why."""


@dataclass(frozen=True)
class Implementation:
    """A model made runnable in one framework, mode and device.

    ``phases`` are timed in this order; ``skipped`` names phases that this
    framework and mode cannot offer, with the reason. ``loss_and_grads`` runs
    the gradient once and returns NumPy values for the equivalence check.
    ``train(n)`` takes ``n`` optimizer steps from the initial parameters (on
    its own copy) and returns the loss before each. ``traces()`` counts the
    traces and compilations so far: it must not grow while timing.

    ``saved_bytes()`` records one forward pass and returns the bytes the
    framework keeps from it for the backward pass (NaN where the framework
    does not expose them). ``peak_bytes(phase)`` returns the extra bytes at
    the peak of one call of ``phase``; None means "no allocator statistics
    here": the worker then measures the process's resident set.
    """

    phases: tuple[Phase, ...]
    loss_and_grads: Callable[[], tuple[float, list[np.ndarray]]]
    train: Callable[[int], list[float]]
    traces: Callable[[], int] = lambda: 0
    skipped: dict[str, str] = field(default_factory=dict)
    saved_bytes: Callable[[], float] = lambda: math.nan
    peak_bytes: Callable[[Phase], float] | None = None


def get(name: str) -> ModuleType:
    """The bench module for framework ``name`` (it imports the framework only when used)."""
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}")
    return importlib.import_module(f"bench.frameworks.{name}")


def as_device(device: Device | str) -> Device:
    """A ``Device`` from a ``Device`` or its text (``cpu``, ``cuda``, ``cuda:N``)."""
    return device if isinstance(device, Device) else Device.parse(device)


def skipped(unsupported: dict[tuple[str, str], str], mode: str) -> dict[str, str]:
    """The phases ``mode`` cannot offer, from a module's ``UNSUPPORTED``, with the reasons."""
    return {phase: why for (m, phase), why in unsupported.items() if m == mode}


def cpu_flusher(nbytes: int) -> Callable[[], Any]:
    """Overwrite ``nbytes`` of host memory: evicts the CPU caches for every framework alike."""
    buf = np.empty(max(nbytes // 8, 1), dtype=np.float64)

    def flush() -> None:
        buf.fill(1.0)

    return flush
