"""Report figures mark the points of noisy and unreliable rows, and only those."""

from __future__ import annotations

import dataclasses

import pandas as pd
from test_report import records

from bench.present.report import data as report_data
from bench.present.report import figures


def figure(rows) -> figures.Panels:
    df = pd.DataFrame([r.to_dict() for r in rows])
    d = report_data.build(df)
    fig, _ = figures.ratio_vs_size(d, figures.Palette(d))
    assert fig is not None
    return fig


def hollow_points(fig: figures.Panels) -> int:
    """Points drawn with a white face: mark_flagged's."""
    return sum(len(line.get_xdata()) for ax in fig.axes for line in ax.get_lines()
               if line.get_markerfacecolor() == "white" and line.get_linestyle() == "None")


def legend_texts(fig: figures.Panels) -> list[str]:
    return [e.label for e in fig.legend]


def test_flagged_gradient_rows_are_drawn_hollow_with_a_legend_entry():
    rows = records(machine="box", devices=("cpu",))
    flagged = 0
    marked = []
    for r in rows:
        if r.phase == "gradient" and r.status == "ok" and flagged < 2:
            r = dataclasses.replace(r, quality="noisy" if flagged == 0 else "unreliable",
                                    quality_reason="R CI half-width 18 %")
            flagged += 1
        elif r.status == "ok":
            r = dataclasses.replace(r, quality="good")
        marked.append(r)
    fig = figure(marked)
    assert hollow_points(fig) == 2
    assert "hollow: noisy or unreliable" in legend_texts(fig)


def test_a_run_with_only_good_rows_has_no_hollow_points_and_no_legend_entry():
    rows = [dataclasses.replace(r, quality="good") if r.status == "ok" else r
            for r in records(machine="box", devices=("cpu",))]
    fig = figure(rows)
    assert hollow_points(fig) == 0
    assert "hollow: noisy or unreliable" not in legend_texts(fig)
