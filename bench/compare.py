"""Comparing runs: per matching case, a speedup with its CI and a verdict that survives noise.

A change is called only when it is both larger than a minimum effect and
statistically significant (Mann-Whitney U on the raw per-round samples):
significance alone calls 1 % "changes" on quiet machines, an effect size
alone calls noise on busy ones (the asv / Google Benchmark rule).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Verdict:
    """How NEW compares with BASE: speedup = median(base) / median(new), > 1 is faster."""

    speedup: stats.Interval
    p_value: float
    call: str  # "faster", "slower", "no significant change" or INCONCLUSIVE


def verdict(base: Sequence[float], new: Sequence[float], min_effect: float = MIN_EFFECT,
            alpha: float = ALPHA) -> Verdict:
    """Speedup of ``new`` over ``base`` (two independent sets of samples) and the call."""
    from scipy import stats as sps

    a, b = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    speedup = stats.ratio_of_medians(a, b)
    if len(a) < 3 or len(b) < 3:
        return Verdict(speedup, math.nan, "no significant change")
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
        v = verdict(b.loc[key, "samples_s"], n.loc[key, "samples_s"], min_effect, alpha)
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


def _quality(df, key) -> str:
    value = df.loc[key, "quality"] if "quality" in df.columns else ""
    return value if isinstance(value, str) else ""


def _quotient(x: float, of: float) -> float:
    return x / of if math.isfinite(x) and math.isfinite(of) and of > 0 else math.nan


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


def fingerprint_diff(base_meta: dict, new_meta: dict) -> list[tuple[str, str, str]]:
    """(field, base, new) for every machine or version fact that differs between two runs."""

    def facts(meta: dict) -> dict[str, str]:
        out = {f"machine.{k}": str(v) for k, v in (meta.get("fingerprint") or {}).items()}
        out["machine"] = str(meta.get("machine", ""))
        for name, env in (meta.get("frameworks") or {}).items():
            if isinstance(env, dict):
                out[f"{name}.version"] = str(env.get("version", env.get("unavailable", "")))
        for k, v in (meta.get("settings") or {}).items():
            out[f"settings.{k}"] = str(v)
        return out

    a, b = facts(base_meta), facts(new_meta)
    return [(k, a.get(k, "-"), b.get(k, "-")) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
