"""What ``bench run`` would do and about how long it would take: ``bench run --dry-run``.

Nothing here imports a framework or writes a file. The wall time is a model:
per job and worker process, a start cost of its framework; per case and
process, the budget share, the warm-up of every timed phase and a fixed
set-up (data, first calls, checks, training curve, memory probes); and a few
seconds of bench itself and its report. Earlier finished runs of the same
machine, when there are any in a local results folder, scale the workers'
part by how long they really took against what the model says for them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core import clock, defaults
from bench.core.device import is_gpu
from bench.core.records import CASE_KEY, CaseKey
from bench.core.settings import Settings
from bench.execute.jobs import Job

# Seconds to start one worker on the CPU of a small machine: the framework's
# import, its configuration and the peak-FLOP/s matmul (bench.measure.worker).
START_S = {"torch": 4.0, "tensorflow": 8.0, "jax": 3.0}
OTHER_START_S = 5.0
# Seconds per case besides budget and warm-up: in every process, building the
# data and the model, the first calls and the calibration; in the first
# process only, the float64 reference, the gradient check, the 20 training
# steps and the memory probes (bench.measure.worker: later processes only add rounds).
SETUP_S = 0.5
CHECKS_S = 0.5
# Modes that compile every case at its first call, and JAX's autotuning on a
# GPU (1 to 20 s per quick case, the device check in docs/gpu.md): added per case.
MODE_CASE_S = {"compile": 20.0, "xla": 2.0}
GPU_CASE_S = {"jax": 5.0}
# Phases with their own warm-up (bench.measure.timing): forward, gradient, the split backward, step.
TIMED_PHASES = 4
# Seconds of bench itself around the workers: its start, the checks and the
# summary; and the HTML report at the end (unless --no-report).
FIXED_S = 2.0
REPORT_S = 3.0
# Earlier runs that scale the model, newest first, and how many files are
# looked at to find them (a dry run stays quick in a folder of many runs).
CALIBRATION_RUNS = 5
CALIBRATION_FILES = 20


@dataclass(frozen=True)
class Estimate:
    """Wall seconds of a run, and what they rest on: the model alone (``runs`` 0), or the model scaled
    by the median of ``runs`` earlier runs of this machine (``scale``: their time over the model's)."""

    seconds: float
    runs: int = 0
    scale: float = math.nan


@dataclass(frozen=True)
class JobSize:
    """What the model needs of one job: framework, mode, device kind and its number of cases."""

    framework: str
    mode: str
    gpu: bool
    cases: int


def sizes(jobs: Iterable[Job]) -> list[JobSize]:
    """The model's view of the planned jobs."""
    return [JobSize(j.framework, j.mode, is_gpu(j.device), len(j.cases)) for j in jobs]


def model_seconds(jobs: Sequence[JobSize], settings: Settings) -> float:
    """The wall time the model gives a run of ``jobs`` with ``settings`` (budget per process)."""
    warmup = defaults.QUICK_WARMUP_S if settings.quick else defaults.WARMUP_S
    total = 0.0
    for j in jobs:
        per_process = (settings.budget_s + TIMED_PHASES * warmup + SETUP_S + MODE_CASE_S.get(j.mode, 0.0)
                       + (GPU_CASE_S.get(j.framework, 0.0) if j.gpu else 0.0))
        total += (settings.processes * (START_S.get(j.framework, OTHER_START_S) + j.cases * per_process)
                  + j.cases * CHECKS_S)
    return total


def estimate(jobs: Sequence[Job], settings: Settings, earlier: Path | None = None,
             report: bool = True) -> Estimate:
    """The run's wall time: the model, scaled by the earlier runs in the folder ``earlier`` if any.

    The scale applies to the workers' part (what a stored run's start and end
    times measure), not to bench's own start and the report.
    """
    model = model_seconds(sizes(jobs), settings)
    fixed = FIXED_S + (REPORT_S if report else 0.0)
    scales = calibration(earlier) if earlier is not None else []
    if not scales:
        return Estimate(model + fixed)
    scale = statistics.median(scales)
    return Estimate(model * scale + fixed, len(scales), scale)


def calibration(folder: Path) -> list[float]:
    """For the newest finished runs in ``folder``: their measured wall time over the model's.

    A run that was interrupted, imported, adaptive (--precision) or unreadable
    is left out: its duration says nothing about the budget.
    """
    if not folder.is_dir():
        return []
    files = sorted((f for f in folder.glob("*.parquet") if f.is_file() and not f.name.startswith(".")),
                   key=lambda f: f.stat().st_mtime, reverse=True)
    scales = []
    for f in files[:CALIBRATION_FILES]:
        scale = _scale(f)
        if scale is not None:
            scales.append(scale)
        if len(scales) == CALIBRATION_RUNS:
            break
    return scales


def _scale(path: Path) -> float | None:
    """Measured over modelled seconds of the run in ``path``, or None when it cannot tell."""
    try:
        from bench import store

        meta = store.read_metadata(path)
        measured = _duration(meta)
        settings = _settings(meta.get("settings"))
        if measured is None or settings is None:
            return None
        model = model_seconds(_run_jobs(path), settings)
    except Exception:  # a broken or foreign file only loses its say in the estimate
        return None
    return measured / model if model > 0 and math.isfinite(measured / model) else None


def _duration(meta: dict[str, Any]) -> float | None:
    if meta.get("interrupted") or meta.get("imported_from") or not meta.get("finished"):
        return None
    seconds = (clock.parse(meta["finished"]) - clock.parse(meta["started"])
               ).total_seconds()
    return seconds if seconds > 0 else None


def _settings(raw: Any) -> Settings | None:
    if not isinstance(raw, dict) or raw.get("precision") is not None:
        return None
    return Settings(threads=int(raw["threads"]), budget_s=float(raw["budget_s"]), quick=bool(raw["quick"]),
                    processes=int(raw.get("processes", 1)))


def _run_jobs(path: Path) -> list[JobSize]:
    """The jobs a stored run measured: its distinct cases per framework, mode and device."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=list(CASE_KEY)).to_pylist()
    cases: dict[tuple[str, str, str], set[CaseKey]] = {}
    for row in table:
        job = (row["framework"], row["mode"], row["device"])
        cases.setdefault(job, set()).add(CaseKey(**row))
    return [JobSize(fw, mode, is_gpu(device), len(c)) for (fw, mode, device), c in cases.items()]


