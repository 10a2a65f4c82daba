"""The report's figures, drawn with matplotlib and returned as inline SVG text.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot, so no
global backend or figure registry is touched) under an ``rc_context``. A figure
is a few panels (``Panels``), each its own SVG of PANEL_W_IN inches, however
large the run: suites become panels or markers, never extra figures. The page
sets the panels side by side where two fit at a readable size and stacks them
on a phone; the legend is HTML above them (bench.present.report.legend), so it wraps
instead of being clipped. Only rows with status ok are drawn; the page lists
the others.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.core.cases import parse_id
from bench.core.device import is_gpu
from bench.present.report.data import CHEAP_GRADIENT_BOUND, ReportData, has_memory, sweeps
from bench.present.report.legend import LegendEntry, from_handle

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # the names of matplotlib's settings

PHASE_STYLE = {  # phase -> (line style, marker)
    "forward": ("-", "o"),
    "gradient": ("--", "s"),
    "step": (":", "^"),
    "backward_split": ("-.", "D"),
}
SUITE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
# Font sizes in points of a PANEL_W_IN-wide panel: shown 400 px wide on a phone (a 420 px
# screen), 8 pt is 9.3 px, the smallest text the page allows (the browser test checks it).
RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller, selectable, readable
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass
class Fig:
    id: str
    title: str
    caption: str
    svgs: tuple[str, ...]  # one SVG per panel; () when not drawn (``note`` says why)
    note: str = ""
    section: str = "timing"  # "timing" or "memory": where the page shows it
    legend: tuple[LegendEntry, ...] = ()  # shown above the panels, in HTML

    @property
    def drawn(self) -> bool:
        return bool(self.svgs)


def text(s: object) -> str:
    """Data text for matplotlib: a ``$`` would start mathtext."""
    return str(s).replace("$", r"\$")


class Palette:
    """One colour per series and one marker per suite, the same in every figure.

    With at most two devices, a framework (and mode) keeps its hue on both: dark on
    the first device, light on the second (tab20's pairs).
    """

    def __init__(self, data: ReportData) -> None:
        from matplotlib import colormaps

        combos = data.rows.drop_duplicates("series").set_index("series")
        groups = {s: (combos.at[s, "machine"], combos.at[s, "run_id"], combos.at[s, "framework"],
                      combos.at[s, "mode"]) for s in data.series}
        hues = list(dict.fromkeys(groups.values()))
        devices = sorted(data.rows["device"].unique())
        if len(devices) <= 2 and len(hues) <= 10:
            tab20 = colormaps["tab20"]
            self.color = {s: tab20(2 * hues.index(groups[s]) + devices.index(combos.at[s, "device"]))
                          for s in data.series}
        else:
            cmap = colormaps["tab10" if len(data.series) <= 10 else "tab20"]
            self.color = {s: cmap(i % cmap.N) for i, s in enumerate(data.series)}
        suites = sorted(data.rows["suite"].unique())
        self.marker = {s: SUITE_MARKERS[i % len(SUITE_MARKERS)] for i, s in enumerate(suites)}

    def series_handles(self, labels: list[str]) -> list[Line2D]:
        return [Line2D([], [], color=self.color[s], marker="o", ms=4, lw=1.2, label=text(s)) for s in labels]

    def suite_handles(self, suites: list[str]) -> list[Line2D]:
        return [Line2D([], [], color="0.35", marker=self.marker[s], ls="none", ms=4, label=text(s))
                for s in suites]


# Each panel is its own SVG this wide; the page sets them side by side on a wide screen and
# stacks them on a phone. Margins are fixed, in inches (no layout engine: it would draw twice).
PANEL_W_IN = 4.8
LEFT_IN, RIGHT_IN, TOP_IN = 0.8, 0.22, 0.08


class Panels:
    """A figure drawn as separate panels, one matplotlib Figure (one SVG) each, with one legend
    for all of them that the page shows in HTML (``legend``)."""

    def __init__(self, n: int, axes_h: float = 2.6, title_in: float = 0.3, below_in: float = 0.5) -> None:
        self.axes_h, self.title_in, self.below_in = axes_h, title_in, below_in
        self.figs = [Figure(figsize=(PANEL_W_IN, 3)) for _ in range(n)]
        self.axes = [f.add_subplot() for f in self.figs]
        self.legend: list[LegendEntry] = []


def _grid(n: int, axes_h: float = 2.6, title_in: float = 0.3, below_in: float = 0.5) -> tuple[Panels, list]:
    """``n`` panels; their size and margins are set by ``_finish``."""
    panels = Panels(n, axes_h, title_in, below_in)
    return panels, panels.axes


def _finish(panels: Panels, handles: list[Line2D]) -> Panels:
    """Size every panel and keep the legend's entries for the page."""
    height = TOP_IN + panels.title_in + panels.axes_h + panels.below_in
    for fig in panels.figs:
        fig.set_size_inches(PANEL_W_IN, height)
        fig.subplots_adjust(left=LEFT_IN / PANEL_W_IN, right=1 - RIGHT_IN / PANEL_W_IN,
                            top=1 - (TOP_IN + panels.title_in) / height, bottom=panels.below_in / height)
    panels.legend = [from_handle(h) for h in handles]
    return panels


def to_svg(fig: Figure, prefix: str, title: str) -> str:
    """The figure as an ``<svg>`` element for inline use: no XML prolog, no DOCTYPE
    (it names a URL), no metadata, width from CSS, ids made unique on the page."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    s = buf.getvalue()
    s = s[s.index("<svg"):]
    s = re.sub(r"<metadata>.*?</metadata>\s*", "", s, flags=re.S)
    s = re.sub(r'^<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", s, count=1)
    s = re.sub(r' id="([^"]+)"', rf' id="{prefix}-\1"', s)
    s = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', s)
    s = re.sub(r"url\(#([A-Za-z0-9_.-]+)\)", rf"url(#{prefix}-\1)", s)
    # matplotlib names a dozen fallback fonts on every text element: a fifth of the page's bytes.
    s = re.sub(r"font-family: [^;\"]+", "font-family: 'DejaVu Sans', sans-serif", s)
    label = title.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("<svg", f'<svg class="figure" role="img" aria-label="{label}"', 1).strip()


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


FLAGGED = ("noisy", "unreliable")


def mark_flagged(ax, x, y, quality: pd.Series, color, ms: float = 3.5, marker: str = "o") -> None:
    """Draw the points of noisy or unreliable rows again, hollow, over the filled ones.

    A hollow point says "do not read much into this one"; the table beside the
    figure says which rule flagged it.
    """
    bad = quality.isin(FLAGGED).to_numpy()
    if bad.any():
        ax.plot(np.asarray(x)[bad], np.asarray(y)[bad], ls="none", marker=marker, ms=ms + 0.5,
                mfc="white", mec=color, mew=1.2, zorder=3)


def flagged_handle() -> Line2D:
    """The legend entry for ``mark_flagged``'s hollow points."""
    return Line2D([], [], color="0.3", marker="o", mfc="white", ls="none", ms=4,
                  label="hollow: noisy or unreliable")


def _any_flagged(rows: pd.DataFrame) -> list[Line2D]:
    return [flagged_handle()] if "quality" in rows and rows["quality"].isin(FLAGGED).any() else []


def _tick_label(v: float) -> str:
    """Plain text: 0.05, 20, 500, 2×10⁶, 10⁷ (no mathtext)."""
    if v <= 0 or not math.isfinite(v):
        return ""
    if 0.01 <= v < 1000:
        return f"{v:g}"
    e = math.floor(math.log10(v) + 1e-9)
    m = round(v / 10**e, 3)
    power = "10" + str(e).translate(_SUPERSCRIPT)
    return power if m == 1 else f"{m:g}×{power}"


def log_axes(ax, *which: str) -> None:
    """Log scale with plain-text tick labels (matplotlib's default labels are mathtext,
    which is slow to lay out); minor ticks get labels only on an axis shorter than 1.5 decades."""
    from matplotlib.ticker import FuncFormatter

    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        limits = ax.get_xlim if name == "x" else ax.get_ylim

        def minor(v: float, _pos: int, limits=limits) -> str:
            lo, hi = limits()
            if lo <= 0 or hi <= 0 or v <= 0:
                return ""
            span = abs(math.log10(hi / lo))
            lead = round(v / 10 ** math.floor(math.log10(v) + 1e-9))
            shown = (2, 3, 4, 5, 6, 7, 8, 9) if span < 0.5 else (2, 3, 5) if span < 1 else \
                (2, 5) if span < 2 else ()
            return _tick_label(v) if lead in shown else ""

        axis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_label(v)))
        axis.set_minor_formatter(FuncFormatter(minor))


