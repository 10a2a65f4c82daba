"""Comparing runs: per matching case, a speedup with its CI and a verdict that survives noise.

A change is called only when it is both larger than a minimum effect and
statistically significant (Mann-Whitney U on the raw per-round samples):
significance alone calls 1 % "changes" on quiet machines, an effect size
alone calls noise on busy ones (the asv / Google Benchmark rule). Where a
side has no raw samples (pytest-benchmark files saved without
``--benchmark-save-data``), the medians are compared and the verdict says that
no test was possible: a slowdown is shown, never hidden as "no change".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.core.records import ROW_KEY
from bench.stats import intervals
from bench.stats.bootstrap import FloatArray, IndexArray, Samples

KEYS = ROW_KEY
# Memory columns carried into the comparison as base_* and new_*: the peak of
# one call, M (peak over the forward's; on gradient rows the headline M) and
# what is kept for the backward pass. NaN where a side did not measure them
# (TensorFlow, files written before bench measured memory).
MEMORY_COLUMNS = ("peak_bytes", "memory_ratio", "saved_bytes")
# The R a run stored on its gradient rows, with its interval over processes: compare_ratios shows it.
RATIO_COLUMNS = ("ratio", "ratio_ci_low", "ratio_ci_high")
# The columns `bench compare` reads (store.read_runs(columns=...)): what identifies a row and its run,
# and what compare, compare_ratios and pooled use.
COLUMNS = ("run_id", *KEYS, "status", "median_s", "samples_s", "process_rounds", "quality", *MEMORY_COLUMNS,
           *RATIO_COLUMNS)
MIN_EFFECT = 0.05
ALPHA = 0.05
# The call when either side's row is unreliable (bench.stats.quality), or when the test is
# significant but the speedup's CI still holds 1 (no call may contradict its interval).
INCONCLUSIVE = "inconclusive: noisy"
# The calls when a side has too few raw samples for the test: the speedup is
# then the quotient of the medians, and --fail-on-regression acts on it.
NO_SAMPLES = "no samples: no significance test"
FEW_SAMPLES = "too few samples: no significance test"
UNTESTED = (NO_SAMPLES, FEW_SAMPLES)
MIN_SAMPLES = 3
# --run: the newest run of each side, or every run's rows pooled.
LATEST, POOL = "latest", "pool"
# One run's metadata (bench.store.read_metadata); the calls of ``changes`` (object strings).
Metadata = dict[str, Any]
Calls = npt.NDArray[np.object_]


@dataclass(frozen=True)
class Change:
    """How NEW compares with BASE: speedup = median(base) / median(new), > 1 is faster."""

    speedup: intervals.Interval
    p_value: float
    call: str  # "faster", "slower", "no significant change", INCONCLUSIVE or one of UNTESTED


def change(base: Samples, new: Samples, min_effect: float = MIN_EFFECT,
           alpha: float = ALPHA) -> Change:
    """Speedup of ``new`` over ``base`` (two independent sets of samples) and the call.

    Fewer than MIN_SAMPLES on a side admit no test: the call is then
    NO_SAMPLES (a side has none) or FEW_SAMPLES, never "no significant change".
    One row of ``changes``.
    """
    value, low, high, p, call = changes([np.asarray(base, dtype=float)], [np.asarray(new, dtype=float)],
                                        min_effect, alpha)
    speedup = intervals.Interval(float(value[0]), float(low[0]), float(high[0]))
    return Change(speedup, float(p[0]), str(call[0]))


def changes(base: Sequence[object], new: Sequence[object], min_effect: float = MIN_EFFECT,
            alpha: float = ALPHA) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, Calls]:
    """``change`` of many rows at once (row i: ``base[i]`` against ``new[i]``), vectorised.

    Returns arrays ``(speedup, ci_low, ci_high, p_value, call)``; the CIs are
    ``bench.stats.bootstrap``'s and the tests ``bench.stats.significance``'s, which
    stack the rows that have the same numbers of samples, so 100,000 rows take
    seconds, not a quarter of an hour. A significant change whose CI holds 1
    is INCONCLUSIVE, not faster or slower.
    """
    from bench.stats import bootstrap, significance

    a, b = bootstrap.as_arrays(base), bootstrap.as_arrays(new)
    value, low, high = bootstrap.ratio_of_medians(a, b)
    na = np.array([len(x) for x in a], dtype=int)
    nb = np.array([len(x) for x in b], dtype=int)
    tested = (na >= MIN_SAMPLES) & (nb >= MIN_SAMPLES)
    p = np.full(len(a), math.nan)
    if tested.any():
        rows = np.flatnonzero(tested)
        p[rows] = significance.mannwhitney_p([a[i] for i in rows], [b[i] for i in rows])
    significant = p < alpha
    call = np.full(len(a), "no significant change", dtype=object)
    call[significant & (value <= 1 / (1 + min_effect))] = "slower"
    call[significant & (value >= 1 + min_effect)] = "faster"
    # The test ranks the samples, the CI bootstraps their medians: on bimodal or very noisy
    # samples they disagree, and "faster" beside [0.01, 2.14] would contradict its own interval.
    with np.errstate(invalid="ignore"):
        crosses = np.isfinite(low) & np.isfinite(high) & (low <= 1) & (high >= 1)
    call[crosses & np.isin(call, ("faster", "slower"))] = INCONCLUSIVE
    call[~tested] = np.where((na == 0) | (nb == 0), NO_SAMPLES, FEW_SAMPLES)[~tested]
    return value, low, high, p, call


def _numbers(df: Any, col: str) -> FloatArray:
    """A column as floats, NaN where it is missing, None or not a number (files may lack a column)."""
    import pandas as pd

    if col not in df.columns:
        return np.full(len(df), math.nan)
    values: FloatArray = pd.to_numeric(df[col], errors="coerce").astype(float).to_numpy()
    return values


def _measured(df: Any) -> Any:
    """The rows that are compared: measured (ok), not the derived backward, the last of duplicates."""
    ok = df[(df.status == "ok") & (df.phase != "backward")]
    return ok.drop_duplicates(list(KEYS), keep="last")


def compare(base: Any, new: Any, min_effect: float = MIN_EFFECT, alpha: float = ALPHA) -> tuple[Any, Any]:
    """Match the measured rows of two results tables and call each case.

    Returns ``(table, unmatched)``: one row per matching (suite, case,
    framework, mode, device, phase, dtype) with both medians, the speedup and
    its CI, the p-value and the call, then both sides' memory (``base_`` and
    ``new_`` of each of MEMORY_COLUMNS) and ``peak_bytes_ratio`` = new / base
    peak; and the rows of either side that have no partner, with the side
    they came from (nothing is dropped silently). Vectorised over the rows
    (``changes``): two runs of 100,000 rows compare in seconds.
    """
    import pandas as pd

    b, n = _measured(base), _measured(new)
    wanted = ["median_s", "samples_s", "quality", *MEMORY_COLUMNS]
    sides = [df[list(KEYS)].assign(**{c: (df[c] if c in df.columns else None) for c in wanted})
             .reset_index(drop=True) for df in (b, n)]
    m = sides[0].merge(sides[1], on=list(KEYS), how="inner", suffixes=("_b", "_n"), sort=False)
    value, low, high, p, call = changes(m["samples_s_b"].tolist(), m["samples_s_n"].tolist(),
                                        min_effect, alpha)
    base_med, new_med = _numbers(m, "median_s_b"), _numbers(m, "median_s_n")
    untested = np.isin(call, UNTESTED)
    # No test: the stored medians (what the files hold) make the speedup, without an interval.
    value = np.where(untested, _speedups_of_medians(base_med, new_med), value)
    low, high, p = (np.where(untested, math.nan, x) for x in (low, high, p))
    # An unreliable measurement on either side supports no call at all.
    unreliable = (m["quality_b"] == "unreliable").to_numpy() | (m["quality_n"] == "unreliable").to_numpy()
    call = np.where(unreliable, INCONCLUSIVE, call)
    memory = {f"{side}_{col}": _numbers(m, f"{col}_{suffix}")
              for col in MEMORY_COLUMNS for side, suffix in (("base", "b"), ("new", "n"))}
    table = pd.DataFrame({
        **{k: m[k].to_numpy() for k in KEYS},
        "base_median_s": base_med, "new_median_s": new_med, "speedup": value, "speedup_ci_low": low,
        "speedup_ci_high": high, "p_value": p, "verdict": call, **memory,
        "peak_bytes_ratio": _quotients(memory["new_peak_bytes"], memory["base_peak_bytes"]),
    })
    bi, ni = b.set_index(list(KEYS)).index, n.set_index(list(KEYS)).index
    only_base = bi.difference(ni).to_frame(index=False).assign(side="base only")
    only_new = ni.difference(bi).to_frame(index=False).assign(side="new only")
    return table, pd.concat([only_base, only_new], ignore_index=True)


def _quotients(x: FloatArray, of: FloatArray) -> FloatArray:
    """x / of where both are finite and ``of`` positive, else NaN (``_quotient`` of whole columns)."""
    ok = np.isfinite(x) & np.isfinite(of) & (of > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, x / np.where(ok, of, 1.0), math.nan)


def _speedups_of_medians(base: FloatArray, new: FloatArray) -> FloatArray:
    """``_speedup_of_medians`` of whole columns."""
    ok = np.isfinite(base) & np.isfinite(new) & (base > 0) & (new > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = np.where(ok, base / np.where(ok, new, 1.0), math.nan)
    return np.where(np.isfinite(q), q, math.nan)


def regressions(table: Any, at: float) -> Any:
    """The rows of a comparison at least ``at`` slower (speedup <= 1 / (1 + at)): significantly
    slower where both sides have samples, by the medians alone where a side has too few."""
    if table.empty:
        return table
    called = table.verdict.isin(["slower", *UNTESTED])
    return table[called & (table.speedup.astype(float) <= 1 / (1 + at))]


def has_memory(table: Any) -> bool:
    """Whether both sides measured a peak on some matched row (what the memory table needs)."""
    if table.empty or "peak_bytes_ratio" not in table:
        return False
    return bool(np.isfinite(table["peak_bytes_ratio"].astype(float)).any())


def geomean_speedups(table: Any) -> Any:
    """Geometric mean speedup per framework, mode, device and phase over the matched cases."""
    if table.empty:
        return table
    logs = table.assign(log_speedup=np.log(table.speedup.astype(float)))
    out = logs.groupby(["framework", "mode", "device", "phase"], as_index=False).agg(
        cases=("case", "size"), log_speedup=("log_speedup", "mean"))
    return out.assign(geomean_speedup=np.exp(out.log_speedup)).drop(columns="log_speedup")


# Above this many rows a terminal table of every case is unreadable (and slow to print):
# ``bench compare`` prints ``summary`` instead, and ``bench export`` gives the rows.
TABLE_LIMIT = 200
SUMMARY_KEYS = ("suite", "framework", "mode", "device", "phase")


def summary(table: Any) -> Any:
    """Per suite, framework, mode, device and phase: the cases, their geometric-mean speedup and
    how many were called faster, slower, no change, inconclusive or untested (every row counts)."""
    import pandas as pd

    columns = [*SUMMARY_KEYS, "cases", "geomean_speedup", "faster", "slower", "no_change",
               "inconclusive", "untested"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    speedup = table.speedup.astype(float)
    logs = np.log(speedup.where(speedup > 0))
    calls = table.verdict
    t = pd.DataFrame({**{k: table[k] for k in SUMMARY_KEYS}, "log": logs,
                      "faster": calls == "faster", "slower": calls == "slower",
                      "no_change": calls == "no significant change", "inconclusive": calls == INCONCLUSIVE,
                      "untested": calls.isin(UNTESTED)})
    out = t.groupby(list(SUMMARY_KEYS), sort=True, dropna=False).agg(
        cases=("log", "size"), log=("log", "mean"), faster=("faster", "sum"), slower=("slower", "sum"),
        no_change=("no_change", "sum"), inconclusive=("inconclusive", "sum"),
        untested=("untested", "sum")).reset_index()
    return out.assign(geomean_speedup=np.exp(out["log"]))[columns]


def _ratio_samples(df: Any) -> Any:
    """Per-round R = T(gradient)/T(forward) of every measured case, keyed without the phase, with
    what its gradient row stored of R.

    A frame of the keys, ``R`` (one array per case), ``sizes`` (the rounds
    each process contributed to R, () for one process) and RATIO_COLUMNS
    (NaN where the rows hold none), in the keys' sorted order; cases whose two
    phases have different numbers of rounds are left out.
    """
    import pandas as pd

    keys = [k for k in KEYS if k != "phase"]
    ok = df[df.status == "ok"].drop_duplicates([*keys, "phase"], keep="last")
    f = ok[ok.phase == "forward"][[*keys, "samples_s"]]
    grad = ok[ok.phase == "gradient"]
    g = grad[[*keys, "samples_s"]].assign(
        sizes=grad["process_rounds"] if "process_rounds" in grad.columns else None,
        **{c: _numbers(grad, c) for c in RATIO_COLUMNS})
    m = g.merge(f, on=keys, how="inner", suffixes=("_g", "_f"))
    ratios, sizes = [], []
    for gs, fs, rounds in zip(m["samples_s_g"], m["samples_s_f"], m["sizes"], strict=True):
        gs, fs = (np.asarray(x if x is not None else (), dtype=float) for x in (gs, fs))
        r = gs / fs if len(gs) == len(fs) and len(gs) else None
        ratios.append(r)
        sizes.append(_process_sizes(rounds, 0 if r is None else len(r)))
    out = m[[*keys, *RATIO_COLUMNS]].assign(R=pd.Series(ratios, index=m.index, dtype=object),
                                             sizes=pd.Series(sizes, index=m.index, dtype=object))
    return out[out["R"].notna()].reset_index(drop=True)


def _process_sizes(rounds: Any, n: int) -> tuple[int, ...]:
    """A row's ``process_rounds`` when they cut its ``n`` rounds, else () (one process)."""
    if not isinstance(rounds, list | tuple | np.ndarray):  # None, or NaN in a frame that lacks them
        return ()
    sizes = tuple(int(k) for k in rounds)
    return sizes if sum(sizes) == n else ()


