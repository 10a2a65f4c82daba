"""What a suite hands to bench: its data and parameters, its FLOP and memory theory, its optimizer.

A suite is a plain Python module (``bench.catalog.loader`` says what it must
define); everything it returns to the harness is one of these frozen dataclasses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt


@dataclass(frozen=True)
class Problem:
    """Data and initial parameters of one case, made once in NumPy.

    Every framework loads these same arrays, so the models start identical.
    """

    # Arrays of the case's dtype (float32 by default, whatever the suite makes).
    X: npt.NDArray[Any]
    y: npt.NDArray[Any]
    params: tuple[npt.NDArray[Any], ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.params) != len(self.names):
            raise ValueError("one name per parameter array")


@dataclass(frozen=True)
class Flops:
    """Analytic floating-point operation counts of one call of each phase."""

    forward: int
    gradient: int

    @property
    def ratio(self) -> float:
        """Theoretical R: FLOPs(loss and gradient) / FLOPs(loss)."""
        return self.gradient / self.forward if self.forward else math.nan


@dataclass(frozen=True)
class Memory:
    """Analytic memory of one case, in bytes, beside ``Flops`` as R's theory is.

    ``saved``: what the backward pass keeps from the forward pass (the
    activations it needs, and the weights it multiplies by), the theory of
    the measured ``saved_bytes``. ``forward`` and ``gradient``: the extra
    bytes live at the peak of one call of each phase, beyond the inputs and
    parameters resident before it, in eager execution (each operation makes
    one array, freed when nothing refers to it any more: what torch's
    allocator sees; a compiler such as XLA may fuse arrays away or keep
    more). Their quotient is the theory of M = peak(gradient) / peak(forward).
    """

    saved: int
    forward: int
    gradient: int

    @property
    def ratio(self) -> float:
        """Theoretical M: peak extra bytes of the gradient over the forward pass's."""
        return self.gradient / self.forward if self.forward else math.nan


@dataclass(frozen=True)
class Optimizer:
    """A suite's hand-written optimizer for one framework (plain SGD when absent).

    ``init(params) -> state``; ``update(params, grads, state, lr) -> (params, state)``.
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any, float], tuple[Any, Any]]
