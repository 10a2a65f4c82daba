"""What the framework modules share: the phases they hand out, their implementation record, lookup."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from bench.core.device import Device
from bench.core.records import FRAMEWORKS


@dataclass(frozen=True)
class Phase:
    """One thing to time.

    ``run(state)`` is the timed call. ``prepare()`` runs untimed before each
    block and its result is passed to every call of ``run`` in that block: the
    direct backward split prepares a recorded forward pass once and times
    only the backward pass through it.
    """

    name: str
    run: Callable[[Any], Any]
    prepare: Callable[[], Any] | None = None


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
    return importlib.import_module(f"bench.backends.{name}")


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
