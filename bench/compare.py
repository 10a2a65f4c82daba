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

from bench import stats

KEYS = ("suite", "case", "framework", "mode", "device", "phase", "dtype")
# Memory columns carried into the comparison as base_* and new_*: the peak of
# one call, M (peak over the forward's; on gradient rows the headline M) and
# what is kept for the backward pass. NaN where a side did not measure them
# (TensorFlow, files written before bench measured memory).
MEMORY_COLUMNS = ("peak_bytes", "memory_ratio", "saved_bytes")
MIN_EFFECT = 0.05
ALPHA = 0.05
# The call when either side's row is unreliable (bench.quality).
INCONCLUSIVE = "inconclusive: noisy"
# The calls when a side has too few raw samples for the test: the speedup is
# then the quotient of the medians, and --fail-on-regression acts on it.
NO_SAMPLES = "no samples: no significance test"
FEW_SAMPLES = "too few samples: no significance test"
UNTESTED = (NO_SAMPLES, FEW_SAMPLES)
MIN_SAMPLES = 3
# --run: the newest run of each side, or every run's rows pooled.
LATEST, POOL = "latest", "pool"


@dataclass(frozen=True)
class Verdict:
    """How NEW compares with BASE: speedup = median(base) / median(new), > 1 is faster."""

    speedup: stats.Interval
    p_value: float
    call: str  # "faster", "slower", "no significant change", INCONCLUSIVE or one of UNTESTED


def verdict(base: Sequence[float], new: Sequence[float], min_effect: float = MIN_EFFECT,
            alpha: float = ALPHA) -> Verdict:
    """Speedup of ``new`` over ``base`` (two independent sets of samples) and the call.

    Fewer than MIN_SAMPLES on a side admit no test: the call is then
    NO_SAMPLES (a side has none) or FEW_SAMPLES, never "no significant change".
    """
    from scipy import stats as sps

    a, b = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    speedup = stats.ratio_of_medians(a, b)
    if len(a) < MIN_SAMPLES or len(b) < MIN_SAMPLES:
        return Verdict(speedup, math.nan, NO_SAMPLES if not len(a) or not len(b) else FEW_SAMPLES)
    p = float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    call = "no significant change"
    if p < alpha and speedup.value >= 1 + min_effect:
        call = "faster"
    elif p < alpha and speedup.value <= 1 / (1 + min_effect):
        call = "slower"
    return Verdict(speedup, p, call)


