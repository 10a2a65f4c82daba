"""How far to trust each measured row: ``good``, ``noisy`` or ``unreliable``, and why.

``status == "ok"`` says a row was measured; ``quality`` says how much its
numbers can be trusted. The rules look at the row itself (its spread, its
interval, how far the rounds drifted from the calibration) and at its case
(other processes' CPU during the rounds, phases that contradict each other).
Each rule names its reason, and a row keeps the worst verdict with every
reason that led to it.

The thresholds:

- IQR over the median within a process (the median over processes) above
  25 % is noisy, above 50 % unreliable. ``torch.utils.benchmark`` warns at
  10 %, but it has no interval that holds reruns; bench's intervals do, so the
  spread of the rounds speaks through them, and the IQR rule only catches
  rounds that scatter so much that a median of them means little. (On the
  2-core VM a quiet run's rounds scatter by 9-15 % IQR: the host changes
  speed within seconds.) Between processes the times differ more, which the
  CI holds, so the IQR is not taken over processes pooled;
- the 95 % CI's half-width over the value: for a ratio to the forward pass
  (R on the gradient row, each other phase's own ratio) above 15 % is noisy,
  above 30 % unreliable; for the forward time above 30 % noisy, above 60 %
  unreliable. The derived backward row is judged as the gradient row it comes
  from (its precision is R's; a difference of two times has a wider relative
  interval that says nothing new). The thresholds sit above what quiet runs
  give at the defaults (3 processes), so that a flag means more than this
  machine's usual: over 30 quiet runs on the 2-core VM, R's half-width had a
  median of 6.5 %, a 90th percentile of 10 % and a 95th of 11.6 % (the step's
  and backward_split's ratios: 11.6 % and 14.1 % at the 95th); the forward
  times, which carry the host's changes of speed between processes (ratios
  within rounds cancel them), 14 %, 29 % and 33 %;
- other processes using more than a quarter of a CPU during the rounds
  (over all rounds together: a median over rounds shorter than the kernel's
  10 ms ticks could read 0 beside a busy loop), or more than half a CPU in
  any stretch of 1 s, is noisy (shorter stretches would read those ticks and
  brief bursts as noise); above three quarters of a CPU over all rounds is
  unreliable: the benchmark's own threads lost a core;
- steal time above a tenth of a CPU is noisy (a busy virtual-machine host);
- a phase whose calls ran, at the median over rounds, more than 1.5x as
  long as at the first calibration is noisy: the machine slowed down
  mid-case (a recalibration alone, which resizes the blocks, is not);
- with ``--precision``, a gradient row whose R did not reach the asked
  precision is noisy: within ``--max-time``, or, over several processes,
  because the processes' R differ more than that (rounds cannot narrow it);
- contradictions are unreliable: a derived backward time at or below zero,
  a gradient faster than the forward pass it contains, a training step
  faster than the gradient it contains (each by more than 10 %, compared as
  ratios to the forward pass of the same rounds).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Final, TypedDict

from bench.core import fmt
from bench.core.records import Record
from bench.stats import intervals

# Final: literal types, so that a level indexes a Summary.
GOOD: Final = "good"
NOISY: Final = "noisy"
UNRELIABLE: Final = "unreliable"
LEVELS: Final = (GOOD, NOISY, UNRELIABLE)

IQR_NOISY, IQR_UNRELIABLE = 0.25, 0.50
RATIO_CI_NOISY, RATIO_CI_UNRELIABLE = 0.15, 0.30
TIME_CI_NOISY, TIME_CI_UNRELIABLE = 0.30, 0.60
OTHER_CPU_NOISY, OTHER_CPU_ANY_ROUND, OTHER_CPU_UNRELIABLE = 0.25, 0.50, 0.75
STEAL_NOISY = 0.10
DRIFT_NOISY = 1.5
# A phase that contains another may not be faster than it by more than this.
CONTAINS_SLACK = 0.9


def _row_findings(r: Record) -> list[tuple[str, str]]:
    """(level, reason) found in one row's own numbers."""
    found: list[tuple[str, str]] = []
    spread = within_process_iqr(r)
    if spread > IQR_NOISY:  # False for NaN
        level = UNRELIABLE if spread > IQR_UNRELIABLE else NOISY
        found.append((level, f"IQR is {fmt.percent(spread)} of the median"))
    value, low, high, what = _interval(r)
    # NaN (no interval) fails every comparison below.
    half = (high - low) / 2 / value if value and value > 0 else math.nan
    noisy, unreliable = (TIME_CI_NOISY, TIME_CI_UNRELIABLE) if what == "median" else (
        RATIO_CI_NOISY, RATIO_CI_UNRELIABLE)
    if half > noisy:
        level = UNRELIABLE if half > unreliable else NOISY
        found.append((level, f"{what} CI half-width {fmt.percent(half)}"))
    if r.phase == "gradient" and half > r.precision_target:  # False without --precision (NaN)
        found.append((NOISY, _precision_missed(half, r.precision_target, len(r.process_rounds))))
    if r.drift == r.drift and r.drift > DRIFT_NOISY:
        # Faster than calibrated is the warm-up finishing, not noise. A
        # recalibration alone is no flag: it resized the blocks, and the drift
        # (against the first calibration) says whether the machine stayed slow.
        again = f", calibrated again {r.recalibrations}x" if r.recalibrations else ""
        found.append((NOISY, f"calls ran {r.drift:.1f}x as long as calibrated{again}"))
    return found


