"""The records bench passes around and stores, and the contract of a suite.

A suite is a plain Python module (see ``bench.catalog.discovery`` for what it must
define). Everything it hands to the harness is one of the frozen dataclasses
here; everything bench stores is a ``Record``, one row of the results table.
"""


from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bench.core.cases import Case

FRAMEWORKS = ("torch", "tensorflow", "jax")


# What is timed. ``backward`` is derived (gradient minus forward, paired by
# round); ``backward_split`` times the backward pass alone through a recorded
# forward pass, where the framework allows it.
PHASES = ("forward", "gradient", "backward", "backward_split", "step")


# ok: timed. failed: the equivalence check failed, so nothing was timed.
# error: the case raised. skipped: not possible here (reason says why).
# crashed: the worker died or hung (reason says how).
STATUSES = ("ok", "failed", "error", "skipped", "crashed")


@dataclass(frozen=True)
class Record:
    """One row of the results table: (suite, case, framework, mode, device, phase)."""

    run_id: str
    machine: str
    suite: str
    case: str
    params: str  # JSON object of the case's parameters
    framework: str
    framework_version: str
    mode: str
    device: str
    phase: str
    status: str
    reason: str = ""
    device_name: str = ""
    median_s: float = math.nan
    iqr_s: float = math.nan
    min_s: float = math.nan
    ci_low_s: float = math.nan
    ci_high_s: float = math.nan
    rounds: int = 0
    calls_per_block: int = 0
    samples_s: tuple[float, ...] = field(default_factory=tuple)
    # Rounds each worker process contributed to samples_s, in order (empty:
    # one process); the CIs resample processes, then rounds within them.
    process_rounds: tuple[int, ...] = field(default_factory=tuple)
    first_call_s: float = math.nan
    # This phase's time over the forward pass's, paired by round; for the
    # gradient phase this is the headline ratio R.
    ratio: float = math.nan
    ratio_ci_low: float = math.nan
    ratio_ci_high: float = math.nan
    flops: float = math.nan
    flops_per_s: float = math.nan  # achieved: flops / median_s
    theory_ratio: float = math.nan
    equiv_error: float = math.nan
    equiv_tol: float = math.nan
    # Memory. saved_bytes: what the framework keeps from the forward pass for
    # the backward pass (the same on every row of a case). peak_bytes: the
    # extra bytes at the peak of one call of this phase, beyond what was
    # resident before it. memory_ratio: peak_bytes / the forward's (M on the
    # gradient row). theory_*: the suite's analytic ``memory(params)``.
    saved_bytes: float = math.nan
    peak_bytes: float = math.nan
    memory_ratio: float = math.nan
    theory_saved_bytes: float = math.nan
    theory_peak_bytes: float = math.nan
    theory_memory_ratio: float = math.nan
    memory_method: str = ""  # how saved and peak bytes were measured, or why not
    # The device's float32 matmul rate measured in this framework at the start
    # of the worker: flops_per_s / peak_flops_per_s is the fraction of peak.
    peak_flops_per_s: float = math.nan
    l2: str = "warm"  # the cache policy of the timed blocks (Settings.l2)
    # GPU state (NVML) before and after the case: clocks, power limit,
    # temperature, throttle reasons (JSON); throttled names the reasons a
    # clock slowdown was seen during the case ("" when none).
    gpu_state: str = ""
    throttled: str = ""
    # Step rows: the loss before each of the first optimizer steps, from the
    # shared initialisation (the same curve in every framework).
    loss_curve: tuple[float, ...] = field(default_factory=tuple)
    # The machine's 1-minute load average when the case started: above the
    # number of CPUs, other work competed with the measurement.
    load_avg: float = math.nan
    # CPU taken by other processes during the timed rounds, in fractions of
    # one CPU (over all rounds together, and the most in any 1 s stretch), and
    # steal time (median over rounds).
    interference: float = math.nan
    interference_max: float = math.nan
    steal: float = math.nan
    # Median per-call time over the calibrated one, and how often the phase
    # was calibrated again because it drifted more than 2x.
    drift: float = math.nan
    recalibrations: int = 0
    # How far to trust the row (bench.stats.quality): good, noisy or unreliable,
    # and why; "" on rows that were not measured.
    quality: str = ""
    quality_reason: str = ""
    # The relative half-width --precision asked of R's CI (NaN: none asked).
    precision_target: float = math.nan
    threads: int = 0
    allow_tf32: bool = False
    dtype: str = "float32"
    timestamp: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples_s"] = list(self.samples_s)
        d["loss_curve"] = list(self.loss_curve)
        d["process_rounds"] = list(self.process_rounds)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Record:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("samples_s", "loss_curve"):  # lists, NumPy arrays (from pandas) or None
            value = kw.get(key)
            kw[key] = tuple(float(x) for x in value) if value is not None else ()
        value = kw.get("process_rounds")
        kw["process_rounds"] = tuple(int(x) for x in value) if value is not None else ()
        return cls(**kw)


def params_json(case: Case) -> str:
    return json.dumps(case.as_dict(), sort_keys=True)
