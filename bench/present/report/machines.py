"""The machines × cases panel that opens a page of several machines or runs.

One table per suite: a row per case and framework (mode) · device, and for each
machine (or run) its R with the 95% CI, then the forward and gradient times with
theirs, side by side. A large run (``ReportData.large``) gets one row per suite
and framework instead: the median over the cases, with R's 5-95 % range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.present.report.data import ReportData


@dataclass(frozen=True)
class Cell:
    """One machine's numbers for one row of the panel (NaN: not measured there)."""

    r: float
    r_low: float
    r_high: float
    fwd_ms: float
    fwd_low: float
    fwd_high: float
    grad_ms: float
    grad_low: float
    grad_high: float
    status: str = ""  # '' when measured; else the status, such as "failed"
    quality: str = ""  # "noisy" or "unreliable" when measured but flagged (bench.stats.quality), else ''
    quality_reasons: str = ""


@dataclass(frozen=True)
class Row:
    case: str
    config: str  # framework mode · device
    cells: tuple[Cell | None, ...]  # one per source; None: this machine has no such case


@dataclass(frozen=True)
class Panel:
    suite: str
    sources: tuple[str, ...]
    rows: tuple[Row, ...]
    aggregated: bool = False  # a large run: medians over the cases, R's interval its 5-95 % range


def sources(data: ReportData) -> list[str]:
    """The page's machines (or runs) in series order; one source (one run of one machine) is ''."""
    combos = data.rows.drop_duplicates("series").set_index("series")["source"]
    return list(dict.fromkeys(combos[s] for s in data.series))


def _cell(r: pd.Series) -> Cell:
    word = str(r["status"]).split(":", 1)[0]
    # A flagged row was measured: its numbers are shown, marked; only a row not measured shows its status.
    status = "" if word in ("ok", "noisy", "unreliable") else word
    return Cell(r["R"], r["R ci low"], r["R ci high"], r["forward ms"], r["forward ms low"],
                r["forward ms high"], r["gradient ms"], r["gradient ms low"], r["gradient ms high"], status,
                str(r["quality"]), str(r["quality reasons"]))


def _case_panels(cases: pd.DataFrame, names: list[str]) -> list[Panel]:
    out = []
    configs = list(dict.fromkeys(cases["config"]))
    for suite, g in cases.groupby("suite", sort=True):
        by = {(r["case"], r["config"], r["source"]): _cell(r) for _, r in g.iterrows()}
        order = g.drop_duplicates(["case", "config"]).assign(_c=lambda t: t["config"].map(configs.index))
        order = order.sort_values(["forward flops", "case", "_c"], na_position="last")
        rows = tuple(Row(case, config, tuple(by.get((case, config, s)) for s in names))
                     for case, config in zip(order["case"], order["config"], strict=True))
        out.append(Panel(str(suite), tuple(names), rows))
    return out


def _median(x: pd.Series) -> float:
    x = x.astype(float)
    x = x[np.isfinite(x)]
    return float(x.median()) if len(x) else math.nan


def _aggregated_panels(ok: pd.DataFrame, names: list[str]) -> list[Panel]:
    """Per suite and framework: each machine's median R (5-95 % range) and median times."""
    out = []
    for suite, g in ok.groupby("suite", sort=True):
        rows = []
        for config, c in g.groupby("config", sort=False):
            cells: list[Cell | None] = []
            for name in names:
                s = c[c["source"] == name]
                grad, fwd = s[s["phase"] == "gradient"], s[s["phase"] == "forward"]
                if grad.empty and fwd.empty:
                    cells.append(None)
                    continue
                r = grad["ratio"].astype(float)
                r = r[np.isfinite(r)]
                lo, hi = ((float(r.quantile(0.05)), float(r.quantile(0.95))) if len(r)
                          else (math.nan, math.nan))
                cells.append(Cell(_median(r), lo, hi, _median(fwd["median_s"]) * 1e3, math.nan, math.nan,
                                  _median(grad["median_s"]) * 1e3, math.nan, math.nan))
            n = c["case"].nunique()
            rows.append(Row(f"{n} cases", str(config), tuple(cells)))
        out.append(Panel(str(suite), tuple(names), tuple(rows), aggregated=True))
    return out


def heading(data: ReportData) -> tuple[str, str]:
    """The panel's heading and its first words: 'Machines side by side' and '2 machines: a, b'
    ('3 runs of 2 machines: a, b (0c71), b (9f3e)'), or for several runs of one machine 'Runs side
    by side' and '2 runs of box: run 0c71, run 9f3e'."""
    names = [s for s in sources(data) if s]
    machines = list(dict.fromkeys(data.rows["machine"]))
    if len(machines) == 1:
        return "Runs side by side", f"{len(names)} runs of {machines[0]}: {', '.join(names)}"
    what = f"{len(names)} machines" if len(names) == len(machines) else \
        f"{len(names)} runs of {len(machines)} machines"
    return "Machines side by side", f"{what}: {', '.join(names)}"


def verdict_matrix(data: ReportData) -> list[tuple[str, list[dict | None]]]:
    """Framework (mode) · device × machine: each machine's verdict (a ``data.verdicts`` entry, None
    where it has none), the overview above the per-case panel; [] for one run of one machine."""
    names = sources(data)
    if len(names) < 2 or not data.verdicts:
        return []
    by = {(v["config"], v["source"]): v for v in data.verdicts}
    configs = list(dict.fromkeys(v["config"] for v in data.verdicts))
    return [(c, [by.get((c, s)) for s in names]) for c in configs]


def panels(data: ReportData) -> list[Panel]:
    """The panel's tables, one per suite; [] when the page holds one run of one machine."""
    names = sources(data)
    if len(names) < 2:
        return []
    if data.large:
        return _aggregated_panels(data.ok, names)
    if data.cases.empty:
        return []
    return _case_panels(data.cases, names)
