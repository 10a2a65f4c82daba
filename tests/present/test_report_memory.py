"""The report's memory section, fraction-of-peak and throttling sentences, from hand-made rows.

The rows are a small mlp_regression-like grid: a depth sweep and a batch sweep
around batch=256, width=256, depth=2, with known saved and peak bytes, so that
every number the page prints can be computed here.
"""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from test_report import RUN_ID, figure_html, records

from bench.core import fmt
from bench.core.records import Record
from bench.present import report
from bench.present.report import data as report_data
from bench.store.writer import ResultsWriter

# (batch, width, depth): the centre, a depth sweep and a batch sweep.
CENTRE = (256, 256, 2)
GRID = [CENTRE, (256, 256, 1), (256, 256, 4), (256, 256, 8), (64, 256, 2), (1024, 256, 2)]
THROTTLED = {(256, 256, 4): "power cap 120 ms", (256, 256, 8): "hw_slowdown at end"}
# series -> (peak float32 matmul rate, gradient's achieved rate, measured saved / theory, memory?)
SERIES = {
    ("torch", "eager", "cpu"): (200e9, 150e9, 1.0, True),
    ("jax", "jit", "cpu"): (100e9, 80e9, 1.5, True),
    ("tensorflow", "function", "cpu"): (100e9, 60e9, math.nan, False),
    ("torch", "eager", "cuda:0"): (20e12, 14e12, 1.0, True),
}


def case_id(b: int, w: int, d: int) -> str:
    return f"batch={b},width={w},depth={d}"


def theory_saved(b: int, w: int, d: int) -> float:
    return 4.0 * b * w * (d + 1)


def measured_m(fw: str, d: int) -> float:
    return 1 + 0.25 * d if fw == "torch" else 1 + 0.5 * d


def theory_m(d: int) -> float:
    return 1 + 0.3 * d


def memory_records(l2: str = "flush") -> list[Record]:
    out = []
    for (fw, mode, device), (peak, rate, saved_q, measured) in SERIES.items():
        for b, w, d in GRID:
            case = case_id(b, w, d)
            fwd_flops = 2.0 * b * w * w * (d + 1)
            grad_flops = fwd_flops * (3 - 1 / (d + 1))
            fwd_peak = 4.0 * 2 * b * w
            common = dict(
                run_id=RUN_ID, machine="box", suite="mlp_regression", case=case,
                params=json.dumps({"batch": b, "width": w, "depth": d}), framework=fw,
                framework_version="1.0", mode=mode, device=device, status="ok", l2=l2,
                theory_saved_bytes=theory_saved(b, w, d), peak_flops_per_s=peak,
                saved_bytes=theory_saved(b, w, d) * saved_q if measured else math.nan,
                memory_method="test bytes" if measured else "saved: not exposed by TensorFlow",
                throttled=THROTTLED.get((b, w, d), "") if device != "cpu" else "",
            )
            for phase, flops, m, th in (("forward", fwd_flops, 1.0, 1.0),
                                        ("gradient", grad_flops, measured_m(fw, d), theory_m(d))):
                t = flops / (rate if phase == "gradient" else rate * 1.2)
                out.append(Record(
                    **common, phase=phase, median_s=t, samples_s=(t, t, t), rounds=3, calls_per_block=1,
                    ratio=t / (fwd_flops / (rate * 1.2)), ratio_ci_low=1.0, ratio_ci_high=5.0,
                    flops=flops, flops_per_s=flops / t, theory_ratio=flops / fwd_flops,
                    peak_bytes=fwd_peak * m if measured else math.nan,
                    memory_ratio=m if measured else math.nan,
                    theory_peak_bytes=fwd_peak * th, theory_memory_ratio=th))
    return out


@pytest.fixture(scope="module")
def built():
    df = pd.DataFrame([r.to_dict() for r in memory_records()])
    return report_data.build(df)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("mem") / "box" / f"{RUN_ID}.parquet"
    writer = ResultsWriter(path, {"run_id": RUN_ID, "machine": "box",
                                  "settings": {"threads": 2, "l2": "flush"}})
    writer.append(memory_records())
    writer.close(interrupted=False)
    df, metadata = report.read([path])
    return report.render(df, metadata)


def verdict_of(built, series: str) -> dict:
    return next(v for v in built.verdicts if v["series"] == series)