def _cases_by_size(rows: pd.DataFrame) -> list[str]:
    cases = rows[["case", "size"]].drop_duplicates("case")
    return cases.sort_values(["size", "case"], na_position="last")["case"].tolist()


def case_labels(cases: list[str]) -> tuple[list[str], str]:
    """Short tick labels: when every case names the same parameters in the same order,
    only the values (``256, 512, 4``), and the names go into the axis label."""
    split = [parse_id(c) for c in cases]
    keys = {tuple(k for k, _ in pairs) for pairs in split}
    if len(keys) == 1 and all(split):
        names = next(iter(keys))
        return [", ".join(v for _, v in pairs) for pairs in split], "case: " + ", ".join(names)
    return cases, "case"


def _loglog_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    good = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if good.sum() < 2 or np.unique(x[good]).size < 2:
        return None
    slope, intercept = np.polyfit(np.log10(x[good]), np.log10(y[good]), 1)
    return float(slope), float(intercept)


# The figures ----------------------------------------------------------------

TICK_PT = 8  # the smallest text of a figure (see RC)


def times_per_case(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    ok = d.ok[d.ok["phase"].isin(["forward", "gradient", "step"]) & (d.ok["median_s"] > 0)]
    if ok.empty:
        return None, "No forward, gradient or step time was measured."
    suites = sorted(ok["suite"].unique())
    ticks = {}
    for suite in suites:
        cases = _cases_by_size(ok[ok["suite"] == suite])
        ticks[suite] = (cases, *case_labels(cases))
    longest = max(len(label) for _, labels, _ in ticks.values() for label in labels)
    # Horizontal labels when they fit side by side in a panel's axes, else upright.
    axes_pt = (PANEL_W_IN - LEFT_IN - RIGHT_IN) * 72
    upright = any(len(labels) * (max(map(len, labels)) + 2) * TICK_PT * 0.6 > axes_pt
                  for _, labels, _ in ticks.values())
    below = 0.5 + (longest * TICK_PT * 0.6 / 72 if upright else 0.15)
    fig, axes = _grid(len(suites), below_in=below)
    for ax, suite in zip(axes, suites, strict=True):
        s = ok[ok["suite"] == suite]
        cases, labels, xlabel = ticks[suite]
        pos = {c: i for i, c in enumerate(cases)}
        for label in d.series:
            for phase, (ls, marker) in PHASE_STYLE.items():
                p = s[(s["series"] == label) & (s["phase"] == phase)]
                if p.empty:
                    continue
                x = p["case"].map(pos).to_numpy()
                order = np.argsort(x)
                ax.plot(x[order], p["median_s"].to_numpy()[order] * 1e3, ls=ls, marker=marker, ms=3,
                        lw=1, color=pal.color[label])
                mark_flagged(ax, x, p["median_s"].to_numpy() * 1e3, p["quality"], pal.color[label], 3,
                             marker)
        log_axes(ax, "y")
        ax.set_xticks(range(len(cases)), [text(c) for c in labels], rotation=90 if upright else 0,
                      fontsize=TICK_PT)
        ax.set_xlabel(text(xlabel))
        ax.set_xlim(-0.5, len(cases) - 0.5)
        ax.set_title(text(suite))
        ax.set_ylabel("median ms per call")
    phases = [Line2D([], [], color="0.3", ls=ls, marker=m, ms=3, label=p)
              for p, (ls, m) in PHASE_STYLE.items() if p != "backward_split"]
    _finish(fig, pal.series_handles(d.series) + phases + _any_flagged(ok))
    return fig, ""


def ratio_vs_size(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    grads = d.ok[(d.ok["phase"] == "gradient") & d.ok["ratio"].notna()]
    g = grads[grads["size"] > 0]
    if grads.empty:
        return None, "No gradient was measured."
    if g.empty:  # e.g. an imported pytest-benchmark file: R without FLOP counts
        return None, "No FLOP counts to plot R against problem size (the verdict table has R)."
    suites = sorted(g["suite"].unique())
    fig, axes = _grid(len(suites))
    n = len(d.series)
    jitters = {label: 10 ** (0.015 * (i - (n - 1) / 2)) for i, label in enumerate(d.series)}
    clipped = False
    for ax, suite in zip(axes, suites, strict=True):
        s = g[g["suite"] == suite]
        for label in d.series:
            p = s[s["series"] == label].sort_values("size")
            if p.empty:
                continue
            jitter = jitters[label]  # side by side at the same size
            r = p["ratio"].to_numpy()
            lo = np.nan_to_num(r - p["ratio_ci_low"].to_numpy(), nan=0.0).clip(0)
            hi = np.nan_to_num(p["ratio_ci_high"].to_numpy() - r, nan=0.0).clip(0)
            ax.errorbar(p["size"].to_numpy() * jitter, r, yerr=[lo, hi], fmt="o", ms=3.5, elinewidth=1,
                        capsize=2, color=pal.color[label])
            mark_flagged(ax, p["size"].to_numpy() * jitter, r, p["quality"], pal.color[label])
        th = s[["size", "theory_ratio"]].dropna().drop_duplicates().sort_values("size")
        if not th.empty:
            ax.plot(th["size"], th["theory_ratio"], "k_", ms=12, mew=2)
        ax.axhline(CHEAP_GRADIENT_BOUND, color="0.4", ls="--", lw=1)
        ax.axhline(1, color="0.6", ls=":", lw=1)
        log_axes(ax, "x")
        top = ratio_top(s["ratio"], s["theory_ratio"])
        ax.set_ylim(0, top)
        clipped |= mark_clipped(ax, s, top, pal, jitters)
        ax.set_title(text(suite))
        ax.set_xlabel("problem size: forward FLOPs")
        ax.set_ylabel("R = T(gradient) / T(forward)")
    extra = [Line2D([], [], color="k", marker="_", ms=10, mew=2, ls="none", label="FLOP theory"),
             Line2D([], [], color="0.4", ls="--", label=f"cheap-gradient bound ≈ {CHEAP_GRADIENT_BOUND:.0f}")]
    if clipped:
        extra.append(Line2D([], [], color="0.3", marker="^", ls="none", ms=4,
                            label="at the top: the CI (or R) runs above the axis"))
    _finish(fig, pal.series_handles(d.series) + extra + _any_flagged(g))
    return fig, ""


def ratio_top(ratio: pd.Series, theory: pd.Series) -> float:
    """The top of R's axis: room for every R, the theory and the bound, but not for wide CIs,
    which would flatten every R of 2-3 (the CIs above it are clipped and marked); a lone R far
    above the others is clipped too rather than setting the scale."""
    r = ratio.astype(float).to_numpy()
    r = r[np.isfinite(r)]
    th = theory.astype(float).to_numpy()
    th = th[np.isfinite(th)]
    top = max(CHEAP_GRADIENT_BOUND + 0.6, float(th.max()) * 1.1 if th.size else 0.0)
    if r.size:
        high = float(r.max())
        typical = float(np.quantile(r, 0.9)) if r.size >= 10 else high
        top = max(top, min(high, 3 * typical) * 1.15)
    return top


def mark_clipped(ax, s: pd.DataFrame, top: float, pal: Palette, jitters: dict[str, float]) -> bool:
    """A triangle at the top of the axis where a CI or an R runs above it; whether there was one."""
    high = s["ratio_ci_high"].astype(float).fillna(s["ratio"].astype(float))
    over = s[(high > top) | (s["ratio"].astype(float) > top)]
    for label, p in over.groupby("series", sort=False):
        ax.plot(p["size"].to_numpy(float) * jitters[label], np.full(len(p), top), ls="none", marker="^",
                ms=5, color=pal.color[label], clip_on=False, zorder=4)
    return not over.empty


def time_vs_flops(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    ok = d.ok[d.ok["phase"].isin(["forward", "gradient"]) & (d.ok["median_s"] > 0) & (d.ok["flops"] > 0)]
    if ok.empty:
        return None, "No timed phase has a FLOP count."
    phases = [p for p in ("forward", "gradient") if (ok["phase"] == p).any()]
    fig, axes = _grid(len(phases))
    slopes: dict[str, list[str]] = {}
    for ax, phase in zip(axes, phases, strict=True):
        p = ok[ok["phase"] == phase]
        for label in d.series:
            s = p[p["series"] == label]
            if s.empty:
                continue
            for suite, ss in s.groupby("suite"):
                ax.scatter(ss["flops"], ss["median_s"], s=12, color=pal.color[label],
                           marker=pal.marker[suite])
                mark_flagged(ax, ss["flops"], ss["median_s"], ss["quality"], pal.color[label], 3,
                             pal.marker[suite])
            fit = _loglog_fit(s["flops"].to_numpy(float), s["median_s"].to_numpy(float))
            if fit:
                slope, icpt = fit
                xs = np.geomspace(s["flops"].min(), s["flops"].max(), 20)
                ax.plot(xs, 10 ** (icpt + slope * np.log10(xs)), color=pal.color[label], lw=1)
                slopes.setdefault(label, []).append(f"{phase} {slope:.2f}")
        log_axes(ax, "x", "y")
        ax.set_title(f"{phase}: time against FLOPs")
        ax.set_xlabel(f"FLOPs of one {phase} call")
        ax.set_ylabel("median seconds per call")
    handles = [Line2D([], [], color=pal.color[label], marker="o", ms=4, lw=1.2,
                      label=text(f"{label}: slope {', '.join(slopes[label])}" if label in slopes else label))
               for label in d.series if label in set(ok["series"])]
    _finish(fig, handles + pal.suite_handles(sorted(ok["suite"].unique())) + _any_flagged(ok))
    return fig, ""


def gflops(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    ok = d.ok[(d.ok["flops_per_s"] > 0) & (d.ok["size"] > 0)]
    phases = [p for p in ("forward", "gradient", "backward_split", "step") if (ok["phase"] == p).any()]
    if not phases:
        return None, "No achieved FLOP rate was measured."
    fig, axes = _grid(len(phases))
    for ax, phase in zip(axes, phases, strict=True):
        p = ok[ok["phase"] == phase]
        for label in d.series:
            for suite, s in p[p["series"] == label].groupby("suite"):
                ax.scatter(s["size"], s["flops_per_s"] / 1e9, s=12, color=pal.color[label],
                           marker=pal.marker[suite])
                mark_flagged(ax, s["size"], s["flops_per_s"] / 1e9, s["quality"], pal.color[label], 3,
                             pal.marker[suite])
        log_axes(ax, "x", "y")
        ax.set_title(f"{phase}: achieved GFLOP/s")
        ax.set_xlabel("problem size: forward FLOPs")
        ax.set_ylabel("GFLOP/s")
    _finish(fig, pal.series_handles(d.series) + pal.suite_handles(sorted(ok["suite"].unique()))
            + _any_flagged(ok))
    return fig, ""


def relative_speed(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    ok = d.ok[d.ok["phase"].isin(["forward", "gradient"]) & (d.ok["median_s"] > 0)].copy()
    keys = ["machine", "device", "suite", "case", "phase"]
    ok["n"] = ok.groupby(keys)["series"].transform("nunique")
    ok = ok[ok["n"] > 1]
    if ok.empty:
        return None, ("Only one framework and mode per device was measured: there is nothing to compare "
                      "side by side.")
    ok["rel"] = ok.groupby(keys)["median_s"].transform("min") / ok["median_s"]
    phases = [p for p in ("forward", "gradient") if (ok["phase"] == p).any()]
    fig, axes = _grid(len(phases))
    handles = []
    for ax, phase in zip(axes, phases, strict=True):
        p = ok[ok["phase"] == phase]
        for label in d.series:
            for suite, s in p[p["series"] == label].groupby("suite"):
                ax.scatter(s["size"], s["rel"], s=14, color=pal.color[label], marker=pal.marker[suite],
                           alpha=0.85)
        log_axes(ax, "x")
        ax.set_ylim(0, 1.08)
        ax.axhline(1, color="0.5", lw=0.8)
        ax.set_title(f"{phase}: speed relative to the fastest")
        ax.set_xlabel("problem size: forward FLOPs")
        ax.set_ylabel("fastest time / this time")
    g = ok[ok["phase"] == "gradient"] if "gradient" in phases else ok
    med = g.groupby("series")["rel"].median()
    for label in d.series:
        if label in med:
            handles.append(Line2D([], [], color=pal.color[label], marker="o", ls="none", ms=4,
                                  label=f"{text(label)}: median {med[label]:.2f}"))
    _finish(fig, handles + pal.suite_handles(sorted(ok["suite"].unique())))
    return fig, ""


def device_speedup(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    ok = d.ok[d.ok["phase"].isin(["forward", "gradient"]) & (d.ok["median_s"] > 0)]
    on_gpu = ok["device"].map(is_gpu).astype(bool)
    cpu, gpu = ok[~on_gpu], ok[on_gpu]
    keys = ["machine", "framework", "mode", "suite", "case", "phase"]
    if cpu.empty or gpu.empty:
        return None, ("Only one device was measured (this figure needs CPU and GPU rows of the same "
                      "framework, e.g. bench run --device cpu,cuda).")
    cpu_t = cpu.groupby(keys, as_index=False)["median_s"].median().rename(columns={"median_s": "t_cpu"})
    pairs = gpu.merge(cpu_t, on=keys)
    if pairs.empty:
        return None, "CPU and GPU rows exist, but no framework measured the same case on both."
    pairs = pairs.assign(speedup=pairs["t_cpu"] / pairs["median_s"])
    phases = [p for p in ("forward", "gradient") if (pairs["phase"] == p).any()]
    fig, axes = _grid(len(phases))
    trends: dict[str, list[str]] = {}
    for ax, phase in zip(axes, phases, strict=True):
        p = pairs[pairs["phase"] == phase]
        for label in d.series:
            s = p[p["series"] == label]
            if s.empty:
                continue
            for suite, ss in s.groupby("suite"):
                ax.scatter(ss["size"], ss["speedup"], s=14, color=pal.color[label], marker=pal.marker[suite])
            x, y = s["size"].to_numpy(float), s["speedup"].to_numpy(float)
            if (y > 1).all():
                where = "faster on every case"
            elif (y < 1).all():
                where = "slower on every case"
            else:
                fit = _loglog_fit(x, y)
                where = "crosses 1: no trend"
                if fit and fit[0] != 0:
                    cross = 10 ** (-fit[1] / fit[0])
                    xs = np.geomspace(x.min(), x.max(), 20)
                    ax.plot(xs, 10 ** (fit[1] + fit[0] * np.log10(xs)), color=pal.color[label], lw=1)
                    ax.axvline(cross, color=pal.color[label], ls=":", lw=1)
                    where = f"crosses 1 near {cross:.2g} FLOPs (log-log fit)"
            trends.setdefault(label, []).append(f"{phase} {where}")
        ax.axhline(1, color="0.3", lw=1)
        log_axes(ax, "x", "y")
        ax.set_title(f"{phase}: GPU speedup (CPU / GPU time)")
        ax.set_xlabel("problem size: forward FLOPs")
        ax.set_ylabel("speedup (> 1: the GPU is faster)")
    handles = [Line2D([], [], color=pal.color[label], marker="o", ms=4, lw=1,
                      label=text(f"{label}: {'; '.join(trends[label])}"))
               for label in d.series if label in trends]
    _finish(fig, handles + pal.suite_handles(sorted(pairs["suite"].unique())))
    return fig, ""


def first_call(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    ok = d.ok[d.ok["phase"].isin(["forward", "gradient", "step"]) & (d.ok["first_call_s"] > 0)
              & (d.ok["size"] > 0)]  # the x axis is the problem size, on a log scale
    if ok.empty:
        return None, "No first call was timed (with a FLOP count to place it by size)."
    phases = [p for p in ("forward", "gradient", "step") if (ok["phase"] == p).any()]
    fig, axes = _grid(len(phases), axes_h=2.4)
    for ax, phase in zip(axes, phases, strict=True):
        p = ok[ok["phase"] == phase]
        for label in d.series:
            for suite, s in p[p["series"] == label].groupby("suite"):
                ax.scatter(s["size"], s["first_call_s"], s=12, color=pal.color[label],
                           marker=pal.marker[suite])
        log_axes(ax, "x", "y")
        ax.set_title(f"{phase}: first call")
        ax.set_xlabel("problem size: forward FLOPs")
        ax.set_ylabel("seconds (with compilation)")
    _finish(fig, pal.series_handles(d.series) + pal.suite_handles(sorted(ok["suite"].unique())))
    return fig, ""


def loss_curves(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    steps = d.ok[(d.ok["phase"] == "step")]
    steps = steps[steps["loss_curve"].map(len) > 0]
    if steps.empty:
        return None, "No training loss curve was recorded (no step row with status ok)."
    suites = sorted(steps["suite"].unique())
    fig, axes = _grid(len(suites), axes_h=2.3, title_in=0.5)
    styles = ["-", "--", ":", "-."]
    for ax, suite in zip(axes, suites, strict=True):
        s = steps[steps["suite"] == suite]
        counts = s.groupby("case").agg(n=("series", "nunique"), size=("size", "max"))
        case = counts.sort_values(["n", "size"]).index[-1]  # the largest case most frameworks ran
        c = s[s["case"] == case]
        curves = []
        for i, label in enumerate(d.series):
            for curve in c[c["series"] == label]["loss_curve"]:
                y = np.asarray(curve, dtype=float)
                curves.append(y)
                ax.plot(np.arange(len(y)), y, ls=styles[i % len(styles)], lw=max(3.0 - 0.6 * i, 1.0),
                        color=pal.color[label], alpha=0.8)
        if len(curves) > 1:
            n = min(len(y) for y in curves)
            stack = np.vstack([y[:n] for y in curves])
            spread = float(np.max((stack.max(0) - stack.min(0)) / np.maximum(np.abs(stack).max(0), 1e-30)))
            gap = f"largest relative gap between the {len(curves)} curves: {spread:.1e}"
        else:
            gap = "one curve: nothing to compare it with"
        ax.set_title(f"{text(suite)}: {text(case)}\n{gap}", fontsize=TICK_PT)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss before the step")
    _finish(fig, pal.series_handles(d.series))
    return fig, ""


# A figure of the page: its id, title, caption and the function that draws it (or says why not).
FigureSpec = tuple[str, str, str, Callable[[ReportData, Palette], tuple[Panels | None, str]]]


FIGURES: list[FigureSpec] = [
    ("times", "Time per case",
     "Median time of one call of the forward pass, the gradient (loss and gradient in one call) and "
     "an optimizer step, per case (sorted by forward FLOPs) and framework, log scale. The gap between "
     "the forward and gradient lines is R.", times_per_case),
    ("ratio", "R against problem size",
     "R = T(gradient) / T(forward) per case with its 95% CI (bootstrap over paired rounds), against the "
     "case's forward FLOPs. Black bars: the FLOP theory (theory_ratio). Dashed line: the cheap-gradient "
     "bound of about 4. Small cases are not FLOP-bound, so R there reflects overhead. The axis stops a "
     "little above the largest R: a CI (or a lone R) running beyond it ends in a triangle at the top.",
     ratio_vs_size),
    ("scaling", "Time against FLOPs",
     "Median time per call against the call's FLOPs, log-log, with a least-squares line per framework "
     "(fitted on the logs). Slope 1: time proportional to FLOPs; below 1: a fixed overhead dominates the "
     "small cases.", time_vs_flops),
    ("gflops", "Achieved GFLOP/s per phase",
     "Analytic FLOPs of one call divided by its median time, per phase. backward_split is the backward "
     "pass timed alone where the framework allows it.", gflops),
    ("relative", "Frameworks side by side",
     "Speed relative to the fastest framework (and mode) on the same case and device: the fastest time "
     "divided by this one, 1 for the fastest. The legend gives each framework's median over cases of the "
     "gradient panel.", relative_speed),
    ("devices", "Devices side by side",
     "GPU speedup (CPU time / GPU time) of the same framework and case against problem size, with a "
     "log-log fit and where it crosses 1.", device_speedup),
    ("first-call", "First call (compile) time",
     "The first call of each phase, timed on its own: tracing and compilation (jax.jit, tf.function) "
     "land here and never in the steady-state times.", first_call),
    ("loss", "Training loss curves",
     "The loss before each of the first optimizer steps from the shared initialisation, for the largest "
     "case of each suite, every framework on top of each other: the same curve is the evidence that the "
     "frameworks compute the same model.", loss_curves),
]


# Memory figures ---------------------------------------------------------------

THEORY_STYLE: dict[str, Any] = {"color": "k", "ls": "--", "marker": "o", "mfc": "none", "ms": 5, "lw": 1}


def _memory_panels(g: pd.DataFrame) -> list[tuple[str, dict | None]]:
    """(suite, sweep) per panel: one per parameter swept in a suite, else (suite, None): against size."""
    panels: list[tuple[str, dict | None]] = []
    for suite in sorted(g["suite"].unique()):
        found = sweeps(g[g["suite"] == suite]["case"].tolist())
        panels += [(suite, sw) for sw in found] if found else [(suite, None)]
    return panels


def _fixed_text(fixed: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in fixed.items())


def memory_ratio(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    g = d.ok[d.ok["phase"] == "gradient"]
    measured = g[np.isfinite(g["memory_ratio"].astype(float))]
    if measured.empty:
        return None, "No gradient's peak memory was measured."
    panels = _memory_panels(measured)
    fig, axes = _grid(len(panels), title_in=0.5)
    for ax, (suite, sweep) in zip(axes, panels, strict=True):
        s = g[g["suite"] == suite]
        if sweep is not None:
            x_of = {case: value for value, case in sweep["points"]}
            ax.set_title(f"{text(suite)}: M against {text(sweep['param'])}\n"
                         f"({text(_fixed_text(sweep['fixed']))})", fontsize=TICK_PT)
            ax.set_xlabel(text(sweep["param"]))
        else:  # no parameter varies alone: against the problem size
            x_of = dict(zip(s["case"], s["size"], strict=True))
            ax.set_title(f"{text(suite)}: M against problem size\n(no parameter varies alone)",
                         fontsize=TICK_PT)
            ax.set_xlabel("problem size: forward FLOPs")
        p = s[s["case"].isin(list(x_of))].assign(_x=lambda t, x_of=x_of: t["case"].map(x_of))
        p = p[p["_x"] > 0]
        values = [1.0]
        for label in d.series:
            q = p[(p["series"] == label) & np.isfinite(p["memory_ratio"].astype(float))].sort_values("_x")
            if q.empty:
                continue
            ax.plot(q["_x"], q["memory_ratio"], "-o", ms=3.5, lw=1.2, color=pal.color[label])
            values += q["memory_ratio"].tolist()
        th = p[["_x", "theory_memory_ratio"]].dropna().drop_duplicates("_x").sort_values("_x")
        if not th.empty:
            ax.plot(th["_x"], th["theory_memory_ratio"], **THEORY_STYLE)
            values += th["theory_memory_ratio"].tolist()
        ax.axhline(1, color="0.6", ls=":", lw=1)
        xs = p["_x"].to_numpy(float)
        if xs.size and xs.max() / xs.min() >= 8:
            log_axes(ax, "x")
        if sweep is not None and len(sweep["points"]) <= 10:
            # The swept values themselves as ticks (minor log ticks would hide them).
            from matplotlib.ticker import NullFormatter

            ax.set_xticks([v for v, _ in sweep["points"]], [f"{v:g}" for v, _ in sweep["points"]])
            ax.xaxis.set_minor_formatter(NullFormatter())
        lo, hi = min(v for v in values if v > 0), max(values)
        if hi / lo > 20:  # tiny batches: the weight gradients dwarf a forward pass's few activations
            log_axes(ax, "y")
            ax.set_ylim(lo / 1.4, hi * 1.4)
        else:
            ax.set_ylim(0, hi * 1.12)
        ax.set_ylabel("M = peak(grad) / peak(fwd)")
    theory = Line2D([], [], label="theory (theory_memory_ratio)", **THEORY_STYLE)
    drawn = set(measured["series"])
    _finish(fig, [*pal.series_handles([s for s in d.series if s in drawn]), theory])
    return fig, ""


def saved_vs_theory(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    rows = d.ok.drop_duplicates(["series", "suite", "case"])  # saved bytes: the same on every row
    rows = rows[(rows["saved_bytes"] > 0) & (rows["theory_saved_bytes"] > 0)]
    if rows.empty:
        return None, "No saved bytes were measured beside a theory."
    rows = rows.assign(_q=rows["saved_bytes"] / rows["theory_saved_bytes"])
    fig, (scatter, quotient) = _grid(2)
    for label in d.series:
        for suite, s in rows[rows["series"] == label].groupby("suite"):
            scatter.scatter(s["theory_saved_bytes"], s["saved_bytes"], s=14, color=pal.color[label],
                            marker=pal.marker[suite], alpha=0.85)
            quotient.scatter(s["size"], s["_q"], s=14, color=pal.color[label], marker=pal.marker[suite],
                             alpha=0.85)
    lo = float(min(rows["theory_saved_bytes"].min(), rows["saved_bytes"].min())) / 1.5
    hi = float(max(rows["theory_saved_bytes"].max(), rows["saved_bytes"].max())) * 1.5
    scatter.plot([lo, hi], [lo, hi], color="0.4", ls="--", lw=1)
    scatter.set_xlim(lo, hi)
    scatter.set_ylim(lo, hi)
    log_axes(scatter, "x", "y")
    scatter.set_title("kept for the backward pass: measured / theory")
    scatter.set_xlabel("theory: bytes kept for the backward pass")
    scatter.set_ylabel("measured saved bytes")
    quotient.axhline(1, color="0.4", ls="--", lw=1)
    log_axes(quotient, "x")
    quotient.set_ylim(0, max(2.0, float(rows["_q"].max()) * 1.12))
    quotient.set_title("measured / theory against problem size")
    quotient.set_xlabel("problem size: forward FLOPs")
    quotient.set_ylabel("saved bytes / theory")
    same = Line2D([], [], color="0.4", ls="--", label="measured = theory")
    drawn = set(rows["series"])
    _finish(fig, pal.series_handles([s for s in d.series if s in drawn])
            + pal.suite_handles(sorted(rows["suite"].unique())) + [same])
    return fig, ""


MEMORY_FIGURES: list[FigureSpec] = [
    ("memory-ratio", "M = peak(gradient) / peak(forward) against each swept parameter",
     "M per case: the extra bytes live at the peak of one loss-and-gradient call over those of one "
     "forward call, each beyond what was resident before the call (inputs and parameters). One panel "
     "per parameter that a suite sweeps while the others stay fixed (the values in the panel's title), "
     "else against the forward FLOPs; a log scale where M spans more than a factor of 20. Black "
     "dashed, hollow markers: the suite's theory, which frees nothing before the backward pass ends, "
     "so frameworks that free activations as the backward pass consumes them can come in below it. "
     "Dotted: M = 1.", memory_ratio),
    ("memory-saved", "What the backward pass keeps: measured against theory",
     "saved_bytes: the bytes the framework keeps from the forward pass for the backward pass (activations "
     "and the weights it multiplies by), one point per case and framework, against the suite's theory "
     "(theory_saved_bytes), log-log; dashed: measured = theory. Second panel: their quotient against problem "
     "size. Above 1: the framework keeps more than the backward pass needs (copies, or intermediates it "
     "prefers to keep rather than recompute).", saved_vs_theory),
]


# Figures of a large run ------------------------------------------------------
# Above data.LARGE_CASES cases a point per case makes an SVG of hundreds of MB:
# these draw distributions and binned medians, whose size does not grow with the run.

SIZE_BINS = 16


def _distribution(d: ReportData, pal: Palette, column: str, phase: str, label: str, reference: float
                  ) -> tuple[Panels | None, str]:
    """Per suite and series: the 5th, 25th, 50th, 75th and 95th percentile of ``column`` over the
    cases (of the ``phase`` rows with status ok), drawn as a box with whiskers, one row per series."""
    rows = d.ok[(d.ok["phase"] == phase)]
    rows = rows[np.isfinite(rows[column].astype(float))]
    if rows.empty:
        return None, f"No {label} was measured."
    q = rows.groupby(["suite", "series"])[column].quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack()
    suites = sorted(q.index.get_level_values("suite").unique())
    fig, axes = _grid(len(suites), axes_h=0.35 + 0.28 * len(d.series))
    for ax, suite in zip(axes, suites, strict=True):
        s = q.loc[suite]
        labels = [x for x in d.series if x in s.index]
        for y, series in enumerate(labels):
            p5, p25, p50, p75, p95 = (float(v) for v in s.loc[series])
            color = pal.color[series]
            ax.plot([p5, p95], [y, y], color=color, lw=1)
            ax.plot([p25, p75], [y, y], color=color, lw=6, alpha=0.45, solid_capstyle="butt")
            ax.plot([p50], [y], marker="|", ms=10, mew=2, color=color)
        ax.axvline(reference, color="0.6", ls=":", lw=1)
        if column == "ratio":
            ax.axvline(CHEAP_GRADIENT_BOUND, color="0.4", ls="--", lw=1)
        ax.set_yticks(range(len(labels)), [""] * len(labels))
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.invert_yaxis()
        ax.set_title(f"{text(suite)} ({int(rows[rows['suite'] == suite]['case'].nunique())} cases)")
        ax.set_xlabel(label)
    _finish(fig, pal.series_handles(d.series))
    return fig, ""


def ratio_distribution(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    return _distribution(d, pal, "ratio", "gradient", "R = T(gradient) / T(forward)", 1.0)


def memory_distribution(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    return _distribution(d, pal, "memory_ratio", "gradient", "M = peak(gradient) / peak(forward)", 1.0)


def _size_bins(size: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Log-spaced bin edges over the positive sizes, and each row's bin (-1: no size)."""
    x = size.to_numpy(float)
    good = np.isfinite(x) & (x > 0)
    if not good.any():
        return np.array([]), np.full(len(x), -1)
    lo, hi = np.log10(x[good].min()), np.log10(x[good].max())
    edges = np.logspace(lo, hi if hi > lo else lo + 1, SIZE_BINS + 1)
    which = np.where(good, np.clip(np.searchsorted(edges, np.where(good, x, 1.0), side="right") - 1,
                                   0, SIZE_BINS - 1), -1)
    return edges, which


def _binned(ax, rows: pd.DataFrame, column: str, edges: np.ndarray, color, ls: str = "-",
            marker: str = "o") -> None:
    """The median of ``column`` per size bin, with a band from its 25th to 75th percentile."""
    g = rows[rows["_bin"] >= 0].groupby("_bin")[column]
    q = g.quantile([0.25, 0.5, 0.75]).unstack()
    if q.empty:
        return
    mid = np.sqrt(edges[q.index.to_numpy()] * edges[q.index.to_numpy() + 1])
    ax.plot(mid, q[0.5].to_numpy(), ls=ls, marker=marker, ms=3, lw=1.2, color=color)
    ax.fill_between(mid, q[0.25].to_numpy(), q[0.75].to_numpy(), color=color, alpha=0.15, lw=0)


def times_by_size(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    ok = d.ok[d.ok["phase"].isin(["forward", "gradient", "step"]) & (d.ok["median_s"] > 0)]
    edges, which = _size_bins(ok["size"])
    ok = ok.assign(_bin=which, _ms=ok["median_s"] * 1e3)
    if not (which >= 0).any():
        return None, "No FLOP counts to bin the cases by problem size."
    phases = [p for p in ("forward", "gradient", "step") if ((ok["phase"] == p) & (ok["_bin"] >= 0)).any()]
    fig, axes = _grid(len(phases), axes_h=2.4)
    for ax, phase in zip(axes, phases, strict=True):
        p = ok[ok["phase"] == phase]
        for label in d.series:
            _binned(ax, p[p["series"] == label], "_ms", edges, pal.color[label], *PHASE_STYLE[phase])
        log_axes(ax, "x", "y")
        ax.set_title(f"{phase}: median time per size bin")
        ax.set_xlabel("problem size: forward FLOPs")
        ax.set_ylabel("ms per call (median, 25-75 %)")
    _finish(fig, pal.series_handles(d.series))
    return fig, ""


def ratio_by_size(d: ReportData, pal: Palette) -> tuple[Panels | None, str]:
    g = d.ok[(d.ok["phase"] == "gradient") & np.isfinite(d.ok["ratio"].astype(float))]
    edges, which = _size_bins(g["size"])
    if not (which >= 0).any():
        return None, "No FLOP counts to bin the cases by problem size (the verdict table has R)."
    g = g.assign(_bin=which)
    fig, axes = _grid(1, axes_h=3.0)
    ax = axes[0]
    for label in d.series:
        _binned(ax, g[g["series"] == label], "ratio", edges, pal.color[label])
    th = g[np.isfinite(g["theory_ratio"].astype(float)) & (g["_bin"] >= 0)].groupby("_bin")["theory_ratio"]
    th = th.median()
    if not th.empty:
        ax.plot(np.sqrt(edges[th.index.to_numpy()] * edges[th.index.to_numpy() + 1]), th.to_numpy(), "k_",
                ms=12, mew=2)
    ax.axhline(CHEAP_GRADIENT_BOUND, color="0.4", ls="--", lw=1)
    ax.axhline(1, color="0.6", ls=":", lw=1)
    log_axes(ax, "x")
    ax.set_ylim(bottom=0)
    ax.set_title("R per size bin: median over the cases, 25-75 % band")
    ax.set_xlabel("problem size: forward FLOPs")
    ax.set_ylabel("R = T(gradient) / T(forward)")
    extra = [Line2D([], [], color="k", marker="_", ms=10, mew=2, ls="none", label="FLOP theory (median)"),
             Line2D([], [], color="0.4", ls="--", label=f"cheap-gradient bound ≈ {CHEAP_GRADIENT_BOUND:.0f}")]
    _finish(fig, pal.series_handles(d.series) + extra)
    return fig, ""


LARGE_FIGURES: list[FigureSpec] = [
    ("ratio-spread", "R per suite and framework",
     "How R = T(gradient) / T(forward) spreads over the cases of each suite, per framework (mode) and "
     "device: the thick bar runs from the 25th to the 75th percentile, the thin line from the 5th to the "
     "95th, the tick is the median. Dashed: the cheap-gradient bound of about 4; dotted: 1. Too many cases "
     "to draw one point each: the summary table below has the numbers.", ratio_distribution),
    ("ratio-size", "R against problem size, binned",
     "The cases binned by forward FLOPs (log-spaced bins): per bin and framework the median R, with a band "
     "from the 25th to the 75th percentile. Black bars: the median FLOP theory of the bin.", ratio_by_size),
    ("times-size", "Time against problem size, binned",
     "Median time per call of each phase over the cases of each size bin (log-spaced bins of forward "
     "FLOPs), with a band from the 25th to the 75th percentile, log-log.", times_by_size),
]
LARGE_MEMORY_FIGURES: list[tuple[str, str, str,
                                 Callable[[ReportData, Palette], tuple[Panels | None, str]]]] = [
    ("memory-spread", "M per suite and framework",
     "How M = peak(gradient) / peak(forward) spreads over the cases of each suite, per framework: the thick "
     "bar runs from the 25th to the 75th percentile, the thin line from the 5th to the 95th, the tick is "
     "the median. Dotted: M = 1.", memory_distribution),
]


def build(d: ReportData) -> list[Fig]:
    """Every figure: the timing ones, then the memory ones (section "memory"), which are left out
    altogether when no row measured memory (the page then says so once). A large run
    (``d.large``) gets figures of distributions and size bins instead of a point per case."""
    pal = Palette(d)
    out = []
    timing, memory = (LARGE_FIGURES, LARGE_MEMORY_FIGURES) if d.large else (FIGURES, MEMORY_FIGURES)
    drawn = [(f, "timing") for f in timing] + ([(f, "memory") for f in memory] if has_memory(d.ok) else [])
    for (fig_id, title, caption, draw), section in drawn:
        with rc_context({**RC, "svg.hashsalt": f"bench-report-{fig_id}"}):
            panels, note = draw(d, pal)
            svgs = () if panels is None else tuple(
                to_svg(f, f"fig-{fig_id}-{i}", title if len(panels.figs) == 1 else f"{title}, panel {i}")
                for i, f in enumerate(panels.figs, start=1))
        out.append(Fig(fig_id, title, caption, svgs, note, section,
                       tuple(panels.legend) if panels is not None else ()))
    return out
