"""`bench report`: the HTML page from a small hand-made results file, and its CLI."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, ROOT, bench_cli

from bench.core.records import Record
from bench.present import report, tables
from bench.present.report import data as report_data
from bench.present.report.figures import FIGURES
from bench.store.writer import ResultsWriter

RUN_ID = "20260102T030405Z-beef"
EVIL_MACHINE = "<script>alert(1)</script>"
EVIL_REASON = "the loss differs: <b>bold</b> & more"
# (suite, case, forward FLOPs, theory R)
CASES = [
    ("mlp_regression", "batch=64,width=128,depth=2", 4.2e6, 2.5),
    ("mlp_regression", "batch=256,width=256,depth=3", 1.0e8, 2.67),
    ("mlp_regression", "batch=1024,width=512,depth=2", 1.07e9, 2.5),
    ("linear_regression", "batch=1024,features=256", 5.2e5, 2.0),
    ("linear_regression", "batch=4096,features=1024", 8.4e6, 2.0),
]
# series -> R per case (in CASES order) and GFLOP/s of the forward pass
SERIES = {
    ("torch", "eager", "cpu"): ([2.0, 2.1, 2.2, 2.1, 2.1], 20.0),
    ("jax", "jit", "cpu"): ([2.4, 2.5, 2.6, 1.8, 1.9], 30.0),
    ("torch", "eager", "cuda:0"): ([3.0, 2.9, 2.8, 3.2, 3.1], 400.0),
}
FAILED = ("jax", "jit", "cpu", 4)  # this series' 5th case failed the equivalence check


def records(machine: str = EVIL_MACHINE, reason: str = EVIL_REASON,
            devices: tuple[str, ...] = ("cpu", "cuda:0")) -> list[Record]:
    out = []
    for (fw, mode, device), (ratios, gflops) in SERIES.items():
        if device not in devices:
            continue
        for i, ((suite, case, fwd_flops, theory), r) in enumerate(zip(CASES, ratios, strict=True)):
            t_fwd = 2e-5 + fwd_flops / (gflops * 1e9)
            base = dict(run_id=RUN_ID, machine=machine, suite=suite, case=case,
                        params=json.dumps(dict(kv.split("=") for kv in case.split(","))),
                        framework=fw, framework_version="1.0", mode=mode, device=device, threads=2)
            if (fw, mode, device, i) == FAILED:
                for phase in ("forward", "gradient", "backward", "step"):
                    out.append(Record(**base, phase=phase, status="failed", reason=reason))
                continue
            times = {"forward": t_fwd, "gradient": t_fwd * r, "backward": t_fwd * (r - 1),
                     "step": t_fwd * r * 1.05}
            flops = {"forward": fwd_flops, "gradient": fwd_flops * theory,
                     "backward": fwd_flops * (theory - 1), "step": fwd_flops * theory + 1000}
            for phase, t in times.items():
                ratio = t / t_fwd
                out.append(Record(
                    **base, phase=phase, status="ok", median_s=t, iqr_s=t / 20, min_s=t * 0.95,
                    ci_low_s=t * 0.98, ci_high_s=t * 1.02, rounds=20, calls_per_block=5,
                    samples_s=(t * 0.99, t, t * 1.01), first_call_s=t * 30 + (0.3 if mode == "jit" else 0),
                    ratio=ratio, ratio_ci_low=ratio - 0.05, ratio_ci_high=ratio + 0.05,
                    flops=flops[phase], flops_per_s=flops[phase] / t, theory_ratio=flops[phase] / fwd_flops,
                    equiv_error=1e-7, equiv_tol=1e-5,
                    loss_curve=tuple(1.0 - 0.01 * k for k in range(20)) if phase == "step" else ()))
    return out


def write_results(folder: Path, **kw) -> Path:
    path = folder / "box" / f"{RUN_ID}.parquet"
    writer = ResultsWriter(path, {
        "run_id": RUN_ID, "machine": kw.get("machine", EVIL_MACHINE),
        "fingerprint": {"cpu": "Test CPU <i>x</i>", "cores_logical": 2, "gpus": [{"name": "Test GPU"}]},
        "settings": {"threads": 2, "allow_tf32": False, "budget_s": 0.5, "quick": True},
        "devices": list(kw.get("devices", ("cpu", "cuda:0"))),
        "suites": ["mlp_regression", "linear_regression"],
        "frameworks": {"torch:eager@cpu": {"version": "1.0", "device_name": "cpu", "cpus": [0, 1],
                                           "settings": {"threads": 2}}},
    })
    writer.append(records(**kw))
    writer.close(interrupted=False)
    return path


@pytest.fixture(scope="module")
def results_file(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def page(results_file) -> str:
    df, metadata = report.read([results_file])
    return report.render(df, metadata)


def figure_html(page: str, fig_id: str) -> str:
    m = re.search(rf'<figure id="{fig_id}">(.*?)</figure>', page, flags=re.S)
    assert m, f"figure {fig_id} missing"
    return m.group(1)


def drawn_figures(page: str) -> int:
    """How many figures have at least one panel (an inline SVG)."""
    bodies = re.findall(r"<figure id=.*?</figure>", page, flags=re.S)
    return sum('<svg class="figure"' in body for body in bodies)


def test_the_verdict_comes_first_with_r_and_its_ci(page):
    verdict = page.index('<section id="verdict">')
    assert verdict < page.index('<section id="figures">') < page.index('<section id="cases">')
    # torch eager on the CPU: R = 2.0, 2.1, 2.2, 2.1, 2.1 -> median 2.1
    # The terminal's verdict line, word for word (bench.stats.gradient_cost).
    m = re.search(r"<strong>torch eager · cpu: the gradient costs 2\.1× the forward pass "
                  r"\[(\d\.\d), (\d\.\d)\] \(5 cases\); FLOP theory 2\.5×</strong>", page)
    assert m, page[verdict:verdict + 3000]
    assert 2.0 <= float(m.group(1)) <= 2.1 <= float(m.group(2)) <= 2.2
    assert "Within the cheap-gradient bound of about 4× on every case." in page
    assert "bootstrap" in page  # the page says how the interval over cases is made


def test_verdict_statistics(results_file):
    df, _ = report.read([results_file])
    d = report_data.build(df)
    by = {(v["framework"], v["device"]): v for v in d.verdicts}
    torch_cpu = by[("torch", "cpu")]
    assert torch_cpu["n"] == 5 and torch_cpu["median"] == pytest.approx(2.1)
    assert torch_cpu["ci_low"] <= 2.1 <= torch_cpu["ci_high"]
    assert torch_cpu["theory"] == pytest.approx(2.5)
    assert by[("jax", "cpu")]["n"] == 4  # the failed case is left out
    assert all(v["within_bound"] for v in d.verdicts)
    assert d.headline.startswith("Yes")


def test_every_figure_is_inline_svg(page):
    assert len(FIGURES) == 8
    for fig_id, *_ in FIGURES:
        body = figure_html(page, fig_id)
        assert re.search(r"<svg [^>]*viewBox=", body), f"figure {fig_id} has no inline svg"
        assert "Not drawn" not in body
    assert drawn_figures(page) == len(FIGURES)
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_one_device_skips_the_device_figure_with_a_note(tmp_path):
    path = write_results(tmp_path, devices=("cpu",))
    df, metadata = report.read([path])
    html = report.render(df, metadata)
    body = figure_html(html, "devices")
    assert "<svg" not in body and "Only one device was measured" in body
    assert drawn_figures(html) == len(FIGURES) - 1


def test_values_from_the_results_file_are_escaped(page):
    assert EVIL_MACHINE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt; &amp; more" in page
    assert "<i>x</i>" not in page  # from the fingerprint
    assert page.count("<script") == 1  # the page's own sorter, nothing else


def test_rows_not_measured_are_listed_with_their_reason(page):
    section = page[page.index('<section id="not-measured">'):page.index('<section id="runs">')]
    assert "failed" in section and "&lt;b&gt;bold&lt;/b&gt;" in section
    assert "batch=4096,features=1024" in section


def test_nothing_is_loaded_from_the_network(page):
    for m in re.finditer(r"https?://", page):
        before = page[max(0, m.start() - 20):m.start()]
        assert re.search(r'xmlns(:\w+)?="$', before), page[m.start() - 80:m.end() + 80]
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page)
    assert not re.search(r"\bsrc\s*=", page)
    assert "@import" not in page and "url(http" not in page and "//cdn" not in page


def test_the_page_is_readable_on_a_narrow_screen(page):
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "max-width: 1100px" in page
    assert "svg.figure { display: block; width: 100%; max-width: 44rem; height: auto; }" in page
    assert not re.search(r'<svg class="figure"[^>]* width="', page)  # the width comes from CSS


def test_downloads_are_embedded(page):
    hrefs = dict(re.findall(r'<a href="(data:[^"]+)" download="([^"]+)"', page))
    files = {name: base64.b64decode(uri.split("base64,", 1)[1]).decode() for uri, name in hrefs.items()}
    assert set(files) == {"bench-cases.csv", "bench-cases.md", "bench-rows.csv"}
    assert files["bench-cases.csv"].startswith("suite,case,series,")
    assert files["bench-cases.md"].startswith("| suite | case | series |")
    assert "samples_s" not in files["bench-rows.csv"].splitlines()[0]
    assert len(files["bench-rows.csv"].splitlines()) == 1 + len(records())


def test_markdown_table_escapes_pipes():
    import pandas as pd

    md = tables.markdown_table(pd.DataFrame({"a": ["x|y", "z"], "b": [1.5, float("nan")]}))
    assert md.splitlines() == ["| a | b |", "|---|---:|", "| x\\|y | 1.5 |", "| z |  |"]


def test_all_rows_failed_still_renders(tmp_path):
    import pandas as pd

    df = pd.DataFrame([r.to_dict() for r in records()])
    df["status"], df["reason"] = "error", "boom"
    html = report.render(df, [])
    assert "No gradient was measured" in html
    assert html.count("Not drawn:") == len(FIGURES)


def test_import_bench_imports_no_plotting():
    code = ("import sys, bench, bench.cli.main; bench.cli.main.build_parser(); "
            "bad = [m for m in ('matplotlib', 'jinja2', 'pyarrow', 'pandas', 'scipy') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_cli_writes_the_report(results_file, tmp_path):
    out = tmp_path / "out.html"
    proc = bench_cli("report", str(results_file), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert out.read_text().startswith("<!doctype html>")


def test_cli_finds_a_run_by_id_and_writes_to_reports(results_file, tmp_path):
    proc = bench_cli("report", RUN_ID[:18], "--results", str(results_file.parents[1]), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "reports" / f"{RUN_ID}.html").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["/no/such/file.parquet"], ["no such results file"]),
        (["20990101T000000Z-0000", "--results", "{tmp}"], ["unknown run id"]),
        (["--results", "{tmp}/nothing"], ["no results under"]),
        (["{tmp}/bad.parquet"], ["not a readable Parquet file"]),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, words):
    (tmp_path / "bad.parquet").write_text("not parquet\n")
    proc = bench_cli("report", *[a.format(tmp=tmp_path) for a in args], "-o", str(tmp_path / "x.html"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / "x.html").exists()


@pytest.mark.slow
def test_render_time_for_500_rows():
    """scripts/time_report.py renders a synthetic 500-row run; the issue asks for 10 s on the
    2-core development machine. The bound here is generous: CI machines are shared."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "time_report.py"), "--rows", "500"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)
    rows = int(re.search(r"rows: (\d+)", proc.stdout).group(1))
    seconds = float(re.search(r"render: ([\d.]+) s", proc.stdout).group(1))
    assert rows >= 500
    assert seconds < 30, proc.stdout


def test_noisy_and_unreliable_rows_get_a_banner_and_marks():
    h200 = DATA / "h200" / "gpu"
    df, metadata = report.read([h200])
    quiet = report.render(df.assign(quality="good", quality_reason=""), metadata)
    assert "measured rows are noisy" not in quiet
    flagged = df.assign(quality="good", quality_reason="")
    hit = (flagged.case == "batch=4096,width=1024,depth=1") & (flagged.framework == "torch")
    flagged.loc[hit, "quality"] = "unreliable"
    flagged.loc[hit, "quality_reason"] = "R CI half-width 12 %; IQR is 60 % of the median"
    html = report.render(flagged, metadata)
    n = int(hit.sum())
    assert f"{n} of {len(df[df.status == 'ok'])} measured rows are noisy (0) or unreliable ({n})" in html
    assert "main reason: R CI half-width 12 %" in html
    assert 'title="unreliable: R CI half-width 12 %; IQR is 60 % of the median">‼</span>' in html
