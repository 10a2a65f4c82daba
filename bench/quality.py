"""How far to trust each measured row: ``good``, ``noisy`` or ``unreliable``, and why.

``status == "ok"`` says a row was measured; ``quality`` says how much its
numbers can be trusted. The rules look at the row itself (its spread, its
interval, how far the rounds drifted from the calibration) and at its case
(other processes' CPU during the rounds, phases that contradict each other).
Each rule names its reason, and a row keeps the worst verdict with every
reason that led to it.

The thresholds:

- IQR over the median above 10 % is noisy (``torch.utils.benchmark`` warns
  at the same 10 %), above 50 % unreliable;
- the 95 % CI's half-width above 10 % of the value (R for the gradient, each
  phase's own ratio or median otherwise) is noisy, above 30 % unreliable;
- other processes using more than a quarter of a CPU during the rounds
  (median over rounds), or more than half a CPU in any stretch of 0.25 s, is
  noisy (shorter stretches would read the kernel's 10 ms ticks as noise); the
  median above three quarters of a CPU is unreliable: the benchmark's own
  threads lost a core;
- steal time above a tenth of a CPU is noisy (a busy virtual-machine host);
- a phase whose rounds ran more than 1.5x slower than their calibration, or
  had to be calibrated again, is noisy: the machine slowed down mid-case;
- with ``--precision``, a gradient row whose R did not reach the asked
  precision within ``--max-time`` is noisy;
- contradictions are unreliable: a derived backward time at or below zero,
  a gradient faster than the forward pass it contains, a training step
  faster than the gradient it contains (each by more than 10 %).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

from bench.spec import Record

GOOD, NOISY, UNRELIABLE = "good", "noisy", "unreliable"
LEVELS = (GOOD, NOISY, UNRELIABLE)

IQR_NOISY, IQR_UNRELIABLE = 0.10, 0.50
CI_NOISY, CI_UNRELIABLE = 0.10, 0.30
OTHER_CPU_NOISY, OTHER_CPU_ANY_ROUND, OTHER_CPU_UNRELIABLE = 0.25, 0.50, 0.75
STEAL_NOISY = 0.10
DRIFT_NOISY = 1.5
# A phase that contains another may not be faster than it by more than this.
CONTAINS_SLACK = 0.9


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _row_findings(r: Record) -> list[tuple[str, str]]:
    """(level, reason) found in one row's own numbers."""
    found: list[tuple[str, str]] = []
    if r.median_s > 0 and r.iqr_s == r.iqr_s:
        spread = r.iqr_s / r.median_s
        if spread > IQR_NOISY:
            level = UNRELIABLE if spread > IQR_UNRELIABLE else NOISY
            found.append((level, f"IQR is {_pct(spread)} of the median"))
    value, low, high, what = _interval(r)
    if value and value > 0 and low == low and high == high:
        half = (high - low) / 2 / value
        if half > CI_NOISY:
            level = UNRELIABLE if half > CI_UNRELIABLE else NOISY
            found.append((level, f"{what} CI half-width {_pct(half)}"))
    if r.phase == "gradient" and r.precision_target == r.precision_target and value and low == low:
        half = (high - low) / 2 / value
        if half > r.precision_target:
            found.append((NOISY, f"R CI half-width {_pct(half)} did not reach the --precision "
                                 f"{_pct(r.precision_target)} asked within --max-time"))
    if r.recalibrations:
        found.append((NOISY, f"per-call time drifted more than 2x from its calibration "
                             f"({r.recalibrations} recalibration{'s' if r.recalibrations > 1 else ''})"))
    elif r.drift == r.drift and r.drift > DRIFT_NOISY:
        # Faster than calibrated is the warm-up finishing, not noise.
        found.append((NOISY, f"blocks ran {r.drift:.1f}x as long as calibrated"))
    return found