def compare_ratios(base: Any, new: Any, min_effect: float = MIN_EFFECT, alpha: float = ALPHA) -> Any:
    """R in both runs, per matching case: the dimensionless ratio travels between machines.

    A side's R and its 95% CI are what its run stored on the gradient row
    (RATIO_COLUMNS: the interval over processes that ``bench run`` computed
    and pooled, which its summary and the report show), so a case reads the
    same here as there. A side that pools several runs (``pooled``, ``pick``
    with POOL) has no stored R: it is the median of every run's rounds, with
    ``intervals.process_median_ci`` over the processes of all the runs (each
    run's ``process_rounds`` cut its rounds; a row without them is one
    process), without a pooled prior. The test of a change (p_value,
    R_change) is ``changes`` on the per-round R of both sides.
    """
    import pandas as pd

    keys = [k for k in KEYS if k != "phase"]
    m = _ratio_samples(base).merge(_ratio_samples(new), on=keys, how="inner", suffixes=("_b", "_n"))
    m = m.sort_values(keys, ignore_index=True)
    columns = [*keys, "base_R", "base_R_low", "base_R_high", "new_R", "new_R_low", "new_R_high",
               "p_value", "R_change"]
    if m.empty:
        return pd.DataFrame(columns=columns)
    _, _, _, p, call = changes(m["R_b"].tolist(), m["R_n"].tolist(), min_effect, alpha)
    moved = np.array([{"faster": "lower", "slower": "higher"}.get(c, c) for c in call], dtype=object)
    rb, rn = _side_ratios(m, "_b"), _side_ratios(m, "_n")
    return pd.DataFrame({**{k: m[k].to_numpy() for k in keys},
                         "base_R": rb[0], "base_R_low": rb[1], "base_R_high": rb[2],
                         "new_R": rn[0], "new_R_low": rn[1], "new_R_high": rn[2],
                         "p_value": p, "R_change": moved}, columns=columns)


