"""bench.measure.gpu_state against a fake pynvml: no GPU or NVIDIA driver needed."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from bench.measure import gpu_state
from bench.measure.gpu_state import snapshot, summary, throttled


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class FakeNVML:
    """The parts of pynvml that gpu_state uses; `fail` names functions that raise NotSupported."""

    NVMLError = NVMLError
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0
    NVML_PERF_POLICY_POWER = 0
    NVML_PERF_POLICY_THERMAL = 1
    # The bits as pynvml defines them, aliases and masks included.
    nvmlClocksEventReasonGpuIdle = 0x1
    nvmlClocksEventReasonApplicationsClocksSetting = 0x2
    nvmlClocksEventReasonUserDefinedClocks = 0x2
    nvmlClocksEventReasonSwPowerCap = 0x4
    nvmlClocksEventReasonHwSlowdown = 0x8
    nvmlClocksEventReasonSyncBoost = 0x10
    nvmlClocksEventReasonSwThermalSlowdown = 0x20
    nvmlClocksEventReasonHwThermalSlowdown = 0x40
    nvmlClocksEventReasonHwPowerBrakeSlowdown = 0x80
    nvmlClocksEventReasonDisplayClockSetting = 0x100
    nvmlClocksEventReasonNone = 0x0
    nvmlClocksEventReasonAll = 0x1FF
    nvmlClocksThrottleReasonGpuIdle = 0x1
    nvmlClocksThrottleReasonBoardLimit = 0x200

    def __init__(self, *, reasons: int = 0x1 | 0x4, fail: tuple[str, ...] = ()) -> None:
        self.reasons = reasons
        self.fail = set(fail)
        self.initialized = 0
        self.handles: list[int] = []

    def _check(self, name: str) -> None:
        if name in self.fail:
            raise NVMLError_NotSupported(name)

    def nvmlInit(self) -> None:
        self._check("nvmlInit")
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self.initialized -= 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        self._check("nvmlDeviceGetHandleByIndex")
        self.handles.append(index)
        return f"gpu{index}"

    def nvmlDeviceGetClockInfo(self, handle: str, clock: int) -> int:
        self._check("nvmlDeviceGetClockInfo")
        return {self.NVML_CLOCK_SM: 1410, self.NVML_CLOCK_MEM: 1593}[clock]

    def nvmlDeviceGetMaxClockInfo(self, handle: str, clock: int) -> int:
        self._check("nvmlDeviceGetMaxClockInfo")
        assert clock == self.NVML_CLOCK_SM
        return 1980

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: str) -> int:
        self._check("nvmlDeviceGetEnforcedPowerLimit")
        return 700_000

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        self._check("nvmlDeviceGetPowerUsage")
        return 312_500

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:
        self._check("nvmlDeviceGetTemperature")
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 64

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: str) -> int:
        self._check("nvmlDeviceGetCurrentClocksEventReasons")
        return self.reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: str) -> int:
        self._check("nvmlDeviceGetCurrentClocksThrottleReasons")
        return self.reasons

    def nvmlDeviceGetViolationStatus(self, handle: str, policy: int) -> SimpleNamespace:
        self._check("nvmlDeviceGetViolationStatus")
        ns = {self.NVML_PERF_POLICY_POWER: 5_000_000, self.NVML_PERF_POLICY_THERMAL: 7_000}[policy]
        return SimpleNamespace(referenceTime=123, violationTime=ns)


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch):
    def put(fake: Any) -> Any:
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        return fake

    return put


def test_snapshot_reads_every_key_in_its_unit(install):
    nvml = install(FakeNVML(reasons=0x1 | 0x4 | 0x200))
    assert snapshot(3) == {
        "sm_clock_mhz": 1410,
        "mem_clock_mhz": 1593,
        "max_sm_clock_mhz": 1980,
        "power_limit_w": 700.0,
        "power_w": 312.5,
        "temperature_c": 64,
        "reasons": ["gpu_idle", "sw_power_cap", "board_limit"],
        "violation_ns": {"power": 5_000_000, "thermal": 7_000},
    }
    assert nvml.handles == [3]
    assert nvml.initialized == 0  # every nvmlInit was matched by nvmlShutdown


def test_snapshot_omits_what_nvml_refuses(install):
    refused = ("nvmlDeviceGetPowerUsage", "nvmlDeviceGetTemperature", "nvmlDeviceGetViolationStatus")
    install(FakeNVML(fail=refused))
    snap = snapshot(0)
    assert set(snap) == {"sm_clock_mhz", "mem_clock_mhz", "max_sm_clock_mhz", "power_limit_w", "reasons"}


def test_snapshot_falls_back_to_throttle_reasons(install):
    install(FakeNVML(reasons=0x8 | 0x10, fail=("nvmlDeviceGetCurrentClocksEventReasons",)))
    assert snapshot(0)["reasons"] == ["hw_slowdown", "sync_boost"]

    # An old pynvml without the clock-event function at all.
    old = FakeNVML(reasons=0x40)
    old.nvmlDeviceGetCurrentClocksEventReasons = None
    install(old)
    assert snapshot(0)["reasons"] == ["hw_thermal_slowdown"]

    install(
        FakeNVML(fail=("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"))
    )
    assert "reasons" not in snapshot(0)


def test_snapshot_keeps_bits_it_cannot_name(install):
    install(FakeNVML(reasons=0x4 | 0x800))
    assert snapshot(0)["reasons"] == ["sw_power_cap", "unknown_0x800"]


def test_snapshot_is_empty_without_nvml(install, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    assert snapshot(0) == {}

    nvml = install(FakeNVML(fail=("nvmlInit",)))
    assert snapshot(0) == {}
    assert nvml.initialized == 0

    nvml = install(FakeNVML(fail=("nvmlDeviceGetHandleByIndex",)))
    assert snapshot(5) == {}
    assert nvml.initialized == 0


def snap(power_ns: int = 0, thermal_ns: int = 0, reasons: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "sm_clock_mhz": 1410,
        "reasons": list(reasons),
        "violation_ns": {"power": power_ns, "thermal": thermal_ns},
    }


def test_throttled_reports_violation_deltas():
    before = snap(power_ns=1_000_000_000, thermal_ns=50_000_000)
    after = snap(power_ns=1_120_000_000, thermal_ns=53_000_000)
    assert throttled(before, after) == "power cap 120 ms; thermal 3 ms"
    assert throttled(before, snap(power_ns=1_000_400_000, thermal_ns=50_000_000)) == "power cap 0.4 ms"


def test_throttled_reports_slowdown_reasons_at_start_and_end():
    before = snap(reasons=("gpu_idle", "sw_thermal_slowdown"))
    after = snap(power_ns=2_000_000, reasons=("hw_slowdown", "sw_thermal_slowdown", "sync_boost"))
    assert throttled(before, after) == (
        "power cap 2 ms; hw_slowdown at end; sw_thermal_slowdown at start and end"
    )


def test_throttled_ignores_reasons_that_are_not_slowdowns():
    quiet = ("gpu_idle", "sync_boost", "applications_clocks_setting", "display_clock_setting")
    assert throttled(snap(reasons=quiet), snap(reasons=quiet)) == ""


def test_throttled_is_empty_for_identical_or_missing_snapshots():
    s = snap(power_ns=10**9, thermal_ns=10**8, reasons=("gpu_idle",))
    assert throttled(s, s) == ""
    assert throttled({}, {}) == ""
    # A counter only in `after` is cumulative since boot, not this case's.
    assert throttled({}, snap(power_ns=10**9)) == ""


def test_slowdown_reasons():
    power = {"sw_power_cap", "hw_power_brake_slowdown"}
    heat = {"sw_thermal_slowdown", "hw_thermal_slowdown", "hw_slowdown"}
    assert power | heat == gpu_state.SLOWDOWN_REASONS


def test_summary_is_sorted_json():
    text = summary({"temperature_c": 60, "power_w": 100.0}, {})
    assert text == '{"after": {}, "before": {"power_w": 100.0, "temperature_c": 60}}'
    assert json.loads(text) == {"before": {"temperature_c": 60, "power_w": 100.0}, "after": {}}


def test_import_bench_does_not_import_pynvml():
    code = "import bench, sys; import bench.measure.gpu_state; assert 'pynvml' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
