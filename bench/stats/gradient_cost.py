"""The answer a user came for, in one line per framework and device: what a gradient costs.

The run's summary ends with these lines; they say what the report's verdict
says: the median over cases of each case's R = T(gradient) / T(forward),
with a 95 % bootstrap CI over the cases, beside the FLOP theory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.core.records import Record
from bench.stats import intervals

# The cheap gradient principle (Baur & Strassen 1983; Griewank & Walther 2008):
# f and its gradient together cost at most about 4 times f, in operations.
CHEAP_GRADIENT_BOUND = 4.0
DEFAULT_MODES = {"torch": "eager", "tensorflow": "function", "jax": "jit"}


@dataclass(frozen=True)
class Verdict:
    """R over the cases of one framework, mode and device."""

    framework: str
    mode: str
    device: str
    ratios: tuple[float, ...]  # each case's R
    theories: tuple[float, ...]  # each case's FLOP theory (finite ones)
    case_low: float = math.nan  # with one case: its own CI
    case_high: float = math.nan
    flagged: int = 0  # cases whose gradient row is noisy or unreliable

    @property
    def cases(self) -> int:
        return len(self.ratios)

    @property
    def median(self) -> float:
        return intervals.median(self.ratios)

    @property
    def interval(self) -> tuple[float, float]:
        """95 % bootstrap CI of the median over cases (the range of two; one case: its own CI)."""
        if self.cases >= 3:
            ci = intervals.median_ci(self.ratios)
            return ci.low, ci.high
        if self.cases == 2:
            return min(self.ratios), max(self.ratios)
        return self.case_low, self.case_high

    @property
    def theory(self) -> float:
        return intervals.median(self.theories)

    @property
    def label(self) -> str:
        """``torch eager · cpu``."""
        return f"{self.framework} {self.mode} · {self.device}"

    @property
    def line(self) -> str:
        """The verdict as one sentence, e.g. "the gradient costs 2.6× the forward pass [2.5, 2.8] ..."."""
        lo, hi = self.interval
        # One decimal, the interval rounded outwards so that it still holds the median.
        interval = (f" [{math.floor(lo * 10 + 1e-9) / 10:.1f}, {math.ceil(hi * 10 - 1e-9) / 10:.1f}]"
                    if math.isfinite(lo * 10) and math.isfinite(hi * 10) else "")  # 1e308 * 10 is inf
        n = f"{self.cases} case{'s' if self.cases != 1 else ''}"
        text = f"{self.label}: the gradient costs {self.median:.1f}× the forward pass{interval} ({n})"
        if self.theories:
            text += f"; FLOP theory {self.theory:.1f}×"
        if self.flagged:
            text += f"; {self.flagged} of {self.cases} noisy or unreliable"
        return text


def verdicts(records: Sequence[Record]) -> list[Verdict]:
    """One verdict per framework, mode and device with a measured R, in the order they ran."""
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        if r.phase == "gradient" and r.status == "ok" and math.isfinite(r.ratio):
            groups.setdefault((r.framework, r.mode, r.device), []).append(r)
    out = []
    for (fw, mode, device), rows in groups.items():
        theories = tuple(r.theory_ratio for r in rows if math.isfinite(r.theory_ratio))
        out.append(Verdict(fw, mode, device, tuple(r.ratio for r in rows), theories,
                           rows[0].ratio_ci_low, rows[0].ratio_ci_high,
                           sum(r.quality in ("noisy", "unreliable") for r in rows)))
    return out
