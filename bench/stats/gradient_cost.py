"""The answer a user came for, in one line per framework and device: what a gradient costs.

The run's summary ends with these lines; they say what the report's verdict
says: the median over cases of each case's R = T(gradient) / T(forward),
with a 95 % CI over the cases (``bench.stats.intervals.median_ci``), beside
the FLOP theory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from bench.core.records import Record
from bench.stats import intervals

# The cheap gradient principle (Baur & Strassen 1983; Griewank & Walther 2008):
# f and its gradient together cost at most about 4 times f, in operations.
CHEAP_GRADIENT_BOUND = 4.0
DEFAULT_MODES = {"torch": "eager", "tensorflow": "function", "jax": "jit"}


@dataclass(frozen=True)
class GradientCost:
    """R over the cases of one framework, mode and device: its median, its CI and its sentence."""

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

    @cached_property
    def interval(self) -> tuple[float, float]:
        """95 % CI of the median over cases (``intervals.median_ci``: the bootstrap, order statistics
        over many cases); the range of two; one case: its own CI. Computed once (the terminal's line
        and the page read it). NaN bounds where a bound is too large to round: a one-case CI of
        1e308, from any table given to render, is no interval to print."""
        if self.cases >= 3:
            ci = intervals.median_ci(self.ratios)
            lo, hi = ci.low, ci.high
        elif self.cases == 2:
            lo, hi = min(self.ratios), max(self.ratios)
        else:
            lo, hi = self.case_low, self.case_high
        if not (math.isfinite(lo * 10) and math.isfinite(hi * 10)):  # 1e308 * 10 is inf
            return math.nan, math.nan
        return lo, hi

    @property
    def cases_above_bound(self) -> int:
        """How many cases have an R above CHEAP_GRADIENT_BOUND."""
        return sum(r > CHEAP_GRADIENT_BOUND for r in self.ratios)

    @property
    def bound_state(self) -> str:
        """Where R stands against the cheap-gradient bound: 'within' (its median, its CI and every
        case), 'mostly' (the median is, but a case or the CI's top is above) or 'above'."""
        if self.median > CHEAP_GRADIENT_BOUND:
            return "above"
        high = self.interval[1]
        if self.cases_above_bound or (math.isfinite(high) and high > CHEAP_GRADIENT_BOUND):
            return "mostly"
        return "within"

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
                    if math.isfinite(lo) and math.isfinite(hi) else "")
        n = f"{self.cases} case{'s' if self.cases != 1 else ''}"
        text = f"{self.label}: the gradient costs {self.median:.1f}× the forward pass{interval} ({n})"
        if self.theories:
            text += f"; FLOP theory {self.theory:.1f}×"
        if self.flagged:
            text += f"; {self.flagged} of {self.cases} noisy or unreliable"
        return text


def gradient_costs(records: Sequence[Record]) -> list[GradientCost]:
    """One GradientCost per framework, mode and device with a measured R, in the order they ran."""
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        if r.phase == "gradient" and r.status == "ok" and math.isfinite(r.ratio):
            groups.setdefault((r.framework, r.mode, r.device), []).append(r)
    out = []
    for (fw, mode, device), rows in groups.items():
        theories = tuple(r.theory_ratio for r in rows if math.isfinite(r.theory_ratio))
        out.append(GradientCost(fw, mode, device, tuple(r.ratio for r in rows), theories,
                                rows[0].ratio_ci_low, rows[0].ratio_ci_high,
                                sum(r.quality in ("noisy", "unreliable") for r in rows)))
    return out
