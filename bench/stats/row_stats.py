"""Raw samples in, statistics out: the one place that turns rounds into numbers.

A worker stores every per-round sample of every phase; this module computes
from them the median, IQR, minimum and 95 % CI of each phase, the paired
ratio to the forward pass (R on the gradient row) with its CI, the derived
backward time, and FLOP/s. When a case is measured in several worker
processes (``bench run --processes N``), ``merge`` pools the processes'
samples and recomputes everything with intervals over the processes
(``bench.stats.intervals.process_median_ci``), and at the end of the run ``pool``
narrows them with the between-process spread of the run's other cases.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from bench.core.records import PHASES, CaseKey, Record
from bench.stats import intervals, quality

Priors = tuple[intervals.Spread | None, intervals.Spread | None]  # (the time's, the ratio's)


def measured(samples: Sequence[float], forward: Sequence[float], sizes: Sequence[int] = (),
             priors: Priors = (None, None)) -> dict[str, Any]:
    """Statistics of one timed phase from its per-round samples and the forward pass's of the same rounds.

    ``sizes`` are the rounds each process contributed, in order (empty: one
    process); ``priors`` the pooled spreads of the time and the ratio (``pool``).
    """
    groups = intervals.split(samples, sizes)
    ci = intervals.process_median_ci(groups, prior=priors[0])
    r = intervals.paired_ratio(samples, forward, sizes, priors[1])
    return {
        "median_s": ci.value, "iqr_s": intervals.iqr(samples), "min_s": min(samples, default=math.nan),
        "ci_low_s": ci.low, "ci_high_s": ci.high, "rounds": len(samples),
        "samples_s": tuple(samples),
        "ratio": r.value, "ratio_ci_low": r.low, "ratio_ci_high": r.high,
    }


def derived_backward(gradient: Sequence[float], forward: Sequence[float],
                     sizes: Sequence[int] = (), priors: Priors = (None, None)) -> dict[str, Any]:
    """backward = gradient - forward, round by round, with R - 1 as its ratio."""
    diff = tuple(a - b for a, b in zip(gradient, forward, strict=True))
    d = intervals.paired_difference(gradient, forward, sizes, priors[0])
    r = intervals.paired_ratio(gradient, forward, sizes, priors[1])
    return {
        "median_s": d.value, "iqr_s": intervals.iqr(diff), "min_s": min(diff, default=math.nan),
        "ci_low_s": d.low, "ci_high_s": d.high, "rounds": len(diff), "samples_s": diff,
        "ratio": r.value - 1, "ratio_ci_low": r.low - 1, "ratio_ci_high": r.high - 1,
    }


def _sizes(r: Record) -> tuple[int, ...]:
    return r.process_rounds or ((len(r.samples_s),) if r.samples_s else ())


def merge(old: Sequence[Record], new: Sequence[Record]) -> list[Record]:
    """The rows of one case measured by earlier processes (``old``) and one more (``new``).

    Samples are pooled in process order, so round ``i`` of every phase still
    pairs with round ``i`` of the forward pass; every statistic is computed
    again from them. What only the first process measures (equivalence,
    training curve, memory, first call) is kept from ``old``. A process that
    did not measure the case adds nothing, and a case the first process did
    not measure (failed, crashed) stays as it left it.
    """
    before = {r.phase: r for r in old}
    after = {r.phase: r for r in new}
    timed = [p for p in PHASES if p != "backward"]
    if not all(after.get(p) is None or after[p].status in ("ok", "skipped") for p in timed) or not any(
            r.status == "ok" for r in new):
        return list(old)
    if not any(r.status == "ok" for r in old):
        # Only the first process checks equivalence: it alone decides whether
        # a case is measured at all.
        return list(old)
    fwd_old, fwd_new = before["forward"], after["forward"]
    sizes = (*_sizes(fwd_old), *_sizes(fwd_new))
    forward = (*fwd_old.samples_s, *fwd_new.samples_s)
    out: list[Record] = []
    for phase in PHASES:
        a, b = before.get(phase), after.get(phase)
        if a is None or a.status != "ok" or b is None or b.status != "ok":
            kept = a if a is not None else b
            if kept is not None:  # None: a phase neither process has a row for
                out.append(kept)
            continue
        if phase == "backward":
            g_old, g_new = before["gradient"], after["gradient"]
            numbers = derived_backward((*g_old.samples_s, *g_new.samples_s), forward, sizes)
        else:
            numbers = measured((*a.samples_s, *b.samples_s), forward, sizes)
            numbers["drift"] = intervals.median([x for x in (a.drift, b.drift) if x == x])
            numbers["recalibrations"] = a.recalibrations + b.recalibrations
        t = numbers["median_s"]
        out.append(dataclasses.replace(
            a, **numbers, process_rounds=sizes,
            flops_per_s=a.flops / t if t > 0 else math.nan,
            # The worst process speaks for the case: quality must see it.
            interference=_nanmax(a.interference, b.interference),
            interference_max=_nanmax(a.interference_max, b.interference_max),
            steal=_nanmax(a.steal, b.steal),
        ))
    return quality.assess(out)


def _nanmax(*xs: float) -> float:
    return max((x for x in xs if x == x), default=math.nan)


def _spreads(r: Record, forward: Record, gradient: Record | None
             ) -> tuple[intervals.Spread, intervals.Spread]:
    """The between-process spreads of a row's time (a difference for backward) and of its ratio."""
    sizes = _sizes(forward)
    fwd = forward.samples_s
    if r.phase == "backward":
        g = gradient.samples_s if gradient is not None else ()
        diff = [a - b for a, b in zip(g, fwd, strict=True)]
        return (intervals.spread(intervals.split(diff, sizes), log=False),
                intervals.spread(intervals.split([a / b for a, b in zip(g, fwd, strict=True)], sizes)))
    ratio = [a / b for a, b in zip(r.samples_s, fwd, strict=True)]
    return (intervals.spread(intervals.split(r.samples_s, sizes)),
            intervals.spread(intervals.split(ratio, sizes)))


