"""bench: times the forward pass against the backward pass of the same models
in PyTorch, TensorFlow and JAX, on every device asked for.

``import bench`` imports no framework and no heavy library: each framework is
imported only inside the worker process that measures it. The names below are
bench's public API: ``load`` reads results; a suite module builds its
``Problem``, ``Flops`` and ``Memory`` (and ``Optimizer``) from here.

The packages, by layer (each imports only from the ones before it):
``core`` (records, cases, devices, errors), ``stats`` (intervals, tests,
verdicts), ``store`` (the results format, writing, reading), ``catalog``
(user suites) and ``backends`` (torch, tensorflow, jax), ``measure`` (inside a
worker), ``execute`` (the runner's side of a run), ``present`` (terminal and
report), ``interop`` (other tools' formats), ``cli`` (the command line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Flops", "Memory", "Optimizer", "Problem", "UserError", "__version__", "load"]

from bench.core.errors import UserError

if TYPE_CHECKING:
    from bench.core.contract import Flops, Memory, Optimizer, Problem
    from bench.store.reader import load

_CONTRACT = ("Flops", "Memory", "Optimizer", "Problem")


def __getattr__(name: str) -> Any:
    # pandas and pyarrow load only when results are read, NumPy when a suite asks.
    if name == "load":
        from bench.store.reader import load

        return load
    if name in _CONTRACT:
        from bench.core import contract

        return getattr(contract, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
