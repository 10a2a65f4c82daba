"""Devices as values: ``cpu`` and ``cuda:N`` parsed once, asked by property.

Every place that must treat a GPU differently (sync, tolerances, memory
statistics, cache flushing, NVML, figures) asks a ``Device`` instead of
testing strings such as ``device != "cpu"``.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

KINDS = ("cpu", "cuda")


@dataclass(frozen=True)
class Device:
    """A device kind and index (``cpu`` has index 0), with the name the framework reports."""

    kind: str
    index: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown device kind {self.kind!r}")
        if self.index < 0 or (self.kind == "cpu" and self.index):
            raise ValueError(f"bad device index {self.index} for {self.kind}")

    @classmethod
    def parse(cls, spec: str) -> Device:
        """``cpu``, ``cuda`` (= ``cuda:0``) or ``cuda:N``; ValueError for anything else."""
        text = spec.strip().lower()
        if text == "cpu":
            return cls("cpu")
        m = re.fullmatch(r"cuda(?::(\d{1,4}))?", text)
        if m is None:
            raise ValueError(f"unknown device {spec!r}: use cpu, cuda or cuda:N")
        return cls("cuda", int(m.group(1) or 0))

    @property
    def spec(self) -> str:
        """The canonical text stored in results: ``cpu`` or ``cuda:N``."""
        return "cpu" if self.kind == "cpu" else f"{self.kind}:{self.index}"

    @property
    def is_gpu(self) -> bool:
        return self.kind == "cuda"

    def named(self, name: str) -> Device:
        """The same device with the name a framework reported for it."""
        return Device(self.kind, self.index, name)

    def __str__(self) -> str:
        return self.spec


def is_gpu(spec: str) -> bool:
    """Whether a stored device text (``cpu``, ``cuda:0``) names a GPU; False for anything unparsable."""
    try:
        return Device.parse(str(spec)).is_gpu
    except ValueError:
        return False


# triton.testing.do_bench flushes with 256 MB, several times any GPU's L2
# (50 MB on an H100), so no line of the previous block survives.
GPU_FLUSH_BYTES = 256 * 2**20
MIN_CPU_FLUSH_BYTES = 32 * 2**20


CPU_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")


def _largest_cpu_cache(caches: Path = CPU_CACHES) -> int:
    """The largest cache of the first CPU, in bytes, from sysfs (0 where sysfs does not say)."""
    sizes = []
    for f in caches.glob("index*/size"):
        text = f.read_text().strip().upper()
        unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        with contextlib.suppress(ValueError):
            sizes.append(int(text.rstrip("KMG")) * unit)
    return max(sizes, default=0)


def flush_bytes(device: Device) -> int:
    """Bytes to overwrite so that nothing of the last block stays in the device's caches."""
    if device.is_gpu:
        return GPU_FLUSH_BYTES
    try:
        largest = _largest_cpu_cache()
    except OSError:
        largest = 0
    return max(2 * largest, MIN_CPU_FLUSH_BYTES)


def nvml_index(device: Device) -> int:
    """NVML's index of a CUDA device: CUDA_VISIBLE_DEVICES renumbers what CUDA sees, NVML not."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible and all(v.isdigit() for v in visible) and device.index < len(visible):
        return int(visible[device.index])
    return device.index