def _pool_key(r: Record) -> tuple[str, str]:
    """The rows whose between-process spreads pool: one device's, of one phase."""
    return r.device, r.phase


def _others(spreads: dict[CaseKey, tuple[intervals.Spread, intervals.Spread]], own: CaseKey) -> Priors:
    """The spreads of every case but ``own`` pooled: a case's data must not count twice in its interval."""
    others = [v for k, v in spreads.items() if k != own]
    return intervals.Spread.pooled([a for a, _ in others]), intervals.Spread.pooled([b for _, b in others])


def pool(records: Sequence[Record]) -> list[Record]:
    """The run's rows with the intervals of multi-process cases narrowed by the run's pooled spread.

    Three processes estimate a case's between-process variance with 2 degrees
    of freedom, which makes honest intervals very wide. The cases of one run
    share the machine and its moods, so the spread the run's other cases
    share on the same device and phase, whatever their framework or mode,
    lends the interval up to ``intervals.PRIOR_DF`` more degrees of freedom
    (``intervals.process_median_ci``). The pool is robust (``intervals.Spread.pooled``)
    and leaves the case's own spread out, so one case with an odd process
    widens no other. Measured on the 2-core VM (docs/measurements.md, "Noise checks: do the
    intervals hold?"): reruns' R fell inside 84-96 % of these intervals (90 % over
    five checks), nearly as often as inside each case's own, twice as wide,
    intervals (91 %). Rows of one
    process are returned as they are; quality is assessed again.
    """
    cases: dict[CaseKey, list[Record]] = {}
    for r in records:
        cases.setdefault(CaseKey.of(r), []).append(r)
    multi: dict[CaseKey, dict[str, Record]] = {}
    for key, rows in cases.items():
        by = {r.phase: r for r in rows if r.status == "ok"}
        fwd = by.get("forward")
        if fwd is not None and len(fwd.process_rounds) > 1:
            multi[key] = by
    found: dict[tuple[str, str], dict[CaseKey, tuple[intervals.Spread, intervals.Spread]]] = {}
    for key, by in multi.items():
        for r in by.values():
            found.setdefault(_pool_key(r), {})[key] = _spreads(r, by["forward"], by.get("gradient"))
    out: list[Record] = []
    for key, rows in cases.items():
        phases = multi.get(key)
        if phases is None:
            out.extend(rows)
            continue
        fwd, sizes = phases["forward"], _sizes(phases["forward"])
        new = []
        for r in rows:
            if r.status != "ok":
                new.append(r)
                continue
            priors = _others(found[_pool_key(r)], key)
            if r.phase == "backward":
                numbers = derived_backward(phases["gradient"].samples_s, fwd.samples_s, sizes, priors)
            else:
                numbers = measured(r.samples_s, fwd.samples_s, sizes, priors)
            keep = {k: numbers[k] for k in ("ci_low_s", "ci_high_s", "ratio_ci_low", "ratio_ci_high")}
            new.append(dataclasses.replace(r, **keep))
        out.extend(quality.assess(new))
    return out
