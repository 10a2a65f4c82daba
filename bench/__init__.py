"""bench: times the forward pass against the backward pass of the same models
in PyTorch, TensorFlow and JAX, on every device asked for.

``import bench`` imports no framework and no heavy library: each framework is
imported only inside the worker process that measures it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["UserError", "__version__", "load"]

from bench.errors import UserError

if TYPE_CHECKING:
    from bench.store import load


def __getattr__(name: str) -> Any:
    # pandas and pyarrow load only when results are read.
    if name == "load":
        from bench.store import load

        return load
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