def _side_ratios(m: Any, suffix: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One side's R, low and high per case: the stored ones where the row has a stored R, else
    computed from its rounds over its processes (a pooled side)."""
    value, low, high = (m[f"{c}{suffix}"].to_numpy(dtype=float, copy=True) for c in RATIO_COLUMNS)
    todo = np.flatnonzero(~np.isfinite(value))
    if len(todo):
        r, sizes = m[f"R{suffix}"].to_numpy(), m[f"sizes{suffix}"].to_numpy()
        value[todo], low[todo], high[todo] = _process_intervals(r[todo], sizes[todo])
    return value, low, high


def _process_intervals(ratios: Sequence[FloatArray], sizes: Sequence[tuple[int, ...]]
                       ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``intervals.process_median_ci`` of each row's values cut into its processes: the rows of one
    process all at once (``intervals.median_cis``, what process_median_ci gives one process), the
    others one t interval each."""
    groups = [[x for x in intervals.split(r, s) if len(x)] for r, s in zip(ratios, sizes, strict=True)]
    value, low, high = (np.full(len(groups), math.nan) for _ in range(3))
    one = [i for i, g in enumerate(groups) if len(g) < 2]
    if one:
        value[one], low[one], high[one] = intervals.median_cis(
            [np.concatenate(groups[i]) if groups[i] else () for i in one])
    for i, g in enumerate(groups):
        if len(g) >= 2:
            ci = intervals.process_median_ci(g)
            value[i], low[i], high[i] = ci.value, ci.low, ci.high
    return value, low, high


def fingerprint_diff(base_meta: Metadata | Sequence[Metadata], new_meta: Metadata | Sequence[Metadata]
                     ) -> list[tuple[str, str, str]]:
    """(field, base, new) for every machine or version fact that differs between two sides.

    A side is one run's metadata or several runs' (pooled): a fact on which
    its runs differ reads as all their values, ``1 | 2``.
    """

    def facts(meta: Any) -> dict[str, str]:
        meta = meta if isinstance(meta, dict) else {}
        fp, fws, settings = (meta.get(k) for k in ("fingerprint", "frameworks", "settings"))
        out = {f"machine.{k}": str(v) for k, v in (fp.items() if isinstance(fp, dict) else ())}
        out["machine"] = str(meta.get("machine", ""))
        for name, env in (fws.items() if isinstance(fws, dict) else ()):
            if isinstance(env, dict):
                out[f"{name}.version"] = str(env.get("version", env.get("unavailable", "")))
        for k, v in (settings.items() if isinstance(settings, dict) else ()):
            out[f"settings.{k}"] = str(v)
        return out

    def side(metas: Metadata | Sequence[Metadata]) -> dict[str, str]:
        each = [facts(m) for m in ([metas] if isinstance(metas, dict) else metas)] or [{}]
        keys = dict.fromkeys(k for f in each for k in f)
        return {k: " | ".join(dict.fromkeys(f.get(k, "-") for f in each)) for k in keys}

    a, b = side(base_meta), side(new_meta)
    return [(k, a.get(k, "-"), b.get(k, "-")) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


@dataclass(frozen=True)
class Side:
    """The rows of one side of a comparison that are compared, and which of its runs they are."""

    rows: Any  # DataFrame
    metadata: list[Metadata]  # of the chosen runs, in run order (those found)
    chosen: tuple[str, ...]  # run ids compared (several: pooled)
    runs: tuple[str, ...]  # every run id on this side, oldest first


def run_ids(df: Any) -> tuple[str, ...]:
    """The run ids of a results table, oldest first (bench's run ids start with the UTC time)."""
    if "run_id" not in df.columns:
        return ("",)
    return tuple(sorted(set(df.run_id.astype(str))))


def pick(df: Any, metadata: Sequence[Metadata], which: str = LATEST) -> Side | None:
    """The run of a side that is compared: LATEST (the newest), POOL (all, ``pooled``) or a run id
    (or the start of one). None when ``which`` names no run of this side."""
    from bench.core.errors import UserError

    runs = run_ids(df)
    if which == POOL:
        chosen = runs
    elif which == LATEST:
        chosen = runs[-1:]
    else:
        found = [r for r in runs if r == which] or [r for r in runs if r.startswith(which)]
        if not found:
            return None
        if len(found) > 1:
            raise UserError(f"--run {which} is ambiguous: {', '.join(found)}")
        chosen = tuple(found)
    rows = df if "run_id" not in df.columns else df[df.run_id.astype(str).isin(chosen)]
    if len(chosen) > 1:
        rows = pooled(rows)
    metas = [m for m in metadata if isinstance(m, dict)]
    by_id = {str(m.get("run_id")): m for m in metas}
    chosen_meta = [by_id[r] for r in chosen if r in by_id]
    if not chosen_meta and len(metas) == 1:
        chosen_meta = metas
    return Side(rows, chosen_meta, tuple(chosen), runs)


def pooled(df: Any) -> Any:
    """One row per case and phase, pooling the runs that measured it: the last run's row with the
    samples of all, in run order, each run's processes (``process_rounds``), and the worst quality
    of them. A pooled row has no stored R (RATIO_COLUMNS are NaN): that was one run's.

    A case that one of its runs measured without raw samples keeps none,
    and the median of the runs' medians: it is compared untested. The rows
    that were not measured come first, then one row per case in the order of
    its first row; grouped once, not case by case (pooling 100,000 cases).
    """
    import pandas as pd

    ok = df[df.status == "ok"]
    keys = [k for k in KEYS if k in df.columns]
    if ok.empty:
        return pd.concat([df[df.status != "ok"]] if (df.status != "ok").any() else [df.iloc[:0]],
                         ignore_index=True)
    group = ok.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    position = np.arange(len(ok))
    # Each group's last row, in the order of the groups' first rows (groupby's sort=False order).
    last = np.zeros(group.max() + 1, dtype=np.intp)
    np.maximum.at(last, group, position)
    counts = np.bincount(group)
    out = ok.iloc[last].reset_index(drop=True)  # labels = positions: a file's index may repeat
    several = np.flatnonzero(counts > 1)
    if len(several):
        members: dict[int, list[int]] = {}
        for g, i in zip(group, position, strict=True):
            if counts[g] > 1:
                members.setdefault(int(g), []).append(int(i))
        _pool_rows(out, ok, [members[int(g)] for g in several], several, last[several])
    parts = [f for f in (df[df.status != "ok"], out) if len(f)]
    return pd.concat(parts or [df.iloc[:0]], ignore_index=True)


def _pooled_sizes(rounds: list[Any], parts: list[FloatArray]) -> tuple[int, ...]:
    """The processes of runs' samples pooled in run order: each run's own (its ``process_rounds``),
    kept apart from the other runs'; a run without them counts as one process."""
    out: list[int] = []
    for r, p in zip(rounds, parts, strict=True):
        out += _process_sizes(r, len(p)) or (len(p),)
    return tuple(out)


def _pool_rows(out: Any, ok: Any, members: list[list[int]], at: IndexArray, last: IndexArray) -> None:
    """Give the rows ``at`` of ``out`` (``pooled``'s), in place, the pooled values of the rows of
    ``ok`` that each stands for (``members``, in run order; ``last``: the one it was copied from)."""
    import pandas as pd

    samples_col = ok["samples_s"].to_numpy()
    medians_col = pd.to_numeric(ok["median_s"], errors="coerce").to_numpy(float)
    quality_col = ok["quality"].to_numpy() if "quality" in ok.columns else None
    rounds_col = ok["process_rounds"].to_numpy() if "process_rounds" in ok.columns else None
    new_samples, new_medians, new_quality, new_rounds = [], [], [], []
    for rows, copied in zip(members, last, strict=True):
        parts = [np.asarray(samples_col[i] if samples_col[i] is not None else (), dtype=float)
                 for i in rows]
        whole = all(len(p) for p in parts)
        samples = np.concatenate(parts) if whole else np.array([], dtype=float)
        new_samples.append(samples)
        new_medians.append(intervals.median(samples) if whole else float(np.median(medians_col[rows])))
        if rounds_col is not None:
            new_rounds.append(_pooled_sizes([rounds_col[i] for i in rows], parts) if whole else ())
        if quality_col is not None:
            seen = {quality_col[i] for i in rows}
            levels = [q for q in ("unreliable", "noisy", "good") if q in seen]
            new_quality.append(levels[0] if levels else quality_col[copied])
    out["samples_s"] = out["samples_s"].astype(object)
    out.loc[at, "samples_s"] = pd.Series(new_samples, index=at, dtype=object)
    if rounds_col is not None:
        out["process_rounds"] = out["process_rounds"].astype(object)
        out.loc[at, "process_rounds"] = pd.Series(new_rounds, index=at, dtype=object)
    out.loc[at, "median_s"] = new_medians
    if quality_col is not None:
        out.loc[at, "quality"] = new_quality
    for col in RATIO_COLUMNS:
        if col in out.columns:
            out.loc[at, col] = math.nan
