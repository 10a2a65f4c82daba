"""The machine's fingerprint: what a result depends on besides the code."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from bench import __version__


def usable_cpus() -> int:
    """CPUs this process may run on (respects taskset and container limits)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs with name, memory, driver and CUDA driver version (empty if none)."""
    try:
        import pynvml  # nvidia-ml-py, the bench[gpu] extra

        pynvml.nvmlInit()
    except Exception:
        return _gpus_from_smi()
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            out.append(
                {
                    "index": i,
                    "name": _str(pynvml.nvmlDeviceGetName(h)),
                    "memory_gb": round(pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**30, 1),
                    "driver": _str(driver),
                    "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}",
                }
            )
        return out
    finally:
        pynvml.nvmlShutdown()


def _str(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _gpus_from_smi() -> list[dict[str, Any]]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        query = "--query-gpu=index,name,memory.total,driver_version"
        rows = subprocess.run(
            [smi, query, "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
        header = subprocess.run([smi], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", header)
    out = []
    for line in rows.strip().splitlines():
        index, name, mem, driver = (s.strip() for s in line.split(","))
        out.append(
            {
                "index": int(index),
                "name": name,
                "memory_gb": round(float(mem) / 1024, 1),
                "driver": driver,
                "cuda_driver": cuda.group(1) if cuda else "",
            }
        )
    return out


def has_nvidia_gpu() -> bool:
    """Cheap check, no framework imported: is there an NVIDIA GPU and driver here?"""
    return Path("/proc/driver/nvidia/gpus").is_dir() or bool(gpus())


def fingerprint() -> dict[str, Any]:
    """CPU, memory, OS, GPUs and library versions of this machine."""
    import cpuinfo
    import numpy
    import psutil

    cpu = cpuinfo.get_cpu_info()
    return {
        "cpu": cpu.get("brand_raw") or platform.processor() or "unknown",
        "arch": platform.machine(),
        "cores_physical": psutil.cpu_count(logical=False) or 0,
        "cores_logical": psutil.cpu_count(logical=True) or 0,
        "cpus_usable": usable_cpus(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "bench": __version__,
        "gpus": gpus(),
    }


def check_name(name: str) -> str:
    """A machine name usable as a results folder, or a UserError saying what is allowed."""
    from bench.core.errors import UserError

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"--machine {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def machine_id(fp: dict[str, Any]) -> str:
    """Stable name for results/<machine>/: CPU model plus a hash of the hardware.

    The hostname is left out on purpose: containers and cloud machines get a
    new one every boot, while the hardware, and so the numbers, stay the same.
    """
    words = re.sub(r"\((r|tm)\)|\b(cpu|processor|core|with|radeon|graphics)\b", " ", fp["cpu"].lower())
    slug = "-".join(re.findall(r"[a-z0-9]+", words)[:4]) or "machine"
    hardware = [
        fp["cpu"], fp["arch"], fp["cores_logical"], fp["memory_gb"],
        [g["name"] for g in fp.get("gpus", [])],
    ]
    digest = hashlib.sha1(repr(hardware).encode()).hexdigest()[:8]
    return f"{slug}-{digest}"
