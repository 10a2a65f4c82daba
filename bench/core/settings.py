"""Run-wide settings, the same for every framework, stored with the results."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core import defaults


@dataclass(frozen=True)
class Settings:
    """Run-wide settings, the same for every framework, stored with the results."""

    threads: int
    allow_tf32: bool = False
    budget_s: float = defaults.BUDGET_S
    quick: bool = False
    seed: int = 0
    dtype: str = "float32"
    learning_rate: float = 1e-3
    timeout_s: float = defaults.TIMEOUT_S
    # Worker processes that measure each case, one after another (the CIs
    # then resample processes, then rounds).
    processes: int = defaults.PROCESSES
    # --precision: keep adding rounds until R's CI has this relative
    # half-width, for at most max_time_s of rounds per case and process.
    precision: float | None = None
    max_time_s: float = defaults.MAX_TIME_S
    # --max-processes: with --precision, cases whose R is still wider than
    # asked after ``processes`` get one more process at a time, up to this
    # many (0: none beyond ``processes``).
    max_processes: int = 0
    # Cache policy before each timed block: "warm" leaves the caches as the
    # previous block left them; "flush" overwrites a buffer larger than the
    # last-level cache (the GPU's L2) first, the same for every phase.
    l2: str = "warm"