def _precision_missed(half: float, target: float, processes: int) -> str:
    """Why R's interval is wider than --precision asked."""
    missed = f"R CI half-width {fmt.percent(half)} did not reach the --precision {fmt.percent(target)} asked"
    if processes > 1:
        # Rounds narrow each process's interval, never the spread between
        # processes that the interval over them holds.
        return (f"{missed}: more rounds narrow each of the {processes} processes, not the spread "
                "between them (more processes do: --max-processes)")
    return f"{missed} within --max-time"


def within_process_iqr(r: Record) -> float:
    """IQR over the median of each process's rounds, the median over processes (NaN without rounds)."""
    sizes = r.process_rounds if sum(r.process_rounds) == len(r.samples_s) else ()
    spreads = [intervals.iqr(g) / abs(m) for g in intervals.split(r.samples_s, sizes)
               if len(g) and (m := intervals.median(g)) != 0]
    if not spreads:  # rows without samples (imported): the stored IQR of all rounds
        return r.iqr_s / r.median_s if r.median_s > 0 and r.iqr_s == r.iqr_s else math.nan
    return intervals.median(spreads)


def _interval(r: Record) -> tuple[float, float, float, str]:
    """The value whose interval judges the row: R for the gradient, the ratio or median otherwise."""
    if r.phase == "forward":
        return r.median_s, r.ci_low_s, r.ci_high_s, "median"
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
        """The phase against the forward pass of the same rounds (machine speed cancels), else its median."""
        r, fwd = by_phase.get(phase), by_phase.get("forward")
        if r is None or fwd is None:
            return math.nan
        if r.ratio == r.ratio:
            return r.ratio
        return r.median_s / fwd.median_s if fwd.median_s > 0 else math.nan

    if (b := by_phase.get("backward")) is not None and b.median_s <= 0:
        found.append((UNRELIABLE, "derived backward time <= 0: forward and gradient times contradict"))
    if t("gradient") < CONTAINS_SLACK:
        found.append((UNRELIABLE, "gradient faster than the forward pass it contains"))
    # Medians over all rounds can mix processes differently for two phases
    # (seen: a step 10 % faster than its gradient while their ratios to the
    # forward pass of the same rounds agreed within 1 %); ratios cannot.
    if t("step") < CONTAINS_SLACK * t("gradient"):
        found.append((UNRELIABLE, "step faster than the gradient it contains"))
    return found


def worst(levels: Sequence[str]) -> str:
    """The worst of some quality levels (good when none)."""
    return max(levels, key=LEVELS.index, default=GOOD)


def assess(rows: Sequence[Record]) -> list[Record]:
    """The rows of one case with ``quality`` and ``quality_reason`` set on every ``ok`` row."""
    case = _case_findings(rows)
    # The derived backward row has no rounds of its own: it is as good as the gradient it comes from.
    gradient = next((r for r in rows if r.phase == "gradient" and r.status == "ok"), None)
    out = []
    for r in rows:
        if r.status != "ok":
            out.append(r)
            continue
        own = _row_findings(gradient if r.phase == "backward" and gradient is not None else r)
        # The worst reasons first: the summary table quotes the first one.
        found = sorted([*own, *case], key=lambda f: -LEVELS.index(f[0]))
        level = worst([lvl for lvl, _ in found])
        reasons = "; ".join(why for lvl, why in found if lvl != GOOD)
        out.append(dataclasses.replace(r, quality=level, quality_reason=reasons))
    return out


class Summary(TypedDict):
    """Rows per quality level, and the most common reason among the flagged ones (``main_reason``)."""

    good: int
    noisy: int
    unreliable: int
    main_reason: str


def summary(records: Sequence[Record]) -> Summary:
    """Counts of ok rows per quality level, and the most common reason among the flagged ones."""
    ok = [r for r in records if r.status == "ok" and r.quality]
    return summary_of((r.quality for r in ok), (r.quality_reason for r in ok))


def summary_of(levels: Iterable[str], reasons: Iterable[str]) -> Summary:
    """Counts of some rows' quality levels (one per LEVELS), and ``main_reason`` of their reasons.

    The two columns of the rows, as iterables: Records (``summary``) or a
    table's columns (the report) give the same numbers.
    """
    counts = Counter(levels)
    return Summary(good=counts[GOOD], noisy=counts[NOISY], unreliable=counts[UNRELIABLE],
                   main_reason=main_reason(reasons))


def main_reason(quality_reasons: Iterable[str]) -> str:
    """The most common kind of reason in some ``quality_reason`` texts, quoted as one row said it.

    Reasons of one kind ("IQR is 35 % of the median", "IQR is 12 % ...") count
    together; '' when none. On a tie, interference is named before its symptoms.
    """
    counts: Counter[str] = Counter()
    quoted: dict[str, str] = {}  # each kind as its first reason said it
    for text in quality_reasons:
        for why in filter(None, text.split("; ")):
            kind = _kind(why)
            counts[kind] += 1
            quoted.setdefault(kind, why)
    if not quoted:
        return ""
    # On a tie a cause (other processes, the hypervisor) beats a symptom (a
    # wide IQR or CI): under a CPU hog every row says both.
    return quoted[max(quoted, key=lambda kind: (counts[kind], _is_cause(quoted[kind])))]


def _is_cause(reason: str) -> bool:
    return reason.startswith(("other processes", "the hypervisor"))


def _kind(reason: str) -> str:
    """A reason without its numbers."""
    return " ".join(w for w in reason.split() if not any(c.isdigit() for c in w))
