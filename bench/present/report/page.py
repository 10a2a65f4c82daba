"""The HTML page: a jinja2 template with autoescaping, filled from the report data.

Every value that comes from a results file goes through jinja2's autoescape.
The only markup inserted as is: the figures' SVG, which matplotlib writes with
its text escaped, the legend swatches (bench.present.report.legend: colours and shapes,
no data text), the page's own CSS and script, and ``<wbr>`` / ``<span>`` put
around text that was escaped first (``breakable``, ``with_ci``, ``ratio_ci``).
Numbers go through bench.core.fmt.
"""

from __future__ import annotations

import math
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup, escape

from bench import __version__
from bench.core import clock, fmt
from bench.present.report.data import (
    CHEAP_GRADIENT_BOUND,
    ReportData,
    downloads,
    export_command,
    l2_text,
)
from bench.present.report.figures import Fig
from bench.present.report.legend import swatch
from bench.present.report.machines import heading, panels, verdict_matrix

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("bench.present.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def num(x: Any) -> str:
    """A number for a table cell (bench.core.fmt's three significant digits), '-' for missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, float):
        return fmt.sig3(x)
    return str(x)


def with_ci(x: Any, low: Any, high: Any) -> Markup:
    """``2.10 [2.05, 2.15]``: the interval in a span that a narrow screen puts on its own line."""
    if x is None or not math.isfinite(x):
        return Markup("-")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return Markup(escape(num(x)))
    return Markup(f'{escape(num(x))}<span class="ci"> [{escape(num(low))}, {escape(num(high))}]</span>')


def ratio_ci(x: Any, low: Any, high: Any) -> Markup:
    """R with its CI, two decimals (bench.core.fmt.ratio), the CI in a span as ``with_ci``."""
    if x is None or not math.isfinite(x):
        return Markup("-")
    text = fmt.ratio(x, low, high)
    value, sep, interval = text.partition(" ")
    return Markup(escape(value) + (Markup('<span class="ci"> ') + escape(interval) + Markup("</span>")
                                   if sep else ""))


def breakable(text: Any) -> Markup:
    """Text escaped, with a line-break opportunity after each comma: 'batch=64,width=128' can wrap."""
    return Markup(str(escape(str(text))).replace(",", ",<wbr>"))


def sort_key(x: Any) -> str:
    """The value the table sorter compares (numbers as numbers, missing last)."""
    if isinstance(x, float):
        return "" if not math.isfinite(x) else repr(x)
    return str(x)


_ENV.filters["num"] = num
_ENV.filters["sort_key"] = sort_key
_ENV.filters["bytes"] = fmt.size
_ENV.filters["percent"] = fmt.percent
_ENV.filters["breakable"] = breakable
_ENV.filters["count"] = fmt.count
_ENV.globals["with_ci"] = with_ci
_ENV.globals["ratio_ci"] = ratio_ci

# The per-case table: what a reader came for first (R beside its theory and whether the row can
# be trusted), then the times; the other columns sit in a second table behind a toggle.
MAIN_COLUMNS = [("case", "case"), ("series", "framework · device"), ("R", "R [95% CI]"), ("theory", "theory"),
                ("status", "status"), ("forward ms", "forward ms"), ("gradient ms", "gradient ms")]
DETAIL_COLUMNS = [
    ("case", "case"), ("series", "framework · device"), ("forward flops", "forward FLOPs"),
    ("step ms", "step ms"), ("backward_split ms", "backward alone ms"),
    ("forward GFLOP/s", "fwd GFLOP/s"), ("gradient GFLOP/s", "grad GFLOP/s"),
    ("first call forward s", "1st call fwd s"), ("first call gradient s", "1st call grad s"),
    ("M", "M (theory)"), ("saved bytes", "saved"), ("gradient peak fraction", "grad % of peak"),
]
# A status reason longer than this is cut in the table (the whole text is its tooltip and is
# listed under "Not measured").
STATUS_CHARS = 70


def _status(status: str) -> tuple[str, str, str]:
    """(word, short reason, whole reason) of a case's status ('ok', 'failed: the loss differs ...')."""
    word, _, reason = status.partition(": ")
    short = reason if len(reason) <= STATUS_CHARS else reason[:STATUS_CHARS - 1].rstrip() + "…"
    return word, short, reason


def _suite_tables(cases: pd.DataFrame) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if cases.empty:
        return out
    for suite, g in cases.groupby("suite", sort=True):
        rows = []
        for r in g.to_dict("records"):
            theory = "" if not math.isfinite(r["M theory"]) else f" ({num(r['M theory'])})"
            word, short, reason = _status(r["status"])
            rows.append({**r, "M text": "-" if not math.isfinite(r["M"]) else f"{num(r['M'])}{theory}",
                         "status word": word, "status short": short, "status reason": reason})
        out.append({"suite": suite, "rows": rows})
    return out


def _not_measured(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows not measured, one entry per suite, series, status, reason and cases: the phases
    that failed alike (forward, gradient, backward, step of one case) share a line."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in table.to_dict("records"):
        key = (r["suite"], r["series"], r["status"], r["reason"], r["cases"])
        entry = out.setdefault(key, {**r, "phases": [], "rows": 0})
        entry["phases"].append(r["phase"])
        entry["rows"] += int(r["rows"])
    return [{**e, "phase": ", ".join(e["phases"])} for e in out.values()]


def _figures(figures: list[Fig]) -> list[dict[str, Any]]:
    """The figures for the template: their SVGs (matplotlib's, text escaped) and legend swatches
    (our own markup) as Markup; legend labels stay text, for autoescaping."""
    return [{"id": f.id, "title": f.title, "caption": f.caption, "note": f.note, "section": f.section,
             "number": i, "svgs": [Markup(s) for s in f.svgs],
             "legend": [{"swatch": Markup(swatch(e)), "label": e.label} for e in f.legend]}
            for i, f in enumerate(figures, start=1)]


def render_page(data: ReportData, figures: list[Fig], title: str) -> str:
    """The page's HTML from the report's tables and figures."""
    template = _ENV.get_template("report.html.j2")
    settings_cols = sorted({k for run in data.runs for k, _ in run["settings"]})
    modes = sorted({(r.framework, r.mode) for r in data.rows[["framework", "mode"]].itertuples()})
    files = downloads(data)
    figs = _figures(figures)
    return template.render(
        title=title,
        data=data,
        panels=panels(data),
        matrix=verdict_matrix(data),
        panel_heading=heading(data),
        figures=[f for f in figs if f["section"] == "timing"],
        memory_figures=[f for f in figs if f["section"] == "memory"],
        memory=data.memory.to_dict("records"),
        l2=l2_text(data.rows["l2"]),
        bound=CHEAP_GRADIENT_BOUND,
        main_columns=MAIN_COLUMNS,
        detail_columns=DETAIL_COLUMNS,
        suite_tables=_suite_tables(data.cases),
        by_suite=data.by_suite,
        not_measured=_not_measured(data.not_measured),
        downloads=files,
        large=data.large,
        summary=data.summary.to_dict("records") if data.large else [],
        export_command=export_command(data) if data.large else "",
        n_cases=data.n_cases,
        settings_cols=settings_cols,
        modes=", ".join(f"{fw} {m}" for fw, m in modes),
        devices=", ".join(sorted(data.rows["device"].unique())),
        n_rows=len(data.rows),
        n_ok=len(data.ok),
        generated=clock.now(),
        version=__version__,
    )
