"""Issue 11, items 6-9: what the report page shows first, on a laptop and a phone, for one run and
for several machines; labels that agree with their numbers; the verdict from bench.stats.gradient_cost."""

from __future__ import annotations

import dataclasses
import html as htmllib
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from test_report import RUN_ID, figure_html, records

from bench.core.records import Record
from bench.present import report
from bench.present.console import quality_warning
from bench.present.report import data as report_data
from bench.present.report import figures, machines
from bench.stats.gradient_cost import gradient_costs as terminal_verdicts
from bench.store.writer import ResultsWriter

OTHER_RUN = "20260103T040506Z-cafe"


def machine_records(machine: str, run_id: str = RUN_ID, slower: float = 1.0) -> list[Record]:
    """test_report's records on a CPU, for one machine; ``slower`` scales its gradient times."""
    out = []
    for r in records(machine=machine, devices=("cpu",)):
        r = dataclasses.replace(r, run_id=run_id)
        if r.status == "ok" and r.phase == "gradient":
            r = dataclasses.replace(r, median_s=r.median_s * slower, ci_low_s=r.ci_low_s * slower,
                                    ci_high_s=r.ci_high_s * slower, ratio=r.ratio * slower,
                                    ratio_ci_low=r.ratio_ci_low * slower,
                                    ratio_ci_high=r.ratio_ci_high * slower)
        out.append(r)
    return out


def write_run(root: Path, rows: list[Record], settings: dict | None = None,
              frameworks: dict | None = None) -> Path:
    first = rows[0]
    path = root / first.machine / f"{first.run_id}.parquet"
    writer = ResultsWriter(path, {
        "run_id": first.run_id, "machine": first.machine, "fingerprint": {"cpu": "Test CPU"},
        "settings": settings or {"threads": 2}, "devices": ["cpu"], "suites": ["mlp_regression"],
        "frameworks": frameworks or {},
    })
    writer.append(rows)
    writer.close(interrupted=False)
    return path


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory) -> tuple[str, list[Path]]:
    root = tmp_path_factory.mktemp("results")
    paths = [write_run(root, machine_records("one")), write_run(root, machine_records("two", OTHER_RUN, 1.5))]
    df, metadata = report.read(paths)
    return report.render(df, metadata), paths


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("results")
    df, metadata = report.read([write_run(root, machine_records("box"))])
    return report.render(df, metadata)


def section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}">')
    return page[start:page.index("</section>", start)]