def compare(base, new, min_effect: float = MIN_EFFECT, alpha: float = ALPHA):
    """Match the measured rows of two results tables and call each case.

    Returns ``(table, unmatched)``: one row per matching (suite, case,
    framework, mode, device, phase, dtype) with both medians, the speedup and
    its CI, the p-value and the call, then both sides' memory (``base_`` and
    ``new_`` of each of MEMORY_COLUMNS) and ``peak_bytes_ratio`` = new / base
    peak; and the rows of either side that have no partner, with the side
    they came from (nothing is dropped silently).
    """
    import pandas as pd

    def measured(df):
        ok = df[(df.status == "ok") & (df.phase != "backward")]
        return ok.drop_duplicates(list(KEYS), keep="last").set_index(list(KEYS))

    def number(df, key, col: str) -> float:
        value = df.loc[key, col] if col in df.columns else math.nan
        return math.nan if value is None or pd.isna(value) else float(value)

    b, n = measured(base), measured(new)
    rows = []
    for key in b.index.intersection(n.index):
        v = verdict(_samples(b, key), _samples(n, key), min_effect, alpha)
        if v.call in UNTESTED:
            # No test: the stored medians (what the files hold) make the speedup.
            speedup = _speedup_of_medians(number(b, key, "median_s"), number(n, key, "median_s"))
            v = Verdict(stats.Interval(speedup, math.nan, math.nan), math.nan, v.call)
        unreliable = [side for side, df in (("base", b), ("new", n)) if _quality(df, key) == "unreliable"]
        if unreliable:
            # An unreliable measurement on either side supports no call at all.
            v = Verdict(v.speedup, v.p_value, INCONCLUSIVE)
        memory = {f"{side}_{col}": number(df, key, col)
                  for col in MEMORY_COLUMNS for side, df in (("base", b), ("new", n))}
        rows.append({
            **dict(zip(KEYS, key, strict=True)),
            "base_median_s": b.loc[key, "median_s"], "new_median_s": n.loc[key, "median_s"],
            "speedup": v.speedup.value, "speedup_ci_low": v.speedup.low,
            "speedup_ci_high": v.speedup.high, "p_value": v.p_value, "verdict": v.call,
            **memory, "peak_bytes_ratio": _quotient(memory["new_peak_bytes"], memory["base_peak_bytes"]),
        })
    memory_cols = [f"{side}_{col}" for col in MEMORY_COLUMNS for side in ("base", "new")]
    table = pd.DataFrame(rows, columns=[*KEYS, "base_median_s", "new_median_s", "speedup",
                                        "speedup_ci_low", "speedup_ci_high", "p_value", "verdict",
                                        *memory_cols, "peak_bytes_ratio"])
    only_base = b.index.difference(n.index).to_frame(index=False).assign(side="base only")
    only_new = n.index.difference(b.index).to_frame(index=False).assign(side="new only")
    return table, pd.concat([only_base, only_new], ignore_index=True)


def _samples(df, key) -> np.ndarray:
    value = df.loc[key, "samples_s"]
    return np.asarray(value if value is not None else (), dtype=float)


def regressions(table, at: float):
    """The rows of a comparison at least ``at`` slower (speedup <= 1 / (1 + at)): significantly
    slower where both sides have samples, by the medians alone where a side has too few."""
    if table.empty:
        return table
    called = table.verdict.isin(["slower", *UNTESTED])
    return table[called & (table.speedup.astype(float) <= 1 / (1 + at))]


def _quality(df, key) -> str:
    value = df.loc[key, "quality"] if "quality" in df.columns else ""
    return value if isinstance(value, str) else ""


def _quotient(x: float, of: float) -> float:
    return x / of if math.isfinite(x) and math.isfinite(of) and of > 0 else math.nan


def _speedup_of_medians(base: float, new: float) -> float:
    """base / new for two times (positive and finite), else NaN: a speedup only between times."""
    if not (math.isfinite(base) and math.isfinite(new) and base > 0 and new > 0):
        return math.nan
    q = base / new
    return q if math.isfinite(q) else math.nan


def has_memory(table) -> bool:
    """Whether both sides measured a peak on some matched row (what the memory table needs)."""
    if table.empty or "peak_bytes_ratio" not in table:
        return False
    return bool(np.isfinite(table["peak_bytes_ratio"].astype(float)).any())


def geomean_speedups(table):
    """Geometric mean speedup per framework, mode, device and phase over the matched cases."""
    if table.empty:
        return table
    logs = table.assign(log_speedup=np.log(table.speedup.astype(float)))
    out = logs.groupby(["framework", "mode", "device", "phase"], as_index=False).agg(
        cases=("case", "size"), log_speedup=("log_speedup", "mean"))
    return out.assign(geomean_speedup=np.exp(out.log_speedup)).drop(columns="log_speedup")


def _ratio_samples(df):
    """Per-round R = T(gradient)/T(forward) of every measured case, keyed without the phase."""
    keys = [k for k in KEYS if k != "phase"]
    ok = df[df.status == "ok"].drop_duplicates([*keys, "phase"], keep="last")
    f = ok[ok.phase == "forward"].set_index(keys)
    g = ok[ok.phase == "gradient"].set_index(keys)
    out = {}
    for key in g.index.intersection(f.index):
        gs, fs = np.asarray(g.loc[key, "samples_s"]), np.asarray(f.loc[key, "samples_s"])
        if len(gs) == len(fs) and len(gs):
            out[key] = gs / fs
    return out


