"""A row of the results table (``Record``), its one key (``CaseKey``), and the one way to make one.

Everything bench stores is a ``Record``. Each column's meaning is in
``bench.store.schema.COLUMN_DOCS`` (the results schema's documentation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

from bench.core import clock
from bench.core.cases import Case
from bench.core.settings import Settings

FRAMEWORKS = ("torch", "tensorflow", "jax")

# What is timed. ``backward`` is derived (gradient minus forward, paired by
# round); ``backward_split`` times the backward pass alone through a recorded
# forward pass, where the framework allows it.
PHASES = ("forward", "gradient", "backward", "backward_split", "step")

# ok: timed. failed: the equivalence check failed, so nothing was timed.
# error: the case raised. skipped: not possible here (reason says why).
# crashed: the worker died or hung (reason says how).
STATUSES = ("ok", "failed", "error", "skipped", "crashed")

# Seconds per call that can be a measurement: from a picosecond to about four months. A time
# outside this (or not a number) was not measured: the store and the importer refuse it.
TIME_RANGE_S = (1e-12, 1e7)
# T(phase) / T(forward) that can be a measurement.
RATIO_RANGE = (1e-6, 1e6)
# The size of any other number that can be a measurement (FLOPs, bytes, rates, fractions);
# zero is a number too.
VALUE_RANGE = (1e-30, 1e30)


@dataclass(frozen=True)
class Record:
    """One row of the results table: one phase of one case (``CaseKey``), and how it measured."""

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


class CaseKey(NamedTuple):
    """Which case a row belongs to: a suite's case, in one framework, mode, device and dtype.

    The one key of a case: rows of one key are one case's phases; the store
    takes a case's rows by it, ``bench compare`` matches two runs' cases by it.
    """

    suite: str
    case: str
    framework: str
    mode: str
    device: str
    dtype: str

    @classmethod
    def of(cls, r: Record) -> CaseKey:
        """The key of a row."""
        return cls(r.suite, r.case, r.framework, r.mode, r.device, r.dtype)


# The columns that name a case (a results table's CaseKey), and a row (its phase too).
CASE_KEY: tuple[str, ...] = CaseKey._fields
ROW_KEY: tuple[str, ...] = (*CASE_KEY, "phase")


@dataclass(frozen=True)
class Origin:
    """What the rows of one job share: the run and machine, the framework and how it ran."""

    run_id: str
    machine: str
    framework: str
    framework_version: str
    mode: str
    device: str
    device_name: str = ""


def make(origin: Origin, case: Case, phase: str, status: str, settings: Settings | None = None,
         **values: Any) -> Record:
    """The one way a row is made: the origin's and the case's columns, the settings in effect and the
    time, then ``values`` (the measurements, or why there are none), which win over the settings."""
    fixed: dict[str, Any] = {"timestamp": clock.now()}
    if settings is not None:
        fixed |= {"threads": settings.threads, "allow_tf32": settings.allow_tf32, "dtype": settings.dtype,
                  "l2": settings.l2,
                  "precision_target": settings.precision if settings.precision is not None else math.nan}
    return Record(
        run_id=origin.run_id, machine=origin.machine, suite=case.suite, case=case.id,
        params=case.params_json, framework=origin.framework, framework_version=origin.framework_version,
        mode=origin.mode, device=origin.device, device_name=origin.device_name, phase=phase, status=status,
        **{**fixed, **values},
    )
