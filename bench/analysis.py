"""Raw samples in, statistics out: the one place that turns rounds into numbers.

A worker stores every per-round sample of every phase; this module computes
from them the median, IQR, minimum and 95 % CI of each phase, the paired
ratio to the forward pass (R on the gradient row) with its CI, the derived
backward time, and FLOP/s. When a case is measured in several worker
processes (``bench run --processes N``), ``merge`` pools the processes'
samples and recomputes everything with intervals that resample processes
first, then rounds within each (``bench.stats.hierarchical_median_ci``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from bench import quality, stats
from bench.spec import PHASES, Record

Key = tuple[str, str, str, str, str]


def case_key(r: Record) -> Key:
    """Which case of which framework, mode and device a row belongs to."""
    return (r.suite, r.case, r.framework, r.mode, r.device)


def measured(samples: Sequence[float], forward: Sequence[float], sizes: Sequence[int] = ()) -> dict[str, Any]:
    """Statistics of one timed phase from its per-round samples and the forward pass's of the same rounds.

    ``sizes`` are the rounds each process contributed, in order (empty: one process).
    """
    groups = stats.split(samples, sizes)
    ci = stats.hierarchical_median_ci(groups)
    r = stats.paired_ratio(samples, forward, sizes)
    return {
        "median_s": ci.value, "iqr_s": stats.iqr(samples), "min_s": min(samples, default=math.nan),
        "ci_low_s": ci.low, "ci_high_s": ci.high, "rounds": len(samples),
        "samples_s": tuple(samples),
        "ratio": r.value, "ratio_ci_low": r.low, "ratio_ci_high": r.high,
    }


def derived_backward(gradient: Sequence[float], forward: Sequence[float],
                     sizes: Sequence[int] = ()) -> dict[str, Any]:
    """backward = gradient - forward, round by round, with R - 1 as its ratio."""
    diff = tuple(a - b for a, b in zip(gradient, forward, strict=True))
    d = stats.paired_difference(gradient, forward, sizes)
    r = stats.paired_ratio(gradient, forward, sizes)
    return {
        "median_s": d.value, "iqr_s": stats.iqr(diff), "min_s": min(diff, default=math.nan),
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
    out = []
    for phase in PHASES:
        a, b = before.get(phase), after.get(phase)
        if a is None or a.status != "ok" or b is None or b.status != "ok":
            out.append(a if a is not None else b)
            continue
        if phase == "backward":
            g_old, g_new = before["gradient"], after["gradient"]
            numbers = derived_backward((*g_old.samples_s, *g_new.samples_s), forward, sizes)
        else:
            numbers = measured((*a.samples_s, *b.samples_s), forward, sizes)
            numbers["drift"] = stats.median([x for x in (a.drift, b.drift) if x == x])
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
