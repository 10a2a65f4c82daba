"""Results table -> the tidy tables the report page shows.

Everything here is pandas and NumPy; no plotting, no HTML. The verdict is
computed from the ``gradient`` rows with status ``ok``: their per-case
``ratio`` is R = T(gradient) / T(forward), paired by round, with its 95% CI.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from bench.spec import Record

# The cheap gradient principle (Baur & Strassen 1983; Griewank & Walther 2008):
# f and its gradient together cost at most about 4 times f, in operations.
CHEAP_GRADIENT_BOUND = 4.0
BOOTSTRAP_RESAMPLES = 2000
SERIES_KEYS = ("machine", "run_id", "framework", "mode", "device")
# Columns whose values are one list per row: left out of the CSV downloads (raw
# samples stay in the Parquet file).
LIST_COLUMNS = ("samples_s", "loss_curve")


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


def _label(row: pd.Series, parts: list[str]) -> str:
    text = f"{row['framework']} ({row['mode']}) · {row['device']}"
    if "run_id" in parts:
        text = f"{row['run_id']}: {text}"
    if "machine" in parts:
        text = f"{row['machine']}: {text}"
    return text


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
    for col in (*SERIES_KEYS, "suite", "case", "phase", "status", "reason"):
        df[col] = df[col].fillna("").astype(str)
    # Older files may lack the achieved rate: it is flops / median_s.
    df["flops_per_s"] = df["flops_per_s"].fillna(df["flops"] / df["median_s"])
    varying = [k for k in ("machine", "run_id") if df[k].nunique() > 1]
    keys = list(SERIES_KEYS)
    combos = df[keys].drop_duplicates()
    combos["series"] = [_label(r, varying) for _, r in combos.iterrows()]
    df = df.merge(combos, on=keys, how="left")
    # size: the forward FLOPs of the case (theory_ratio = flops / forward FLOPs).
    forward = (df[df["phase"] == "forward"].groupby(["suite", "case"], as_index=False)["flops"].max()
               .rename(columns={"flops": "size"}))
    df = df.merge(forward, on=["suite", "case"], how="left")
    df["size"] = df["size"].fillna(df["flops"] / df["theory_ratio"])
    return df


def series_order(df: pd.DataFrame) -> list[str]:
    from bench.spec import FRAMEWORKS

    rank = {fw: i for i, fw in enumerate(FRAMEWORKS)}
    combos = df[[*SERIES_KEYS, "series"]].drop_duplicates("series")
    combos = combos.assign(_r=combos["framework"].map(rank).fillna(len(rank)))
    combos = combos.sort_values(["machine", "run_id", "device", "_r", "framework", "mode"])
    return combos["series"].tolist()


def bootstrap_median_ci(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the median, resampling the values (cases)."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(values, size=(BOOTSTRAP_RESAMPLES, len(values)), replace=True)
    medians = np.median(picks, axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def fmt(x: float, digits: int = 2) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def verdicts(ok: pd.DataFrame, order: list[str]) -> list[dict[str, Any]]:
    """Per series (framework, mode, device): median R over cases with its 95% CI."""
    grad = ok[(ok["phase"] == "gradient") & ok["ratio"].notna()]
    out = []
    for label in order:
        g = grad[grad["series"] == label]
        if g.empty:
            continue
        r = g["ratio"].to_numpy(float)
        med = float(np.median(r))
        if len(r) >= 2:
            lo, hi = bootstrap_median_ci(r)
            ci_method = f"95% bootstrap CI over the {len(r)} cases"
        else:
            lo, hi = float(g["ratio_ci_low"].iloc[0]), float(g["ratio_ci_high"].iloc[0])
            ci_method = "95% CI of the single case (bootstrap over its rounds)"
        theory = g["theory_ratio"].to_numpy(float)
        theory = theory[np.isfinite(theory)]
        th_med = float(np.median(theory)) if theory.size else math.nan
        first = g.iloc[0]
        within = med <= CHEAP_GRADIENT_BOUND
        # One decimal, the interval rounded outwards so that it still holds the median.
        interval = (f" [{math.floor(lo * 10 + 1e-9) / 10:.1f}, {math.ceil(hi * 10 - 1e-9) / 10:.1f}]"
                    if math.isfinite(lo) and math.isfinite(hi) else "")
        sentence = f"Gradients cost {med:.1f}× the forward pass{interval}"
        if theory.size:
            sentence += f"; counting FLOPs predicts {th_med:.1f}×"
        sentence += f"; the cheap-gradient bound is about {CHEAP_GRADIENT_BOUND:.0f}×. "
        sentence += ("Same order of time as the forward pass: yes." if within else
                     "That is above the bound: overhead, not arithmetic, sets the time.")
        out.append({
            "series": label, "framework": first["framework"], "mode": first["mode"],
            "device": first["device"], "machine": first["machine"], "run_id": first["run_id"],
            "n": len(r), "median": med, "ci_low": lo, "ci_high": hi, "ci_method": ci_method,
            "min": float(r.min()), "max": float(r.max()),
            "theory": th_med,
            "theory_min": float(theory.min()) if theory.size else math.nan,
            "theory_max": float(theory.max()) if theory.size else math.nan,
            "within_bound": within,
            "cases_above_bound": int((r > CHEAP_GRADIENT_BOUND).sum()),
            "sentence": sentence,
        })
    return out


def headline(vs: list[dict[str, Any]]) -> str:
    if not vs:
        return "No gradient was measured (no gradient row has status ok): there is no verdict."
    lo = min(v["median"] for v in vs)
    hi = max(v["median"] for v in vs)
    span = f"{lo:.1f}×" if f"{lo:.1f}" == f"{hi:.1f}" else f"between {lo:.1f}× and {hi:.1f}×"
    n = len(vs)
    where = "the one framework and device measured" if n == 1 else f"all {n} framework/device combinations"
    if all(v["within_bound"] for v in vs):
        return (f"Yes: across {where}, a gradient costs {span} a forward pass (median over cases), "
                f"the same order of time and within the cheap-gradient bound of about "
                f"{CHEAP_GRADIENT_BOUND:.0f}×.")
    above = sum(not v["within_bound"] for v in vs)
    return (f"Not everywhere: across {where}, a gradient costs {span} a forward pass (median over "
            f"cases); {above} of {n} exceed the cheap-gradient bound of about "
            f"{CHEAP_GRADIENT_BOUND:.0f}×, where per-operation overhead rather than arithmetic "
            f"sets the time.")


def by_suite(ok: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Median R over the cases of each suite, per series, with the median theory."""
    grad = ok[(ok["phase"] == "gradient") & ok["ratio"].notna()]
    if grad.empty:
        return pd.DataFrame()
    cells = grad.groupby(["suite", "series"]).agg(
        r=("ratio", "median"), theory=("theory_ratio", "median"), n=("ratio", "size"))
    table = {}
    for (suite, label), row in cells.iterrows():
        n = int(row["n"])
        table.setdefault(suite, {})[label] = f"{row['r']:.2f} (theory {fmt(row['theory'])}, n={n})"
    cols = [s for s in order if s in set(cells.index.get_level_values("series"))]
    return pd.DataFrame.from_dict(table, orient="index").reindex(columns=cols).fillna("-")


