"""One interface over three frameworks: mirrored modules with the same names.

``bench/backends/{torch,tensorflow,jax}.py`` each implement ``Framework``
(``bench.backends.common``), whose members and docstrings are the interface;
``get(name)`` returns one of them. mypy checks the modules against it
(``bench.backends.conformance``), and so does ``tests/backends/test_frameworks.py``.
"""

from __future__ import annotations

from bench.backends.common import (
    DeviceUnavailable,
    Framework,
    Implementation,
    Phase,
    as_device,
    cpu_flusher,
    get,
    skipped,
)

__all__ = [
    "DeviceUnavailable",
    "Framework",
    "Implementation",
    "Phase",
    "as_device",
    "cpu_flusher",
    "get",
    "skipped",
]
