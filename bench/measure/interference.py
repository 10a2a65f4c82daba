"""How much CPU other work took while bench was timing (Linux).

The kernel counts, per CPU state, the time every CPU has spent since boot
(``/proc/stat``); this process's own CPU time is ``os.times()``. Between two
readings, the busy time of all CPUs minus this process's own is what other
processes took: other benchmarks, a compiler, a browser, the hypervisor's
neighbours. Steal time is what the hypervisor gave to other virtual machines
while this one wanted to run. Both are measured per timed round, as a
fraction of one CPU, so a round that shared the machine can be told apart
from one that did not. A load average cannot: it counts the benchmark's
own threads, and it lags by a minute.

The kernel counts in clock ticks (100 per second on most systems), so a
reading is exact to about 10 ms of CPU time per round.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_STAT = Path("/proc/stat")
# user nice system idle iowait irq softirq steal guest guest_nice: busy is
# everything but idle and iowait; guest time is already inside user time.
_BUSY = (0, 1, 2, 5, 6)
_STEAL = 7


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative seconds: other processes' CPU time and steal time, summed over all CPUs."""

    other_s: float
    steal_s: float


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def parse_stat(text: str, ticks_per_s: float) -> tuple[float, float]:
    """(busy seconds, steal seconds) of all CPUs from the text of /proc/stat."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            values += [0] * (10 - len(values))  # old kernels list fewer states
            busy = sum(values[i] for i in _BUSY)
            return busy / ticks_per_s, values[_STEAL] / ticks_per_s
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


class CpuMonitor:
    """Reads cumulative ``CpuTimes``; ``None`` from ``read`` where /proc/stat is missing."""

    def __init__(self) -> None:
        self.ticks = _ticks() if hasattr(os, "sysconf") else 100.0

    def read(self) -> CpuTimes | None:
        try:
            busy, steal = parse_stat(_STAT.read_text(), self.ticks)
        except (OSError, ValueError):
            return None
        t = os.times()
        own = t.user + t.system  # every thread of this process
        return CpuTimes(other_s=busy - own, steal_s=steal)


def share(before: CpuTimes | None, after: CpuTimes | None, wall_s: float) -> tuple[float, float]:
    """(other processes, steal) between two readings, as fractions of one CPU; NaN when unknown."""
    if before is None or after is None or wall_s <= 0:
        return float("nan"), float("nan")
    # Rounding to ticks can make a quiet interval read slightly negative.
    other = max(after.other_s - before.other_s, 0.0) / wall_s
    steal = max(after.steal_s - before.steal_s, 0.0) / wall_s
    return other, steal
