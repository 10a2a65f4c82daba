"""An NVIDIA GPU's clocks, power, heat and slowdown reasons, read through NVML.

A snapshot before and after a case tells whether its times were taken at full
clocks: a GPU that hit its power cap or got hot during the case runs slower,
and its numbers are not comparable with a cool run's. pynvml (nvidia-ml-py, the
bench[gpu] extra) is imported inside the functions so that ``import bench``
stays light and works without it.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["SLOWDOWN_REASONS", "snapshot", "summary", "throttled"]

# Clock-event reasons that mean the clocks were lowered to save power or cool
# down. The others (gpu_idle, applications_clocks_setting, sync_boost,
# display_clock_setting) are the GPU resting or obeying a setting, which says
# nothing about the case's times being slowed.
SLOWDOWN_REASONS: frozenset[str] = frozenset(
    {"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"}
)

# pynvml renamed "throttle reasons" to "clock event reasons" (driver 535); the
# old names remain for older drivers and carry two bits the new ones lack.
_REASON_PREFIXES = ("nvmlClocksEventReason", "nvmlClocksThrottleReason")
# Not bits: masks and a deprecated alias of ApplicationsClocksSetting.
_NOT_REASONS = {"None", "All", "UserDefinedClocks"}
# Labels for the violation counters, as throttled() prints them.
_POLICIES = {"power": "power cap", "thermal": "thermal"}


def snapshot(index: int) -> dict[str, Any]:
    """NVML state of GPU `index` now; {} when NVML or the GPU is not available (never raises).

    Keys: sm_clock_mhz, mem_clock_mhz, max_sm_clock_mhz, power_limit_w, power_w,
    temperature_c, reasons (list of names) and violation_ns ({"power": ns,
    "thermal": ns}, cumulative). A key is left out when NVML refuses it, as it
    does for several of them on virtual machines.
    """
    try:
        import pynvml  # nvidia-ml-py, the bench[gpu] extra

        pynvml.nvmlInit()
    except Exception:
        return {}
    try:
        return _read(pynvml, index)
    except Exception:
        # A timing run must not die over telemetry: no handle, or anything
        # unexpected from the bindings, means no snapshot.
        return {}
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _read(nvml: ModuleType, index: int) -> dict[str, Any]:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    out: dict[str, Any] = {}

    def put(key: str, read: Callable[[], Any]) -> None:
        with contextlib.suppress(nvml.NVMLError):
            out[key] = read()

    put("sm_clock_mhz", lambda: int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)))
    put("mem_clock_mhz", lambda: int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)))
    put("max_sm_clock_mhz", lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM)))
    # NVML reports milliwatts.
    put("power_limit_w", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000)
    put("power_w", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000)
    put("temperature_c", lambda: int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)))
    mask = _reason_mask(nvml, handle)
    if mask is not None:
        out["reasons"] = _decode_reasons(nvml, mask)

    violations = {}
    for name in _POLICIES:
        policy = getattr(nvml, f"NVML_PERF_POLICY_{name.upper()}", None)
        if policy is None:
            continue
        with contextlib.suppress(nvml.NVMLError):
            violations[name] = int(nvml.nvmlDeviceGetViolationStatus(handle, policy).violationTime)
    if violations:
        out["violation_ns"] = violations
    return out


def _reason_mask(nvml: ModuleType, handle: Any) -> int | None:
    # A new pynvml on an old driver has the new function but the driver lacks
    # its symbol (NVMLError_FunctionNotFound), so fall back on error as well.
    for fn_name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
        fn = getattr(nvml, fn_name, None)
        if fn is None:
            continue
        try:
            return int(fn(handle))
        except nvml.NVMLError:
            pass
    return None


def _reason_bits(nvml: ModuleType) -> dict[int, str]:
    """Each single bit the module names, as a snake_case name (the newer spelling wins)."""
    bits: dict[int, str] = {}
    for prefix in reversed(_REASON_PREFIXES):
        for attr in dir(nvml):
            suffix = attr.removeprefix(prefix)
            if not attr.startswith(prefix) or suffix in _NOT_REASONS:
                continue
            value = getattr(nvml, attr)
            if isinstance(value, int) and value > 0 and value & (value - 1) == 0:
                bits[value] = re.sub(r"(?<!^)(?=[A-Z])", "_", suffix).lower()
    return bits


def _decode_reasons(nvml: ModuleType, mask: int) -> list[str]:
    names = []
    for bit, name in sorted(_reason_bits(nvml).items()):
        if mask & bit:
            names.append(name)
            mask &= ~bit
    # Bits newer than the installed pynvml still show, so they are not lost.
    bit = 1
    while mask:
        if mask & bit:
            names.append(f"unknown_{bit:#x}")
            mask &= ~bit
        bit <<= 1
    return names


def throttled(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """'' when no slowdown was seen between two snapshots, else a short readable text naming it.

    E.g. 'power cap 120 ms; thermal 3 ms; hw_slowdown at end': the growth of
    the power and thermal violation counters from `before` to `after`, then each
    of SLOWDOWN_REASONS present in before['reasons'] ("at start") or
    after['reasons'] ("at end"). gpu_idle, applications_clocks_setting,
    display_clock_setting and sync_boost are not slowdowns.
    """
    parts = []
    start = before.get("violation_ns") or {}
    end = after.get("violation_ns") or {}
    for name, label in _POLICIES.items():
        # Counters are cumulative since boot: only a delta says anything.
        if name in start and name in end and end[name] > start[name]:
            parts.append(f"{label} {_ms(end[name] - start[name])}")
    at_start = SLOWDOWN_REASONS.intersection(before.get("reasons") or ())
    at_end = SLOWDOWN_REASONS.intersection(after.get("reasons") or ())
    for reason in sorted(at_start | at_end):
        when = [w for w, seen in (("start", at_start), ("end", at_end)) if reason in seen]
        parts.append(f"{reason} at {' and '.join(when)}")
    return "; ".join(parts)


def _ms(ns: int) -> str:
    ms = ns / 1e6
    return f"{ms:.0f} ms" if ms >= 1 else f"{ms:.2g} ms"


def summary(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """JSON text {"before": before, "after": after} for storing in a results column (sorted keys)."""
    return json.dumps({"before": dict(before), "after": dict(after)}, sort_keys=True)