def _ms(x: float) -> float:
    return x * 1e3 if x is not None and math.isfinite(x) else math.nan


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
        bad = [ph[p] for p in ("forward", "gradient", "step") if p in ph and ph[p]["status"] != "ok"]
        status = "ok" if not bad else f"{bad[0]['status']}: {bad[0]['reason']}"
        out.append({
            "suite": suite, "case": case, "series": label,
            "forward flops": float(g["size"].iloc[0]),
            "forward ms": _ms(val("forward", "median_s")),
            "gradient ms": _ms(val("gradient", "median_s")),
            "step ms": _ms(val("step", "median_s")),
            "backward_split ms": _ms(val("backward_split", "median_s")),
            "R": val("gradient", "ratio"),
            "R ci low": float(grad["ratio_ci_low"]) if ok else math.nan,
            "R ci high": float(grad["ratio_ci_high"]) if ok else math.nan,
            "theory": float(grad["theory_ratio"]) if grad is not None else math.nan,
            "forward GFLOP/s": val("forward", "flops_per_s") / 1e9,
            "gradient GFLOP/s": val("gradient", "flops_per_s") / 1e9,
            "first call forward s": val("forward", "first_call_s"),
            "first call gradient s": val("gradient", "first_call_s"),
            "status": status,
        })
    table = pd.DataFrame(out)
    if table.empty:
        return table
    rank = {s: i for i, s in enumerate(order)}
    table["_r"] = table["series"].map(rank)
    table = table.sort_values(["suite", "forward flops", "case", "_r"]).drop(columns="_r")
    return table.reset_index(drop=True)


