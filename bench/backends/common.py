"""What the framework modules share: their interface (``Framework``), the phases they hand out,
their implementation record, lookup."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np

from bench.core.contract import Optimizer, Problem
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


class Framework(Protocol):
    """The interface of a framework module: ``bench/backends/{torch,tensorflow,jax}.py``.

    Each of the three modules implements every member at module level, with
    these exact signatures (``self`` aside); mypy checks them against this
    protocol statically (``bench.backends.conformance``) and
    ``tests/backends/test_frameworks.py`` by introspection. Only ``available`` and
    ``version`` are safe before the worker has decided to use the framework:
    every other function imports it.
    """

    NAME: str
    """The framework's name, as in ``bench.core.records.FRAMEWORKS`` and the module's name."""
    MODES: tuple[str, ...]
    """How the framework can execute the model (``eager``, ``compile``, ``jit``, ...)."""
    DEFAULT_MODE: str
    """The mode run when none is asked for; one of ``MODES``."""
    DEVICE_KINDS: tuple[str, ...]
    """The device kinds it can run on (of ``bench.core.device.KINDS``)."""
    UNSUPPORTED: dict[tuple[str, str], str]
    """``{(mode, phase): reason}`` for the phases a mode cannot offer."""
    MEMORY_METHOD: dict[str, str]
    """``{device kind: text}``: how saved and peak bytes are measured there (stored with every row)."""

    def available(self) -> bool:
        """Whether the framework is installed, without importing it."""

    def version(self) -> str:
        """The installed framework's version, without importing it ("" when not installed)."""

    def configure(self, threads: int, allow_tf32: bool, seed: int) -> dict[str, Any]:
        """Set threads, numerics, memory and seeds before any work; return the settings in effect."""

    def devices(self) -> list[str]:
        """The device specs (``cpu``, ``cuda:N``) this framework can use here."""

    def resolve_device(self, device: Device | str) -> tuple[Any, str]:
        """The framework's own device object for ``device`` and the device's name.

        Raises ``DeviceUnavailable``, with the reason, where the framework cannot use it.
        """

    def to_device(self, array: np.ndarray, device: Any) -> Any:
        """``array`` as a float32 array of the framework's on ``device``."""

    def to_numpy(self, x: Any) -> np.ndarray:
        """A framework array as a NumPy array."""

    def sync(self, out: Any, device: Any) -> None:
        """Wait until ``out`` (and all work queued on ``device``) is computed."""

    def matmul(self, device: Any, n: int) -> Callable[[Any], Any]:
        """A call of an ``n x n`` float32 matrix product on ``device``.

        Timed once per worker to measure the device's peak FLOP/s in this framework.
        """

    def flusher(self, device: Any, nbytes: int) -> Callable[[], Any]:
        """A call that overwrites ``nbytes`` on ``device`` (the ``--l2 flush`` policy).

        It returns what to ``sync`` on.
        """

    def implement(
        self,
        loss: Callable[..., Any],
        problem: Problem,
        device: Any,
        mode: str,
        lr: float,
        optimizer: Optimizer | None = None,
    ) -> Implementation:
        """``loss`` made runnable on ``problem`` in ``mode`` on ``device``.

        The result holds the phases to time, the loss and gradients to check,
        a training run with learning rate ``lr`` (``optimizer``, or plain SGD
        when None), a count of traces and compilations (to catch recompiles
        while timing), and the memory probes. Raises ``ValueError`` for a mode
        not in ``MODES``.
        """


def get(name: str) -> Framework:
    """The bench module for framework ``name`` (it imports the framework only when used)."""
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}")
    # A module is no instance of a class: isinstance cannot check it, mypy does (conformance.py).
    return cast(Framework, importlib.import_module(f"bench.backends.{name}"))


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
