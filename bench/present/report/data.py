"""Results table -> the tidy tables the report page shows.

Everything here is pandas and NumPy; no plotting, no HTML. The verdict is
computed from the ``gradient`` rows with status ``ok``: their per-case
``ratio`` is R = T(gradient) / T(forward), paired by round, with its 95% CI.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from bench.core import fmt
from bench.core.cases import parse_id
from bench.core.device import is_gpu
from bench.core.records import Record
from bench.present.tables import inert, markdown_table

# The cheap gradient principle: one bound for the terminal's verdicts and the page's.
from bench.stats.gradient_cost import CHEAP_GRADIENT_BOUND, GradientCost
from bench.stats.intervals import BOOTSTRAP_LIMIT

SERIES_KEYS = ("machine", "run_id", "framework", "mode", "device")
# Columns whose values are one list per row: left out of the CSV downloads (raw
# samples stay in the Parquet file).
LIST_COLUMNS = ("samples_s", "loss_curve", "process_rounds")
# Above this many cases (suite, case, series) the page aggregates: a summary per suite,
# framework and machine and figures of distributions instead of one row or point per
# case (100,000 rows made a 1 GB page). Smaller runs render every case.
LARGE_CASES = 2000
# The compressed download of every row is embedded only below this size (bytes, before
# base64); above it the page says how to get the rows (bench export).
DOWNLOAD_LIMIT = 8_000_000
# The columns of that download: what identifies a row and its headline numbers.
DOWNLOAD_COLUMNS = ("run_id", "machine", "suite", "case", "framework", "mode", "device", "dtype", "phase",
                    "status", "reason", "quality", "median_s", "ci_low_s", "ci_high_s", "iqr_s", "ratio",
                    "ratio_ci_low", "ratio_ci_high", "theory_ratio", "flops", "peak_bytes", "memory_ratio",
                    "saved_bytes")


@dataclass
class ReportData:
    rows: pd.DataFrame  # every row, with ``series`` and ``size`` added
    ok: pd.DataFrame  # rows with status ok
    series: list[str]  # series labels, in a stable order
    verdicts: list[dict[str, Any]]
    headline: str
    by_suite: pd.DataFrame  # suite x series: median R (theory)
    cases: pd.DataFrame  # one row per suite, case and series
    not_measured: pd.DataFrame
    runs: list[dict[str, Any]] = field(default_factory=list)
    memory: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per series, see memory_summary
    throttled: dict[str, Any] = field(default_factory=dict)  # see throttle_summary
    quality: dict[str, Any] = field(default_factory=dict)  # see quality_summary
    large: bool = False  # more than LARGE_CASES cases: the page aggregates (see summary_table)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # see summary_table, when large
    n_cases: int = 0  # (suite, case, series) combinations


_RUN_ID = re.compile(r"^\d{8}T\d{6}Z-([0-9a-zA-Z]+)$")


def source_labels(pairs: pd.DataFrame) -> dict[tuple[str, str], str]:
    """A short name per (machine, run_id): the machine when the rows hold several, the run only when
    a machine has several runs ('box (0c71)': the run id's tail where it tells them apart), '' when
    the rows hold one run of one machine."""
    pairs = pairs[["machine", "run_id"]].drop_duplicates()
    machines = pairs["machine"].nunique() > 1
    out = {}
    for machine, runs in pairs.groupby("machine", sort=False)["run_id"]:
        ids = list(runs)
        tails = [m.group(1) if (m := _RUN_ID.match(r)) else r for r in ids]
        # The shortest head of the tails (4 characters, then more) that still tells the runs apart.
        heads = ([t[:n] for t in tails] for n in (4, 6, 8, 1000))
        short = next((cut for cut in heads if len(set(cut)) == len(ids)), ids)
        for run, tail in zip(ids, short, strict=True):
            run_part = tail if len(ids) > 1 else ""
            if machines:
                out[(machine, run)] = f"{machine} ({run_part})" if run_part else machine
            else:
                out[(machine, run)] = f"run {run_part}" if run_part else ""
    return out


def config_label(framework: str, mode: str, device: str) -> str:
    """``torch eager · cpu``: the terminal's label for a framework, mode and device
    (bench.stats.gradient_cost)."""
    return f"{framework} {mode} · {device}"


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with a ``series`` label and ``size`` (the case's forward FLOPs) on every row.

    The label names the machine and the run only when the table holds several.
    """
    df = df.reset_index(drop=True).copy()
    for f in fields(Record):  # files written before a column existed lack it
        if f.name in LIST_COLUMNS:
            values = df[f.name] if f.name in df else pd.Series([None] * len(df), index=df.index, dtype=object)
            df[f.name] = [v if isinstance(v, list | tuple | np.ndarray) else () for v in values]
        elif f.name not in df:
            df[f.name] = math.nan if f.default is MISSING or f.default is None else f.default
    for col in (*SERIES_KEYS, "suite", "case", "phase", "status", "reason", "memory_method", "throttled",
                "gpu_state", "quality", "quality_reason"):
        df[col] = df[col].fillna("").astype(str)
    df["l2"] = df["l2"].fillna("warm").astype(str).replace("", "warm")
    # Older files may lack the achieved rate: it is flops / median_s.
    df["flops_per_s"] = df["flops_per_s"].fillna(df["flops"] / df["median_s"])
    keys = list(SERIES_KEYS)
    combos = df[keys].drop_duplicates()
    sources = source_labels(combos)
    combos["source"] = [sources[(m, r)] for m, r in zip(combos["machine"], combos["run_id"], strict=True)]
    combos["config"] = [config_label(f, m, d) for f, m, d in
                        zip(combos["framework"], combos["mode"], combos["device"], strict=True)]
    combos["series"] = [f"{s} · {c}" if s else c for s, c in zip(combos["source"], combos["config"],
                                                                   strict=True)]
    df = df.merge(combos, on=keys, how="left")
    # size: the forward FLOPs of the case (theory_ratio = flops / forward FLOPs).
    forward = (df[df["phase"] == "forward"].groupby(["suite", "case"], as_index=False)["flops"].max()
               .rename(columns={"flops": "size"}))
    df = df.merge(forward, on=["suite", "case"], how="left")
    df["size"] = df["size"].fillna(df["flops"] / df["theory_ratio"])
    # Quotients of stored values can overflow or divide by zero: not a number to show or plot.
    for col in ("flops_per_s", "size"):
        df[col] = df[col].astype(float).where(np.isfinite(df[col].astype(float)), math.nan)
    return df


def series_order(df: pd.DataFrame) -> list[str]:
    from bench.core.records import FRAMEWORKS

    rank = {fw: i for i, fw in enumerate(FRAMEWORKS)}
    combos = df[[*SERIES_KEYS, "series"]].drop_duplicates("series")
    combos = combos.assign(_r=combos["framework"].map(rank).fillna(len(rank)))
    combos = combos.sort_values(["machine", "run_id", "device", "_r", "framework", "mode"])
    return combos["series"].tolist()


def _ci_method(n: int) -> str:
    if n == 1:
        return "95% CI of the single case (bootstrap over its rounds)"
    if n == 2:
        return "the range of the 2 cases"
    if n <= BOOTSTRAP_LIMIT:
        return f"95% bootstrap CI over the {n} cases"
    return f"95% distribution-free CI (order statistics) over the {n} cases"


def bound_text(v: dict[str, Any]) -> str:
    """The bound column in words: '0 of 14 cases above 4', '4 of 14 cases above 4; the CI reaches 5.02'."""
    n, above = v["n"], v["cases_above_bound"]
    text = f"{above} of {n} case{'s' if n != 1 else ''} above {CHEAP_GRADIENT_BOUND:.0f}"
    reach = v["ci_high"]
    if math.isfinite(reach) and reach > CHEAP_GRADIENT_BOUND >= v["median"]:
        text += f"; the CI reaches {fmt.sig3(v['ci_high'])}"
    return text


def verdicts(ok: pd.DataFrame, order: list[str]) -> list[dict[str, Any]]:
    """Per series (machine, run, framework, mode, device): bench.stats.gradient_cost's GradientCost, the
    median R over cases with its 95% CI and its sentence (the terminal's line), and where it stands
    against the bound."""
    grad = ok[(ok["phase"] == "gradient") & np.isfinite(ok["ratio"].astype(float))]
    out = []
    for label, g in sorted(grad.groupby("series", sort=False), key=lambda kv: order.index(kv[0])):
        r = g["ratio"].to_numpy(float)
        theory = g["theory_ratio"].to_numpy(float)
        theory = theory[np.isfinite(theory)]
        first = g.iloc[0]
        v = GradientCost(first["framework"], first["mode"], first["device"], tuple(r.tolist()),
                         tuple(theory.tolist()), float(first["ratio_ci_low"]), float(first["ratio_ci_high"]),
                         int(g["quality"].isin(FLAGGED).sum()))
        lo, hi = v.interval
        row = {
            "series": label, "source": first["source"], "config": first["config"],
            "framework": first["framework"], "mode": first["mode"], "device": first["device"],
            "machine": first["machine"], "run_id": first["run_id"],
            "n": v.cases, "median": v.median, "ci_low": lo, "ci_high": hi, "ci_method": _ci_method(v.cases),
            "min": float(r.min()), "max": float(r.max()),
            "theory": v.theory if theory.size else math.nan,
            "theory_min": float(theory.min()) if theory.size else math.nan,
            "theory_max": float(theory.max()) if theory.size else math.nan,
            "cases_above_bound": v.cases_above_bound,
            "bound": v.bound_state,
            "sentence": v.line,  # word for word the terminal's verdict line
            "memory_sentence": memory_sentence(ok[ok["series"] == label]),
            "peak_sentence": peak_sentence(ok[ok["series"] == label]),
        }
        row["within_bound"] = row["bound"] == "within"
        row["bound_text"] = bound_text(row)
        out.append(row)
    return out


# Memory and fraction of peak ------------------------------------------------


def case_params(case: str, params: str = "") -> dict[str, float]:
    """The numeric parameters of a case: from its id (``batch=256,width=256``), else its params JSON.

    {} when neither names numbers.
    """
    try:
        out = {k: float(v) for k, v in parse_id(case)}
    except ValueError:
        out = {}
    if out:
        return out
    try:
        d = json.loads(params) if isinstance(params, str) and params else {}
    except (ValueError, RecursionError):  # params come from a file: any text, nested any depth
        return {}
    if not isinstance(d, dict):
        return {}
    out = {}
    for k, v in d.items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            try:
                out[str(k)] = float(v)
            except OverflowError:  # an integer beyond any float is no parameter to plot
                continue
    return out


def sweeps(cases: list[str]) -> list[dict[str, Any]]:
    """One-parameter sweeps among ``cases``: per parameter, the cases where only it varies.

    For each parameter the cases are grouped by the values of the others; the
    group with the most values of it is the sweep (ties: the group whose fixed
    values are the most common among all cases, the grid's centre). A sweep
    needs two values. Returns ``{"param", "fixed": {name: value}, "points":
    [(value, case), ...]}`` sorted by value, in the order the cases name the
    parameters; mlp_regression's grid gives a batch, a width and a depth sweep.
    """
    parsed = {c: case_params(c) for c in dict.fromkeys(cases)}
    parsed = {c: p for c, p in parsed.items() if p}
    if len(parsed) < 2:
        return []
    names = [n for n in next(iter(parsed.values())) if all(n in p for p in parsed.values())]
    counts = {n: pd.Series([p[n] for p in parsed.values()]).value_counts().to_dict() for n in names}
    out = []
    for name in names:
        others = [n for n in names if n != name]
        groups: dict[tuple[float, ...], dict[float, str]] = {}
        for case, p in parsed.items():
            groups.setdefault(tuple(p[o] for o in others), {})[p[name]] = case

        def rank(item: tuple[tuple[float, ...], dict[float, str]], others=others) -> tuple[int, int]:
            fixed, points = item
            return len(points), sum(counts[o][v] for o, v in zip(others, fixed, strict=True))

        fixed, points = max(groups.items(), key=rank)
        if len(points) >= 2:
            out.append({"param": name, "fixed": dict(zip(others, fixed, strict=True)),
                        "points": sorted(points.items())})
    return out


def _value(v: float) -> str:
    return f"{v:g}"


def _with_params(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with a ``depth`` column (NaN where the case has none), for picking cases."""
    pairs = zip(rows["case"], rows["params"], strict=True)
    depth = [case_params(c, p).get("depth", math.nan) for c, p in pairs]
    return rows.assign(_depth=depth)


def memory_sentence(series_ok: pd.DataFrame) -> str:
    """What the gradient needs in memory, for one series (its ok rows); '' when nothing was measured.

    M comes from the deepest case (depth raises M in theory: more kept
    activations), else the largest one (where the measurement is least noisy).
    Growth is told along the depth sweep of that case's suite, else its batch sweep.
    """
    grad = series_ok[series_ok["phase"] == "gradient"]
    if grad.empty:
        return ""
    parts = []
    with_m = _with_params(grad[np.isfinite(grad["memory_ratio"].astype(float))])
    if not with_m.empty:
        pick = with_m.sort_values(["_depth", "size", "case"], na_position="first").iloc[-1]
        text = f"The gradient needs {pick['memory_ratio']:.1f}× the forward pass's memory at {pick['case']}"
        if math.isfinite(pick["theory_memory_ratio"]):
            text += f" (theory {pick['theory_memory_ratio']:.1f}×)"
        parts.append(text)
        suite = pick["suite"]
    else:
        suite = None
    saved = grad[np.isfinite(grad["saved_bytes"].astype(float)) & (grad["saved_bytes"] > 0)]
    if suite is not None:
        saved = saved[saved["suite"] == suite]
    growth = ""
    if not saved.empty:
        suite = saved["suite"].iloc[0] if suite is None else suite
        saved = saved[saved["suite"] == suite]
        found = {s["param"]: s for s in sweeps(saved["case"].tolist())}
        sweep = found.get("depth") or found.get("batch")
        if sweep:
            by_case = saved.groupby("case")["saved_bytes"].median()
            (v0, c0), (v1, c1) = sweep["points"][0], sweep["points"][-1]
            b0, b1 = float(by_case[c0]), float(by_case[c1])
            verb = "grows" if b1 > b0 else "shrinks" if b1 < b0 else "stays the same"
            name = sweep["param"]
            growth = (f"what the backward pass keeps from the forward pass {verb} with {name}: "
                      f"{fmt.size(b0)} at {name} {_value(v0)} to {fmt.size(b1)} at {name} {_value(v1)}")
    if growth:
        parts.append(growth if parts else growth[0].upper() + growth[1:])
    return "; ".join(parts) + "." if parts else ""


def peak_sentence(series_ok: pd.DataFrame) -> str:
    """How close the largest gradient came to the device's measured float32 matmul rate ('' if unknown)."""
    g = series_ok[(series_ok["phase"] == "gradient") & (series_ok["flops_per_s"] > 0)
                  & (series_ok["peak_flops_per_s"] > 0) & (series_ok["flops"] > 0)]
    if g.empty:
        return ""
    row = g.sort_values(["flops", "case"]).iloc[-1]
    achieved, peak = float(row["flops_per_s"]), float(row["peak_flops_per_s"])
    unit, name = (1e12, "TFLOP/s") if peak >= 1e12 else (1e9, "GFLOP/s")
    text = (f"The gradient reached {100 * achieved / peak:.0f} % of this device's float32 matmul peak "
            f"({fmt.sig3(achieved / unit)} of {fmt.sig3(peak / unit)} {name}) on the largest case, "
            f"{row['case']}")
    if achieved > peak:
        # The peak is one matmul timed when the worker starts: an estimate, not a bound.
        text += " (above 100 %: the peak is one matmul timed when the framework started, an estimate)"
    return text + "."


def memory_summary(ok: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per series: median M with its theory, M's range, and measured/theory saved bytes' range.

    M comes from the gradient rows; saved bytes are the same on every row of a
    case, so each case counts once. A series with nothing measured keeps its
    row, with ``memory_method`` saying why (TensorFlow does not expose what it keeps).
    """
    columns = ["series", "cases", "median M", "theory M", "M min", "M max", "saved / theory min",
               "saved / theory max", "memory_method"]
    grad = ok[ok["phase"] == "gradient"]
    out = []
    for label in order:
        g = grad[grad["series"] == label]
        if g.empty:
            continue
        m = g["memory_ratio"].astype(float)
        measured = g[np.isfinite(m)]
        theory = (measured if not measured.empty else g)["theory_memory_ratio"].astype(float)
        theory = theory[np.isfinite(theory)]
        saved = ok[(ok["series"] == label)].drop_duplicates(["suite", "case"])
        q = (saved["saved_bytes"] / saved["theory_saved_bytes"]).astype(float)
        q = q[np.isfinite(q)]
        methods = [x for x in g["memory_method"].astype(str) if x] or [
            "not recorded (a results file from before bench measured memory)"]
        out.append([label, len(measured),
                    float(measured["memory_ratio"].median()) if len(measured) else math.nan,
                    float(theory.median()) if len(theory) else math.nan,
                    float(measured["memory_ratio"].min()) if len(measured) else math.nan,
                    float(measured["memory_ratio"].max()) if len(measured) else math.nan,
                    float(q.min()) if len(q) else math.nan, float(q.max()) if len(q) else math.nan,
                    methods[0]])
    return pd.DataFrame(out, columns=columns)


def has_memory(ok: pd.DataFrame) -> bool:
    """Whether any ok row measured memory (saved or peak bytes)."""
    return bool(np.isfinite(ok[["saved_bytes", "peak_bytes"]].astype(float).to_numpy()).any())


FLAGGED = ("noisy", "unreliable")


def quality_summary(rows: pd.DataFrame) -> dict[str, Any]:
    """Measured rows per quality level, how many are flagged, and the main reason of the flagged ones
    (``bench.stats.quality.summary_of``, what the terminal's warning counts)."""
    from bench.stats import quality

    ok = rows[(rows["status"] == "ok") & (rows["quality"] != "")]
    s = quality.summary_of(ok["quality"], ok["quality_reason"])
    counts = {lvl: s[lvl] for lvl in quality.LEVELS}
    return {**counts, "flagged": s["noisy"] + s["unreliable"], "of": len(ok), "main_reason": s["main_reason"]}


def throttle_summary(rows: pd.DataFrame) -> dict[str, Any]:
    """How many cases (per series) ran while the GPU slowed its clocks, of the GPU cases, and why."""
    keys = ["suite", "case", "series"]
    gpu = rows[rows["device"].map(is_gpu).astype(bool)]
    hit = gpu[gpu["throttled"].fillna("").astype(str) != ""]
    reasons = list(dict.fromkeys(hit["throttled"].astype(str)))
    return {"cases": len(hit.drop_duplicates(keys)), "of": len(gpu.drop_duplicates(keys)),
            "reasons": reasons}


def headline(vs: list[dict[str, Any]]) -> str:
    """The answer in one sentence: R's range over the verdicts, and how many cases exceed the bound."""
    if not vs:
        return "No gradient was measured (no gradient row has status ok): there is no verdict."
    lo = min(v["median"] for v in vs)
    hi = max(v["median"] for v in vs)
    span = f"{lo:.1f}×" if f"{lo:.1f}" == f"{hi:.1f}" else f"between {lo:.1f}× and {hi:.1f}×"
    n = len(vs)
    where = "the one framework and device measured" if n == 1 else f"all {n} framework/device combinations"
    bound = f"the cheap-gradient bound of about {CHEAP_GRADIENT_BOUND:.0f}×"
    cases = sum(v["n"] for v in vs)
    above = sum(v["cases_above_bound"] for v in vs)
    if all(v["bound"] == "within" for v in vs):
        return (f"Yes: across {where}, a gradient costs {span} a forward pass (median over cases), "
                f"the same order of time and within {bound} on every case.")
    medians_above = sum(v["bound"] == "above" for v in vs)
    if not medians_above:
        reach = max(v["ci_high"] for v in vs)
        ci = (f"; a CI reaches {fmt.sig3(reach)}" if math.isfinite(reach) and reach > CHEAP_GRADIENT_BOUND
              else "")
        return (f"Mostly: across {where}, a gradient costs {span} a forward pass (median over cases), "
                f"within {bound}; but {above} of {cases} cases exceed it{ci}.")
    return (f"Not everywhere: across {where}, a gradient costs {span} a forward pass (median over "
            f"cases); {medians_above} of {n} have a median above {bound} ({above} of {cases} cases), "
            f"where per-operation overhead rather than arithmetic sets the time.")


def by_suite(ok: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Median R over the cases of each suite, per series, with the median theory."""
    grad = ok[(ok["phase"] == "gradient") & ok["ratio"].notna()]
    if grad.empty:
        return pd.DataFrame()
    cells = grad.groupby(["suite", "series"]).agg(
        r=("ratio", "median"), theory=("theory_ratio", "median"), n=("ratio", "size"))
    table: dict[str, dict[str, str]] = {}
    for (suite, label), row in cells.iterrows():
        n = int(row["n"])
        text = f"{fmt.ratio(row['r'])} (theory {fmt.ratio(row['theory'])}, n={n})"
        table.setdefault(suite, {})[label] = text
    cols = [s for s in order if s in set(cells.index.get_level_values("series"))]
    return pd.DataFrame.from_dict(table, orient="index").reindex(columns=cols).fillna("-")


def _fraction(x: float, of: float) -> float:
    return x / of if math.isfinite(x) and math.isfinite(of) and of > 0 else math.nan


def _case_status(ph: dict[str, Any]) -> tuple[str, list[Any], list[Any]]:
    """A case's status text from its rows by phase, with its unmeasured rows and its flagged ones:
    the first phase not measured and why, else the worst quality and its first reason, else ok."""
    bad = [ph[p] for p in ("forward", "gradient", "step") if p in ph and ph[p]["status"] != "ok"]
    status = "ok" if not bad else f"{bad[0]['status']}: {bad[0]['reason']}"
    flagged = [ph[p] for p in ("gradient", "forward") if p in ph and ph[p]["quality"] in FLAGGED]
    if not bad and flagged:
        worst = max(flagged, key=lambda r: r["quality"] == "unreliable")
        status = f"{worst['quality']}: {worst['quality_reason'].split('; ')[0]}"
    return status, bad, flagged


def case_table(df: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """One row per (suite, case, series): times, R with its CI, theory, GFLOP/s, first calls."""
    keys = ["suite", "case", "series"]
    out = []
    for (suite, case, label), g in df.groupby(keys, sort=False):
        ph = {r["phase"]: r for _, r in g.iterrows()}

        def val(phase: str, col: str, ph=ph) -> float:
            r = ph.get(phase)
            return float(r[col]) if r is not None and r["status"] == "ok" else math.nan

        grad = ph.get("gradient")
        ok = grad is not None and grad["status"] == "ok"
        status, bad, flagged = _case_status(ph)
        theory_row = grad if grad is not None else ph.get("forward")  # saved bytes' theory
        throttled = " | ".join(dict.fromkeys(t for t in g["throttled"].fillna("").astype(str) if t))
        out.append({
            "suite": suite, "case": case, "series": label,
            "forward flops": float(g["size"].iloc[0]),
            # Times in ms: numbers, for the downloads; the page formats them (bench.core.fmt).
            "forward ms": val("forward", "median_s") * 1e3,
            "gradient ms": val("gradient", "median_s") * 1e3,
            "step ms": val("step", "median_s") * 1e3,
            "backward_split ms": val("backward_split", "median_s") * 1e3,
            "R": val("gradient", "ratio"),
            "R ci low": val("gradient", "ratio_ci_low"),
            "R ci high": val("gradient", "ratio_ci_high"),
            "theory": float(grad["theory_ratio"]) if grad is not None else math.nan,
            "forward GFLOP/s": val("forward", "flops_per_s") / 1e9,
            "gradient GFLOP/s": val("gradient", "flops_per_s") / 1e9,
            "first call forward s": val("forward", "first_call_s"),
            "first call gradient s": val("gradient", "first_call_s"),
            # Memory: M and its theory from the gradient row; saved bytes are the same on every row.
            "M": val("gradient", "memory_ratio"),
            "M theory": float(grad["theory_memory_ratio"]) if grad is not None else math.nan,
            "saved bytes": val("gradient", "saved_bytes") if ok else val("forward", "saved_bytes"),
            "saved theory bytes": float(theory_row["theory_saved_bytes"]) if theory_row is not None
            else math.nan,
            "gradient peak fraction": _fraction(val("gradient", "flops_per_s"),
                                                val("gradient", "peak_flops_per_s")),
            "status": status,
            "quality": flagged[0]["quality"] if flagged and not bad else "",
            "quality reasons": "; ".join(dict.fromkeys(
                why for r in flagged for why in r["quality_reason"].split("; ") if why)),
            "throttled": throttled,
            "forward ms low": val("forward", "ci_low_s") * 1e3,
            "forward ms high": val("forward", "ci_high_s") * 1e3,
            "gradient ms low": val("gradient", "ci_low_s") * 1e3,
            "gradient ms high": val("gradient", "ci_high_s") * 1e3,
            "source": g["source"].iloc[0], "config": g["config"].iloc[0],
        })
    table = pd.DataFrame(out)
    if table.empty:
        return table
    rank = {s: i for i, s in enumerate(order)}
    table["_r"] = table["series"].map(rank)
    table = table.sort_values(["suite", "forward flops", "case", "_r"]).drop(columns="_r")
    return table.reset_index(drop=True)


def not_measured(df: pd.DataFrame, listed: int | None = None) -> pd.DataFrame:
    """Rows with a status other than ok, grouped by (suite, series, phase, status, reason).

    ``listed``: name at most this many cases per group, then count the rest (a large run).
    """
    columns = ["suite", "series", "phase", "status", "reason", "rows", "cases"]
    bad = df[df["status"] != "ok"]
    if bad.empty:
        return pd.DataFrame(columns=columns)
    n_cases = df.groupby(["suite", "series"])["case"].nunique()
    out = []
    for (suite, label, phase, status, reason), g in bad.groupby(
            ["suite", "series", "phase", "status", "reason"], sort=False):
        cases = list(dict.fromkeys(g["case"]))
        every = len(cases) == n_cases[(suite, label)] and len(cases) > 1
        named = cases if listed is None else cases[:listed]
        more = f" and {len(cases) - len(named)} more" if len(named) < len(cases) else ""
        out.append([suite, label, phase, status, reason, len(g),
                    f"all {len(cases)} cases" if every else ", ".join(named) + more])
    return pd.DataFrame(out, columns=columns)


L2_POLICIES = {
    "warm": "warm: the caches as the previous timed block left them",
    "flush": "flush: a buffer larger than the last-level cache (GPU L2) overwritten before each timed block",
}


def l2_text(values: Any) -> str:
    """The cache policy of some rows, in words ('warm' for files written before the option existed)."""
    found = [str(v) for v in dict.fromkeys(values) if str(v)] or ["warm"]
    return "; ".join(L2_POLICIES.get(v, v) for v in found)


def _empty(v: Any) -> bool:
    """A setting or fingerprint value that says nothing: None or an empty text."""
    return v is None or (isinstance(v, str) and not v.strip())


def run_summaries(metadata: list[dict[str, Any]], rows: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Per run: identity, fingerprint, settings and what each framework reported, as text pairs.

    ``l2`` (the cache policy) is read from the run's rows, which carry it even
    when the metadata is older than the setting.
    """
    runs = []
    for meta in metadata:
        def pairs(d: Any) -> list[tuple[str, str]]:
            if not isinstance(d, dict):
                return []
            return [(str(k), v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in d.items()
                    if not _empty(v)]

        fws = []
        for key, info in (meta.get("frameworks") or {}).items():
            info = info if isinstance(info, dict) else {"value": info}
            settings = info.get("settings", {})
            fws.append({
                "key": str(key),
                "version": str(info.get("version", "")),
                "device_name": str(info.get("device_name", "")),
                "cpus": json.dumps(info.get("cpus", "")),
                # An empty value says nothing ("cuda_build=" on a CPU-only build): left out.
                "settings": ", ".join(f"{k}={v}" for k, v in settings.items() if not _empty(v))
                if isinstance(settings, dict) else str(settings),
                "unavailable": str(info.get("unavailable") or ""),
            })
        run_settings = meta.get("settings")
        if not isinstance(run_settings, dict):
            run_settings = {}
        mine = rows[rows["run_id"] == str(meta.get("run_id", ""))] if rows is not None else None
        l2 = mine["l2"] if mine is not None and not mine.empty else [run_settings.get("l2", "warm")]
        runs.append({
            "run_id": str(meta.get("run_id", "")),
            "machine": str(meta.get("machine", "")),
            "started": str(meta.get("started", "")),
            "finished": str(meta.get("finished") or "never (the run did not end)"),
            "interrupted": bool(meta.get("interrupted", False)),
            "devices": ", ".join(map(str, meta.get("devices") or [])),
            "suites": ", ".join(map(str, meta.get("suites") or [])),
            "fingerprint": pairs(meta.get("fingerprint")),
            "settings": [kv for kv in pairs(run_settings) if kv[0] != "l2"],  # l2 has its own line
            "l2": l2_text(l2),
            "frameworks": fws,
        })
    return runs


SUMMARY_KEYS = ["suite", "machine", "framework", "mode", "device"]


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per suite, machine, framework (mode) and device: how many cases and rows were measured or
    flagged, the median forward and gradient times, R's median and 5-95 % range, the median
    theory and M: what the page shows in place of the per-case table of a large run."""
    keys = SUMMARY_KEYS
    ok = rows[rows["status"] == "ok"]
    grad = ok[ok["phase"] == "gradient"]
    out = rows.groupby(keys, sort=True).agg(cases=("case", "nunique"), rows=("case", "size"))
    out["measured"] = ok.groupby(keys).size()
    out["flagged"] = ok[ok["quality"].isin(FLAGGED)].groupby(keys).size()
    for phase in ("forward", "gradient"):
        out[f"{phase} ms"] = ok[ok["phase"] == phase].groupby(keys)["median_s"].median() * 1e3
    r = grad[np.isfinite(grad["ratio"].astype(float))].groupby(keys)["ratio"]
    out["R"] = r.median()
    out["R p5"] = r.quantile(0.05)
    out["R p95"] = r.quantile(0.95)
    out["theory"] = grad.groupby(keys)["theory_ratio"].median()
    out["M"] = grad.groupby(keys)["memory_ratio"].median()
    for col in ("measured", "flagged"):
        out[col] = out[col].fillna(0).astype(int)
    out = out.reset_index()
    return out.assign(series=[config_label(f, m, d) for f, m, d in
                              zip(out["framework"], out["mode"], out["device"], strict=True)])


def case_count(rows: pd.DataFrame) -> int:
    """How many (suite, case, series) combinations the rows hold: the per-case table's length."""
    return len(rows[["suite", "case", "series"]].drop_duplicates())


def build(df: pd.DataFrame, metadata: list[dict[str, Any]] | None = None) -> ReportData:
    """The report's tables from the rows; above LARGE_CASES cases, a summary instead of every case."""
    rows = prepare(df)
    order = series_order(rows)
    ok = rows[rows["status"] == "ok"]
    vs = verdicts(ok, order)
    n_cases = case_count(rows)
    large = n_cases > LARGE_CASES
    return ReportData(
        rows=rows, ok=ok, series=order, verdicts=vs, headline=headline(vs),
        by_suite=by_suite(ok, order), cases=pd.DataFrame() if large else case_table(rows, order),
        not_measured=not_measured(rows, listed=50 if large else None),
        runs=run_summaries(metadata or [], rows),
        memory=memory_summary(ok, order) if has_memory(ok) else pd.DataFrame(),
        throttled=throttle_summary(rows),
        quality=quality_summary(rows),
        large=large, summary=summary_table(rows) if large else pd.DataFrame(), n_cases=n_cases,
    )


# Downloads ----------------------------------------------------------------


def data_uri(text: str, mime: str) -> str:
    return f"data:{mime};charset=utf-8;base64," + base64.b64encode(text.encode()).decode("ascii")


def downloads(data: ReportData) -> list[dict[str, str]]:
    """The report's embedded downloads; the CSVs' texts cannot run as spreadsheet formulas.

    A large run (``data.large``) has no per-case table: its download is every
    row's DOWNLOAD_COLUMNS as gzip-compressed CSV, embedded when it compresses
    below DOWNLOAD_LIMIT; above, ``download_note`` says how to get the rows.
    """
    if data.large:
        blob = rows_gzip(data)
        if blob is None:
            return []
        return [{"label": f"every row's key columns and headline numbers (CSV, gzip, "
                          f"{fmt.size(len(blob))})",
                 "file": "bench-rows.csv.gz",
                 "href": "data:application/gzip;base64," + base64.b64encode(blob).decode("ascii")}]
    added = (*LIST_COLUMNS, "series", "source", "config", "size")
    long = data.rows.drop(columns=[c for c in added if c in data.rows])
    return [
        {"label": "per-case table (CSV)", "file": "bench-cases.csv",
         "href": data_uri(inert(data.cases).to_csv(index=False), "text/csv")},
        {"label": "per-case table (Markdown)", "file": "bench-cases.md",
         "href": data_uri(markdown_table(data.cases), "text/markdown")},
        {"label": "every row, all columns but the raw samples and loss curves (CSV)",
         "file": "bench-rows.csv", "href": data_uri(inert(long).to_csv(index=False), "text/csv")},
    ]


# Rows written to estimate the compressed size before the whole table is.
_PROBE_ROWS = 20_000


def rows_gzip(data: ReportData) -> bytes | None:
    """Every row's DOWNLOAD_COLUMNS as gzip CSV, or None when it would exceed DOWNLOAD_LIMIT
    (estimated from the first rows first, so a million rows are not written only to be dropped)."""
    import gzip

    table = data.rows[[c for c in DOWNLOAD_COLUMNS if c in data.rows]]

    def packed(part: pd.DataFrame) -> bytes:
        # Six significant digits, as the Markdown cells: half the bytes of repr's 17.
        csv = inert(part).to_csv(index=False, float_format="%.6g")
        return gzip.compress(csv.encode(), compresslevel=6, mtime=0)

    if len(table) > _PROBE_ROWS:
        probe = len(packed(table.iloc[:_PROBE_ROWS]))
        if probe * len(table) / _PROBE_ROWS > DOWNLOAD_LIMIT * 1.2:
            return None
    blob = packed(table)
    return blob if len(blob) <= DOWNLOAD_LIMIT else None


def export_command(data: ReportData) -> str:
    """The command that writes every row of the report's runs, for a page that cannot hold them."""
    ids = sorted(data.rows["run_id"].astype(str).unique())
    return f"bench export {' '.join(ids[:3])}{' ...' if len(ids) > 3 else ''} -o rows.csv"