def _interval(r: Record) -> tuple[float, float, float, str]:
    """The value whose interval judges the row: R for the gradient, the ratio or median otherwise."""
    if r.phase == "forward":
        return r.median_s, r.ci_low_s, r.ci_high_s, "median"
    if r.phase == "backward":
        return r.median_s, r.ci_low_s, r.ci_high_s, "backward time"
    return r.ratio, r.ratio_ci_low, r.ratio_ci_high, "R" if r.phase == "gradient" else f"{r.phase} ratio"


def _case_findings(rows: Sequence[Record]) -> list[tuple[str, str]]:
    """(level, reason) about the whole case: interference and contradicting phases."""
    found: list[tuple[str, str]] = []
    by_phase = {r.phase: r for r in rows if r.status == "ok"}
    any_row = next(iter(by_phase.values()), None)
    if any_row is not None:
        other, worst, steal = any_row.interference, any_row.interference_max, any_row.steal
        if other == other and other > OTHER_CPU_UNRELIABLE:
            found.append((UNRELIABLE, f"other processes used {other:.2f} CPU during the rounds"))
        elif other == other and other > OTHER_CPU_NOISY:
            found.append((NOISY, f"other processes used {other:.2f} CPU during the rounds"))
        elif worst == worst and worst > OTHER_CPU_ANY_ROUND:
            found.append((NOISY, f"other processes used up to {worst:.2f} CPU in a stretch of the rounds"))
        if steal == steal and steal > STEAL_NOISY:
            found.append((NOISY, f"the hypervisor stole {steal:.2f} CPU during the rounds"))

    def t(phase: str) -> float:
        r = by_phase.get(phase)
        return r.median_s if r is not None else math.nan

    if t("backward") <= 0:
        found.append((UNRELIABLE, "derived backward time <= 0: forward and gradient times contradict"))
    if t("gradient") < CONTAINS_SLACK * t("forward"):
        found.append((UNRELIABLE, "gradient faster than the forward pass it contains"))
    if t("step") < CONTAINS_SLACK * t("gradient"):
        found.append((UNRELIABLE, "step faster than the gradient it contains"))
    return found


def worst(levels: Sequence[str]) -> str:
    """The worst of some quality levels (good when none)."""
    return max(levels, key=LEVELS.index, default=GOOD)


def assess(rows: Sequence[Record]) -> list[Record]:
    """The rows of one case with ``quality`` and ``quality_reason`` set on every ``ok`` row."""
    case = _case_findings(rows)
    out = []
    for r in rows:
        if r.status != "ok":
            out.append(r)
            continue
        # The worst reasons first: the summary table quotes the first one.
        found = sorted([*_row_findings(r), *case], key=lambda f: -LEVELS.index(f[0]))
        level = worst([lvl for lvl, _ in found])
        reasons = "; ".join(why for lvl, why in found if lvl != GOOD)
        out.append(dataclasses.replace(r, quality=level, quality_reason=reasons))
    return out


def summary(records: Sequence[Record]) -> dict[str, object]:
    """Counts of ok rows per quality level, and the most common reason among the flagged ones."""
    ok = [r for r in records if r.status == "ok" and r.quality]
    counts = {lvl: sum(r.quality == lvl for r in ok) for lvl in LEVELS}
    return {**counts, "main_reason": main_reason(r.quality_reason for r in ok)}


def main_reason(quality_reasons: Iterable[str]) -> str:
    """The most common kind of reason in some ``quality_reason`` texts, quoted as one row said it.

    Reasons of one kind ("IQR is 35 % of the median", "IQR is 12 % ...") count
    together; '' when none.
    """
    kinds: dict[str, list] = {}
    for text in quality_reasons:
        for why in filter(None, text.split("; ")):
            entry = kinds.setdefault(_kind(why), [0, why])
            entry[0] += 1
    return max(kinds.values(), key=lambda e: e[0])[1] if kinds else ""


def _kind(reason: str) -> str:
    """A reason without its numbers."""
    return " ".join(w for w in reason.split() if not any(c.isdigit() for c in w))