# Sweeps ---------------------------------------------------------------------


def test_sweeps_find_each_parameter_varied_around_the_centre():
    cases = [case_id(*c) for c in GRID] + ["batch=64,width=512,depth=3"]  # off every sweep
    found = {s["param"]: s for s in report_data.sweeps(cases)}
    assert set(found) == {"batch", "depth"}  # width never varies alone
    assert found["depth"]["fixed"] == {"batch": 256, "width": 256}
    assert [v for v, _ in found["depth"]["points"]] == [1, 2, 4, 8]
    assert found["batch"]["points"] == [(64, case_id(64, 256, 2)), (256, case_id(*CENTRE)),
                                        (1024, case_id(1024, 256, 2))]


def test_no_sweep_when_every_parameter_changes_at_once():
    quick = ["batch=64,width=128,depth=2", "batch=256,width=256,depth=3", "batch=1024,width=512,depth=2"]
    assert report_data.sweeps(quick) == []


def test_case_params_read_the_id_then_the_json():
    assert report_data.case_params("batch=8,depth=2") == {"batch": 8, "depth": 2}
    assert report_data.case_params("tiny", '{"n": 3, "name": "x"}') == {"n": 3}
    assert report_data.case_params("tiny", float("nan")) == {}


def test_bytes_are_written_in_decimal_units():
    assert [fmt.size(x) for x in (512, 524288, 1.1e6, 2.36e9, math.nan)] == \
        ["512 B", "524 kB", "1.1 MB", "2.4 GB", "-"]


# Sentences ------------------------------------------------------------------


def test_memory_sentence_names_the_deepest_case_and_the_growth_with_depth(built):
    v = verdict_of(built, "torch eager · cpu")
    # depth 8: M = 1 + 0.25 * 8 = 3.0, theory 1 + 0.3 * 8 = 3.4; saved 4*256*256*(d+1)
    assert v["memory_sentence"] == (
        "The gradient needs 3.0× the forward pass's memory at batch=256,width=256,depth=8 (theory 3.4×); "
        "what the backward pass keeps from the forward pass grows with depth: "
        "524 kB at depth 1 to 2.4 MB at depth 8.")
    jax = verdict_of(built, "jax jit · cpu")["memory_sentence"]
    assert "needs 5.0×" in jax and "786 kB at depth 1 to 3.5 MB at depth 8" in jax  # 1.5 x theory


def test_no_memory_sentence_where_memory_is_nan(built):
    assert verdict_of(built, "tensorflow function · cpu")["memory_sentence"] == ""


def test_peak_sentence_uses_the_largest_gradient(built):
    assert verdict_of(built, "torch eager · cpu")["peak_sentence"] == (
        "The gradient reached 75 % of this device's float32 matmul peak (150 of 200 GFLOP/s) "
        "on the largest case, batch=1024,width=256,depth=2.")
    gpu = verdict_of(built, "torch eager · cuda:0")["peak_sentence"]
    assert "70 % of this device's float32 matmul peak (14.0 of 20.0 TFLOP/s)" in gpu


def test_no_peak_sentence_without_a_peak():
    df = pd.DataFrame([r.to_dict() for r in memory_records()]).assign(peak_flops_per_s=math.nan)
    assert all(v["peak_sentence"] == "" for v in report_data.build(df).verdicts)


# Tables ---------------------------------------------------------------------


def test_memory_summary_per_series(built):
    m = built.memory.set_index("series")
    torch = m.loc["torch eager · cpu"]
    # M over depths 2, 1, 4, 8, 2, 2: 1.5, 1.25, 2, 3, 1.5, 1.5
    assert torch["cases"] == 6 and torch["median M"] == pytest.approx(1.5)
    assert (torch["M min"], torch["M max"]) == pytest.approx((1.25, 3.0))
    assert torch["theory M"] == pytest.approx(1.6)  # 1 + 0.3 * 2
    assert m.loc["jax jit · cpu", "saved / theory min"] == pytest.approx(1.5)
    tf = m.loc["tensorflow function · cpu"]
    assert tf["cases"] == 0 and math.isnan(tf["median M"]) and "not exposed" in tf["memory_method"]


