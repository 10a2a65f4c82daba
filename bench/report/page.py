"""The HTML page: a jinja2 template with autoescaping, filled from the report data.

Every value that comes from a results file goes through jinja2's autoescape.
The only markup inserted as is: the figures' SVG, which matplotlib writes with
its text escaped, and the page's own CSS and script.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from bench import __version__
from bench.report.data import CHEAP_GRADIENT_BOUND, ReportData, downloads, export_command, fmt_bytes, l2_text
from bench.report.figures import Fig

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("bench.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def num(x: Any, digits: int = 3) -> str:
    """A number for a table cell: significant digits, '-' for missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:#.{digits}g}".rstrip(".")
    return str(x)


def sort_key(x: Any) -> str:
    """The value the table sorter compares (numbers as numbers, missing last)."""
    if isinstance(x, float):
        return "" if not math.isfinite(x) else repr(x)
    return str(x)


def percent(x: Any) -> str:
    """A fraction as '84 %', '-' for missing."""
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.0f} %"


_ENV.filters["num"] = num
_ENV.filters["sort_key"] = sort_key
_ENV.filters["bytes"] = fmt_bytes
_ENV.filters["percent"] = percent


def _case_columns() -> list[tuple[str, str]]:
    return [
        ("case", "case"), ("series", "framework (mode) · device"), ("forward flops", "forward FLOPs"),
        ("forward ms", "forward ms"), ("gradient ms", "gradient ms"), ("step ms", "step ms"),
        ("backward_split ms", "backward alone ms"), ("R", "R [95% CI]"), ("theory", "theory"),
        ("forward GFLOP/s", "fwd GFLOP/s"), ("gradient GFLOP/s", "grad GFLOP/s"),
        ("first call forward s", "1st call fwd s"), ("first call gradient s", "1st call grad s"),
        ("M", "M (theory)"), ("saved bytes", "saved"), ("gradient peak fraction", "grad % of peak"),
        ("status", "status"),
    ]


def _suite_tables(cases: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    if cases.empty:
        return out
    for suite, g in cases.groupby("suite", sort=True):
        rows = []
        for r in g.to_dict("records"):
            ci = "" if not math.isfinite(r["R ci low"]) else f" [{r['R ci low']:.2f}, {r['R ci high']:.2f}]"
            theory = "" if not math.isfinite(r["M theory"]) else f" ({num(r['M theory'])})"
            rows.append({**r, "R text": "-" if not math.isfinite(r["R"]) else f"{r['R']:.2f}{ci}",
                         "M text": "-" if not math.isfinite(r["M"]) else f"{num(r['M'])}{theory}"})
        out.append({"suite": suite, "rows": rows})
    return out


def render_page(data: ReportData, figures: list[Fig], title: str) -> str:
    template = _ENV.get_template("report.html.j2")
    settings_cols = sorted({k for run in data.runs for k, _ in run["settings"]})
    modes = sorted({(r.framework, r.mode) for r in data.rows[["framework", "mode"]].itertuples()})
    files = downloads(data)
    figs = [{**f.__dict__, "svg": Markup(f.svg) if f.svg else None, "number": i}
            for i, f in enumerate(figures, start=1)]
    return template.render(
        title=title,
        data=data,
        figures=[f for f in figs if f["section"] == "timing"],
        memory_figures=[f for f in figs if f["section"] == "memory"],
        memory=data.memory.to_dict("records"),
        l2=l2_text(data.rows["l2"]),
        bound=CHEAP_GRADIENT_BOUND,
        case_columns=_case_columns(),
        suite_tables=_suite_tables(data.cases),
        by_suite=data.by_suite,
        not_measured=data.not_measured.to_dict("records"),
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
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        version=__version__,
    )
