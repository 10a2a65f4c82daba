"""One interface over three frameworks: mirrored modules with the same names.

``bench/frameworks/{torch,tensorflow,jax}.py`` each define:

- ``MODES``, ``DEFAULT_MODE``: how the framework can execute the model.
- ``available() -> bool`` and ``version() -> str``: without importing it.
- ``configure(threads, allow_tf32, seed) -> dict``: threads, numerics, memory
  and seeds, set before any work; returns the settings actually in effect.
- ``resolve_device(spec) -> (device, name)``: ``cpu``, ``cuda``, ``cuda:N`` to
  the framework's own device, or ``DeviceUnavailable`` with the reason.
- ``devices() -> list[str]``: the device specs this framework can use here.
- ``to_device(array, device)``, ``to_numpy(x)``: placing and reading data.
- ``sync(out, device)``: wait until ``out`` (and all queued work) is computed.
- ``implement(loss, problem, device, mode, lr, optimizer) -> Implementation``:
  the phases to time, the loss and gradients to check, a training run, and a
  count of traces and compilations (to catch recompiles while timing).

Only ``available`` and ``version`` are safe before the worker has decided to
use the framework; everything else imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

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
    """

    phases: tuple[Phase, ...]
    loss_and_grads: Callable[[], tuple[float, list[np.ndarray]]]
    train: Callable[[int], list[float]]
    traces: Callable[[], int] = lambda: 0
    skipped: dict[str, str] = field(default_factory=dict)


def get(name: str) -> ModuleType:
    """The bench module for framework ``name`` (it imports the framework only when used)."""
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}")
    return importlib.import_module(f"bench.frameworks.{name}")


def parse_cuda(spec: str) -> int:
    """``cuda`` -> 0, ``cuda:N`` -> N."""
    return int(spec.split(":", 1)[1]) if ":" in spec else 0