def test_case_table_has_m_fraction_of_peak_and_throttling(built):
    t = built.cases.set_index(["case", "series"])
    row = t.loc[(case_id(256, 256, 8), "torch eager · cuda:0")]
    assert row["M"] == pytest.approx(3.0) and row["M theory"] == pytest.approx(3.4)
    assert row["saved bytes"] == theory_saved(256, 256, 8)
    assert row["gradient peak fraction"] == pytest.approx(0.7)
    assert row["throttled"] == "hw_slowdown at end"
    assert t.loc[(case_id(256, 256, 8), "torch eager · cpu"), "throttled"] == ""
    assert built.throttled["cases"] == 2 and built.throttled["of"] == 6


# The page -------------------------------------------------------------------


def test_the_memory_section_follows_the_figures(page):
    assert page.index('<section id="figures">') < page.index('<section id="memory">') \
        < page.index('<section id="cases">')
    section = page[page.index('<section id="memory">'):page.index('<section id="cases">')]
    assert section.count("<figure id=") == 2 and section.count('<svg class="figure"') >= 2
    ratio = figure_html(page, "memory-ratio")
    # One panel per swept parameter, with the fixed ones in its title.
    assert "mlp_regression: M against depth" in ratio and "mlp_regression: M against batch" in ratio
    assert "(batch=256, width=256)" in ratio and "M against width" not in ratio
    assert "theory (theory_memory_ratio)" in ratio
    saved = figure_html(page, "memory-saved")
    assert "measured = theory" in saved
    # The per-series table: torch's median M 1.5 with theory 1.6; TensorFlow says why it has none.
    table = section[section.index("<table>"):]
    torch = (r'torch eager · cpu</td><td class="n">6</td><td class="n"><strong>1\.50</strong>'
             r'</td>\s*<td class="n">1\.60</td><td class="n">1\.25 – 3\.00</td>')
    assert re.search(torch, table), table[:800]
    assert "saved: not exposed by TensorFlow" in table


def test_the_verdict_carries_the_memory_and_peak_sentences(page):
    verdict = page[page.index('<section id="verdict">'):page.index('<section id="figures">')]
    assert "The gradient needs 3.0× the forward pass&#39;s memory at batch=256,width=256,depth=8" in verdict
    assert "75 % of this device&#39;s float32 matmul peak (150 of 200 GFLOP/s)" in verdict


def test_throttled_cases_are_flagged(page):
    verdict = page[page.index('<section id="verdict">'):page.index('<section id="figures">')]
    assert ("2 of 6 GPU cases ran while the GPU throttled (it slowed its clocks: power cap 120 ms; "
            "hw_slowdown at end). Their times may be slower than the GPU can run; ⚠ marks them in the "
            '<a href="#cases">per-case table</a>.</p>') in verdict
    assert "<th>median R</th>" in verdict and "Median R per suite" in verdict  # the rest still follows
    cases = page[page.index('<section id="cases">'):page.index('<section id="not-measured">')]
    marks = re.findall(r'<span class="warn" title="([^"]*)">⚠</span>', cases)
    assert sorted(marks) == ["the GPU throttled during this case: hw_slowdown at end",
                             "the GPU throttled during this case: power cap 120 ms"]


def test_the_run_summary_shows_the_cache_policy(page):
    runs = page[page.index('<section id="runs">'):page.index('<section id="method">')]
    assert re.search(r"<th>cache policy \(l2\)</th><td>flush: a buffer larger than the last-level", runs)
    assert "Cache policy (l2): flush" in runs


def test_results_without_memory_say_so_once():
    df = pd.DataFrame([r.to_dict() for r in records()])  # written before memory columns existed
    for col in ("saved_bytes", "peak_bytes", "memory_ratio", "theory_memory_ratio", "l2", "throttled"):
        df = df.drop(columns=col)
    d = report_data.build(df)
    assert all(v["memory_sentence"] == "" and v["peak_sentence"] == "" for v in d.verdicts)
    assert d.memory.empty and d.throttled["cases"] == 0
    html = report.render(df, [])
    section = html[html.index('<section id="memory">'):html.index('<section id="cases">')]
    assert "No memory was measured" in section and "<svg" not in section
    assert "throttled" not in html[html.index('<section id="verdict">'):html.index('<section id="figures">')]
    assert "Cache policy (l2): warm" in html
    verdict = html[html.index('<section id="verdict">'):html.index('<section id="figures">')]
    assert "<th>median R</th>" in verdict and "Median R per suite" in verdict
