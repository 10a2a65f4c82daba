"""The static check that each framework module implements ``Framework``.

mypy accepts a module where a protocol is expected when the module's names
match the protocol's members, so assigning each module to a ``Framework``
variable makes mypy compare every constant and signature. It happens only
under ``TYPE_CHECKING``: importing this module at run time imports no framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.backends import jax, tensorflow, torch
    from bench.backends.common import Framework

    _torch: Framework = torch
    _tensorflow: Framework = tensorflow
    _jax: Framework = jax