def not_measured(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a status other than ok, grouped by (suite, series, phase, status, reason)."""
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
        out.append([suite, label, phase, status, reason, len(g),
                    f"all {len(cases)} cases" if every else ", ".join(cases)])
    return pd.DataFrame(out, columns=columns)


def run_summaries(metadata: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per run: identity, fingerprint, settings and what each framework reported, as text pairs."""
    runs = []
    for meta in metadata:
        def pairs(d: Any) -> list[tuple[str, str]]:
            if not isinstance(d, dict):
                return []
            return [(str(k), v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in d.items()]

        fws = []
        for key, info in (meta.get("frameworks") or {}).items():
            info = info if isinstance(info, dict) else {"value": info}
            settings = info.get("settings", {})
            fws.append({
                "key": str(key),
                "version": str(info.get("version", "")),
                "device_name": str(info.get("device_name", "")),
                "cpus": json.dumps(info.get("cpus", "")),
                "settings": ", ".join(f"{k}={v}" for k, v in settings.items())
                if isinstance(settings, dict) else str(settings),
                "unavailable": str(info.get("unavailable") or ""),
            })
        runs.append({
            "run_id": str(meta.get("run_id", "")),
            "machine": str(meta.get("machine", "")),
            "started": str(meta.get("started", "")),
            "finished": str(meta.get("finished") or "never (the run did not end)"),
            "interrupted": bool(meta.get("interrupted", False)),
            "devices": ", ".join(map(str, meta.get("devices") or [])),
            "suites": ", ".join(map(str, meta.get("suites") or [])),
            "fingerprint": pairs(meta.get("fingerprint")),
            "settings": pairs(meta.get("settings")),
            "frameworks": fws,
        })
    return runs


def build(df: pd.DataFrame, metadata: list[dict[str, Any]] | None = None) -> ReportData:
    rows = prepare(df)
    order = series_order(rows)
    ok = rows[rows["status"] == "ok"]
    vs = verdicts(ok, order)
    return ReportData(
        rows=rows, ok=ok, series=order, verdicts=vs, headline=headline(vs),
        by_suite=by_suite(ok, order), cases=case_table(rows, order),
        not_measured=not_measured(rows), runs=run_summaries(metadata or []),
    )


# Downloads ----------------------------------------------------------------


def _cell(x: Any) -> str:
    if isinstance(x, float):
        return "" if not math.isfinite(x) else f"{x:.6g}"
    return str(x).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pandas' to_markdown needs tabulate)."""
    cols = [str(c) for c in table.columns]
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def data_uri(text: str, mime: str) -> str:
    return f"data:{mime};charset=utf-8;base64," + base64.b64encode(text.encode()).decode("ascii")


def downloads(data: ReportData) -> list[dict[str, str]]:
    long = data.rows.drop(columns=[c for c in (*LIST_COLUMNS, "series", "size") if c in data.rows])
    return [
        {"label": "per-case table (CSV)", "file": "bench-cases.csv",
         "href": data_uri(data.cases.to_csv(index=False), "text/csv")},
        {"label": "per-case table (Markdown)", "file": "bench-cases.md",
         "href": data_uri(markdown_table(data.cases), "text/markdown")},
        {"label": "every row, all columns but the raw samples and loss curves (CSV)",
         "file": "bench-rows.csv", "href": data_uri(long.to_csv(index=False), "text/csv")},
    ]
