"""Peak memory of one call on the CPU, from the process's resident set (Linux).

Framework allocators keep exact statistics on GPUs (each framework module
uses its own); on the CPU torch and TensorFlow keep none, so bench measures
what the operating system sees, the same way for every framework:

1. ``malloc_trim(0)`` hands the C allocator's free pages back to the kernel,
   so memory freed by earlier calls does not hide new allocations;
2. writing ``5`` to ``/proc/self/clear_refs`` resets the high-water mark
   ``VmHWM`` to the current resident set;
3. the call runs (and syncs); ``VmHWM`` minus the resident set before the
   call is the extra memory it touched at its peak.

Pages are 4 KiB and other threads of the process allocate too, so the
figure is exact to a few pages for large cases and noise for tiny ones.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in {_STATUS}")


def _trim() -> None:
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if hasattr(libc, "malloc_trim"):  # glibc only; musl and macOS lack it
        libc.malloc_trim(0)


def rss_supported() -> str:
    """'' when the RSS method works here, else the reason it does not."""
    try:
        _status_kib("VmHWM")
        _CLEAR_REFS.write_text("5")
    except OSError as exc:
        return f"no resettable RSS high-water mark here ({exc.strerror or exc})"
    return ""


def rss_peak(call: Callable[[], Any]) -> float:
    """Extra resident bytes at the peak of ``call()`` (NaN where the method does not work)."""
    if rss_supported():
        return math.nan
    gc.collect()
    _trim()
    before = _status_kib("VmRSS")
    _CLEAR_REFS.write_text("5")
    call()
    return float(max(_status_kib("VmHWM") - before, 0) * 1024)