def headers(table: str) -> list[str]:
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", table, flags=re.S).group(1)
    return [htmllib.unescape(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<th[^>]*>(.*?)</th>", head)]


# Item 6: R visible on a laptop -------------------------------------------------------------


def test_the_per_case_table_starts_with_case_framework_r_theory_and_status(single):
    cases = section(single, "cases")
    tables = re.findall(r'<table class="sortable cases">.*?</table>', cases, flags=re.S)
    assert len(tables) == 2  # one per suite
    for t in tables:
        assert headers(t)[:5] == ["case", "framework · device", "R [95% CI]", "theory", "status"]
        assert len(headers(t)) <= 7  # the forward and gradient times, nothing more
    # Everything else sits behind a toggle, one per suite.
    more = re.findall(r'<details class="more">.*?</details>', cases, flags=re.S)
    assert len(more) == 2 and all("grad GFLOP/s" in m and "1st call fwd s" in m for m in more)


def test_a_case_id_may_wrap_at_its_commas(single):
    assert "batch=64,<wbr>width=128,<wbr>depth=2" in section(single, "cases")


# Item 8: several machines -------------------------------------------------------------------


def test_series_labels_name_the_machine_and_a_run_only_where_a_machine_has_several():
    pairs = pd.DataFrame({"machine": ["one", "two", "two"],
                          "run_id": [RUN_ID, OTHER_RUN, "20260104T000000Z-d00d"]})
    assert report_data.source_labels(pairs) == {("one", RUN_ID): "one", ("two", OTHER_RUN): "two (cafe)",
                                                ("two", "20260104T000000Z-d00d"): "two (d00d)"}
    one_machine = pairs.assign(machine="box")
    assert set(report_data.source_labels(one_machine).values()) == {"run beef", "run cafe", "run d00d"}
    assert report_data.source_labels(pairs.iloc[:1]) == {("one", RUN_ID): ""}
    # bench run's ids end in 16 hex digits: the first four tell runs apart, unless they do not.
    long = pd.DataFrame({"machine": "box", "run_id": ["20261126T091601Z-b40f2b79fb78a3bc",
                                                      "20261126T093000Z-77aa000000000000",
                                                      "20261126T094500Z-77aa010000000000"]})
    assert sorted(report_data.source_labels(long).values()) == ["run 77aa00", "run 77aa01", "run b40f2b"]
    assert sorted(report_data.source_labels(long.iloc[:2]).values()) == ["run 77aa", "run b40f"]


def test_two_machines_open_with_the_machines_by_cases_panel(two_machines):
    page, _ = two_machines
    assert page.index('<section id="machines">') < page.index('<section id="verdict">')
    panel = section(page, "machines")
    t = re.search(r'<h3>mlp_regression</h3>\s*<div class="scroll">\s*(<table.*?</table>)', panel,
                  flags=re.S).group(1)
    assert headers(t) == ["case", "framework · device", "R · one", "R · two", "forward ms · one",
                          "forward ms · two", "gradient ms · one", "gradient ms · two"]
    # torch at batch=64: R 2.0 on one and 3.0 on two (1.5 times slower gradients), with their CIs.
    row = re.search(r'<tr><td class="case">batch=64,<wbr>width=128,<wbr>depth=2</td>'
                    r'<td>torch eager · cpu</td>(.*?)</tr>', t, flags=re.S).group(1)
    cells = [htmllib.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
    assert cells[:2] == ["2.00 [1.95, 2.05]", f"3.00 [{1.95 * 1.5:.2f}, {2.05 * 1.5:.2f}]"]
    assert cells[2] == cells[3] != "-" and cells[4] != cells[5]  # same forward time, slower gradient


def test_two_machines_get_short_series_labels(two_machines):
    page, _ = two_machines
    d = report_data.build(report.read(two_machines[1])[0])
    assert d.series == ["one · torch eager · cpu", "one · jax jit · cpu",
                        "two · torch eager · cpu", "two · jax jit · cpu"]
    legends = re.findall(r'<ul class="legend">(.*?)</ul>', page, flags=re.S)
    assert legends and not any(RUN_ID in x or OTHER_RUN in x for x in legends)


def test_the_machines_panel_opens_with_each_machine_s_median_r(two_machines):
    panel = section(two_machines[0], "machines")
    head = "<h3>Median R over the cases, per machine</h3>"
    t = re.search(head + r'\s*<div class="scroll">\s*(<table.*?</table>)', panel, flags=re.S).group(1)
    assert headers(t) == ["framework · device", "one", "two"]
    torch = re.search(r"<tr><td>torch eager · cpu</td>(.*?)</tr>", t).group(1)
    medians = re.findall(r'<td class="n">([\d.]+)<span class="ci">', torch)
    assert medians == ["2.10", "3.15"]


def test_one_run_has_no_machines_panel(single):
    assert '<section id="machines">' not in single and "Machines side by side" not in single


def test_a_large_run_of_two_machines_gets_an_aggregated_panel(tmp_path, monkeypatch):
    monkeypatch.setattr(report_data, "LARGE_CASES", 5)
    rows = machine_records("one") + machine_records("two", OTHER_RUN, 1.5)
    d = report_data.build(pd.DataFrame([r.to_dict() for r in rows]))
    assert d.large
    panels = machines.panels(d)
    assert [p.suite for p in panels] == ["linear_regression", "mlp_regression"]
    mlp = panels[1]
    assert mlp.aggregated and mlp.sources == ("one", "two")
    torch = next(r for r in mlp.rows if r.config == "torch eager · cpu")
    assert torch.case == "3 cases"
    assert torch.cells[0].r == pytest.approx(2.1) and torch.cells[1].r == pytest.approx(3.15)


# Item 9 and the verdict ---------------------------------------------------------------------


def bound_rows(ratios: list[float], ci_width: float = 0.1) -> list[Record]:
    """One gradient row (and its forward row) per R in ``ratios``, for one series."""
    out = []
    for i, r in enumerate(ratios):
        base = dict(run_id=RUN_ID, machine="box", suite="s", case=f"n={i}", params="{}", framework="torch",
                    framework_version="1", mode="eager", device="cpu", status="ok", flops=1e6 * (i + 1),
                    theory_ratio=3.0, quality="good")
        out.append(Record(**base, phase="forward", median_s=1e-3, ci_low_s=1e-3, ci_high_s=1e-3))
        out.append(Record(**base, phase="gradient", median_s=r * 1e-3, ci_low_s=r * 1e-3, ci_high_s=r * 1e-3,
                          ratio=r, ratio_ci_low=r - ci_width, ratio_ci_high=r + ci_width))
    return out


# 14 cases, 4 of them above 4; the bootstrap CI of the median reaches above 4.
ABOVE = [2.0, 2.2, 2.4, 2.6, 2.8, 3.0, 3.2, 3.4, 3.6, 3.8, 4.6, 5.0, 5.2, 6.0]


def test_the_bound_column_counts_the_cases_above_it():
    d = report_data.build(pd.DataFrame([r.to_dict() for r in bound_rows(ABOVE)]))
    (v,) = d.verdicts
    assert v["median"] == pytest.approx(3.3) and v["ci_high"] > 4
    assert v["bound"] == "mostly" and not v["within_bound"]
    assert v["bound_text"] == f"4 of 14 cases above 4; the CI reaches {v['ci_high']:.2f}"
    assert d.headline.startswith("Mostly:") and "4 of 14 cases exceed it" in d.headline
    html = report.render(pd.DataFrame([r.to_dict() for r in bound_rows(ABOVE)]), [])
    verdict = section(html, "verdict")
    assert ">yes<" not in verdict and "4 of 14 cases above 4" in verdict


def test_every_case_within_the_bound_says_yes():
    d = report_data.build(pd.DataFrame([r.to_dict() for r in bound_rows([2.0, 2.5, 3.0])]))
    assert d.verdicts[0]["bound"] == "within" and d.verdicts[0]["bound_text"] == "0 of 3 cases above 4"
    assert d.headline.startswith("Yes:")
    above = report_data.build(pd.DataFrame([r.to_dict() for r in bound_rows([5.0, 6.0, 7.0])]))
    assert above.verdicts[0]["bound"] == "above" and above.headline.startswith("Not everywhere")


def test_the_page_verdict_is_the_terminal_verdict_line(single):
    for v in terminal_verdicts(machine_records("box")):
        assert f"<strong>{htmllib.escape(v.line, quote=True)}</strong>." in single, v.line


def test_the_quality_warning_of_the_terminal_is_on_the_page_even_without_a_verdict():
    rows = []
    for r in machine_records("box"):
        if r.phase == "gradient":
            r = dataclasses.replace(r, status="failed", reason="the loss differs")
        elif r.status == "ok":
            r = dataclasses.replace(r, quality="noisy", quality_reason="other processes used 0.60 CPU during "
                                    "the rounds")
        rows.append(r)
    html = report.render(pd.DataFrame([r.to_dict() for r in rows]), [])
    assert "No gradient was measured" in html
    line = quality_warning(rows)
    assert line
    assert htmllib.escape(line.split(". See the")[0], quote=True) in html


def test_huge_cis_are_clipped_and_marked_in_the_ratio_figure():
    rows = bound_rows([2.0, 2.2, 2.4, 2.6, 2.8, 3.0])
    rows = [dataclasses.replace(r, ratio_ci_high=50.0) if r.phase == "gradient" and r.case in ("n=1", "n=4")
            else r for r in rows]
    d = report_data.build(pd.DataFrame([r.to_dict() for r in rows]))
    panels, _ = figures.ratio_vs_size(d, figures.Palette(d))
    (ax,) = panels.axes
    assert ax.get_ylim()[1] < 5  # R of 2-3 is not flattened by a CI reaching 50
    tops = [line for line in ax.get_lines() if line.get_marker() == "^"]
    assert sum(len(line.get_xdata()) for line in tops) == 2
    assert any(e.marker == "^" and "above the axis" in e.label for e in panels.legend)


def test_a_figure_that_is_not_drawn_has_its_reason_and_no_caption(single):
    body = figure_html(single, "devices")
    assert "Not drawn: Only one device was measured" in body
    assert "<figcaption>" not in body and "GPU speedup" not in body


def test_empty_settings_are_left_out(tmp_path):
    fws = {"torch:eager@cpu": {"version": "2.5", "settings": {"threads": 2, "cuda_build": "", "cudnn": None}}}
    path = write_run(tmp_path, machine_records("box"), settings={"threads": 2, "note": ""}, frameworks=fws)
    html = report.render(*report.read([path]))
    runs = section(html, "runs")
    assert "threads=2" in runs
    assert "cuda_build" not in runs and "cudnn" not in runs and "<th>note</th>" not in runs


# Item 7: figures readable on a phone, legends outside the SVGs -----------------------------


def font_sizes(svg: str) -> list[float]:
    return [float(x) for x in re.findall(r"font-size: ([\d.]+)px", svg)]


def test_figure_text_stays_readable_when_a_panel_is_400_px_wide(single):
    svgs = re.findall(r'<svg class="figure".*?</svg>', single, flags=re.S)
    assert len(svgs) > 8  # panels are separate SVGs
    for svg in svgs:
        width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
        smallest = min(font_sizes(svg))
        assert smallest * 400 / width >= 9, (smallest, width)


def test_legends_are_html_beside_the_panels_not_inside_them(single):
    body = figure_html(single, "ratio")
    assert 'id="fig-ratio-1-legend' not in body  # no matplotlib legend in the SVG
    legend = re.search(r'<ul class="legend">(.*?)</ul>', body, flags=re.S).group(1)
    labels = re.findall(r"<span>(.*?)</span>", legend)
    assert labels[:2] == ["torch eager · cpu", "jax jit · cpu"] and "FLOP theory" in labels
    assert legend.count('<svg class="swatch"') == len(labels)


def test_not_measured_is_a_compact_list(single):
    nm = section(single, "not-measured")
    assert "<table" not in nm and '<ul class="nm">' in nm
    # The four phases of the failed case share one line.
    assert re.search(r"<li><strong>linear_regression</strong> · jax jit · cpu · forward, gradient, backward, "
                     r'step: <span class="no">failed</span>', nm)
    assert nm.count("<li>") == 1


def test_number_cells_have_no_trailing_dot_or_exponent(single):
    cells = re.findall(r'<td class="n"[^>]*>([^<]*)<', section(single, "cases"))
    assert cells and not [c for c in cells if c.endswith(".") or "e+" in c or "e-" in c]
    assert not math.isnan(float(cells[0]) if cells[0] not in ("-",) else 0.0)


def test_a_flagged_row_shows_its_numbers_marked_in_the_machines_panel():
    rows = machine_records("one") + machine_records("two", OTHER_RUN, 1.5)
    rows = [dataclasses.replace(r, quality="unreliable", quality_reason="other processes used 0.91 CPU")
            if r.machine == "two" and r.phase == "gradient" and r.status == "ok" else r for r in rows]
    d = report_data.build(pd.DataFrame([r.to_dict() for r in rows]))
    mlp = next(p for p in machines.panels(d) if p.suite == "mlp_regression")
    one, two = mlp.rows[0].cells
    assert two.status == "" and two.quality == "unreliable" and two.r == pytest.approx(3.0)
    assert one.quality == ""
    html = report.render(pd.DataFrame([r.to_dict() for r in rows]), [])
    assert '<span class="warn" title="unreliable: other processes used 0.91 CPU">‼</span> 3.00' in html


def test_bench_report_of_two_machine_folders_writes_the_comparison_page(tmp_path):
    from conftest import bench_cli

    write_run(tmp_path / "results", machine_records("one"))
    write_run(tmp_path / "results", machine_records("two", OTHER_RUN, 1.5))
    out = tmp_path / "page.html"
    proc = bench_cli("report", str(tmp_path / "results" / "one"), str(tmp_path / "results" / "two"),
                     "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert page.index('<section id="machines">') < page.index('<section id="verdict">')
    assert "<h2>Machines side by side</h2>" in page and "2 machines: one, two." in page