def compare_ratios(base, new, min_effect: float = MIN_EFFECT, alpha: float = ALPHA):
    """R in both runs, per matching case: the dimensionless ratio travels between machines."""
    import pandas as pd

    keys = [k for k in KEYS if k != "phase"]
    b, n = _ratio_samples(base), _ratio_samples(new)
    rows = []
    for key in sorted(set(b) & set(n)):
        v = verdict(b[key], n[key], min_effect, alpha)
        call = {"faster": "lower", "slower": "higher"}.get(v.call, v.call)
        rb, rn = stats.median_ci(b[key]), stats.median_ci(n[key])
        rows.append({**dict(zip(keys, key, strict=True)), "base_R": rb.value, "base_R_low": rb.low,
                     "base_R_high": rb.high, "new_R": rn.value, "new_R_low": rn.low,
                     "new_R_high": rn.high, "p_value": v.p_value, "R_change": call})
    return pd.DataFrame(rows)


def fingerprint_diff(base_meta: dict | Sequence[dict], new_meta: dict | Sequence[dict]
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

    def side(metas: dict | Sequence[dict]) -> dict[str, str]:
        each = [facts(m) for m in ([metas] if isinstance(metas, dict) else metas)] or [{}]
        keys = dict.fromkeys(k for f in each for k in f)
        return {k: " | ".join(dict.fromkeys(f.get(k, "-") for f in each)) for k in keys}

    a, b = side(base_meta), side(new_meta)
    return [(k, a.get(k, "-"), b.get(k, "-")) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


@dataclass(frozen=True)
class Side:
    """The rows of one side of a comparison that are compared, and which of its runs they are."""

    rows: Any  # DataFrame
    metadata: list[dict]  # of the chosen runs, in run order (those found)
    chosen: tuple[str, ...]  # run ids compared (several: pooled)
    runs: tuple[str, ...]  # every run id on this side, oldest first


def run_ids(df) -> tuple[str, ...]:
    """The run ids of a results table, oldest first (bench's run ids start with the UTC time)."""
    if "run_id" not in df.columns:
        return ("",)
    return tuple(sorted(set(df.run_id.astype(str))))


def pick(df, metadata: Sequence[dict], which: str = LATEST) -> Side | None:
    """The run of a side that is compared: LATEST (the newest), POOL (all, ``pooled``) or a run id
    (or the start of one). None when ``which`` names no run of this side."""
    from bench.errors import UserError

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


def pooled(df):
    """One row per case and phase, pooling the runs that measured it: the last run's row with the
    samples of all, in run order, and the worst quality of them.

    A case that one of its runs measured without raw samples keeps none,
    and the median of the runs' medians: it is compared untested.
    """
    import pandas as pd

    ok = df[df.status == "ok"]
    out = [df[df.status != "ok"]]
    keys = [k for k in KEYS if k in df.columns]
    for _, group in ok.groupby(keys, sort=False, dropna=False):
        last = group.iloc[[-1]].copy()
        if len(group) > 1:
            parts = [np.asarray(s if s is not None else (), dtype=float) for s in group.samples_s]
            whole = all(len(p) for p in parts)
            samples = np.concatenate(parts) if whole else np.array([], dtype=float)
            last["samples_s"] = pd.Series([samples], index=last.index, dtype=object)
            last["median_s"] = (stats.median(samples) if whole
                                else float(np.median(group.median_s.astype(float))))
            if "quality" in group.columns:
                levels = [q for q in ("unreliable", "noisy", "good") if (group.quality == q).any()]
                last["quality"] = levels[0] if levels else last["quality"].iloc[0]
        out.append(last)
    return pd.concat([f for f in out if len(f)] or [df.iloc[:0]], ignore_index=True)
