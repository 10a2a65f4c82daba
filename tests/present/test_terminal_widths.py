"""Issue #11: ``bench run``'s summary and ``bench compare`` read whole at 80, 100 and 120 columns.

At every width, each row's framework, R (or speedup) with its CI, theory,
status and verdict must be on one line and whole: never "unreliable [3" or
"j…". ``bench run`` goes through the real entry point in-process with a
scripted worker (tests/fake_worker.py), its summary printed on a console of
the width; ``bench compare`` runs as a process with COLUMNS set.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import TEST_SUITES, bench_cli, needs
from fake_worker import Workers, cases_played, fake_framework, measure
from rich.console import Console

from bench import backends
from bench.cli import main as cli
from bench.core import fmt
from bench.core.records import PHASES, Record
from bench.execute import runner
from bench.present import console
from bench.present.compare_view import BRIEF, label
from bench.stats.gradient_cost import DEFAULT_MODES
from bench.store.writer import ResultsWriter

WIDTHS = (80, 100, 120)
FRAMEWORKS = (("torch", "eager"), ("tensorflow", "function"), ("jax", "jit"), ("torch", "compile"))


def lines_of(text: str, width: int) -> list[str]:
    lines = text.splitlines()
    too_long = [ln for ln in lines if len(ln) > width]
    assert not too_long, f"wider than {width}: {too_long}"
    return lines


def on_one_line(lines: list[str], *parts: str) -> bool:
    """Whether some line holds every part, each whole (a word cut or cropped fails)."""
    return any(all(p in ln for p in parts) for ln in lines)


# --- bench run --------------------------------------------------------------------------------

QUALITY = ("unreliable", "noisy", "good")  # the quick tiny suite has two cases


def scripted(link):
    """A worker whose cases come out with R, CIs, FLOP theory and every quality, in torch compile."""
    from bench.catalog.loader import load_file

    for i, (job, case) in enumerate(cases_played(link, load_file(TEST_SUITES / "tiny" / "tiny_mlp.py"))):
        quality = QUALITY[i % 3]
        why = "R CI half-width 31 % of R; drift 12 %" if quality != "good" else ""
        records = []
        for phase in PHASES:  # a worker sends one row per phase
            median, ratio = {"forward": (1.2345e-3, math.nan), "gradient": (3.0864e-2, 25.0)}.get(
                phase, (2e-2, math.nan))
            records.append(Record(
                run_id=job.run_id, machine=job.machine, suite=case.suite, case=case.id, params="{}",
                framework=job.framework, framework_version="0", mode=job.mode, device=job.device, phase=phase,
                status="ok", median_s=median, samples_s=(median,) * 5, threads=1, ratio=ratio,
                ratio_ci_low=ratio * 0.5, ratio_ci_high=ratio * 1.9, theory_ratio=2.5 if ratio == ratio else
                math.nan, quality=quality, quality_reason=why))
        measure(link, job, case, records=records)
    return None


@pytest.fixture
def run_at(monkeypatch, tmp_path):
    """``bench run`` in-process with the scripted worker; returns its stdout at a width."""
    from bench.catalog.loader import load_file

    tiny = load_file(TEST_SUITES / "tiny" / "tiny_mlp.py")
    monkeypatch.setattr(backends, "get", lambda name: fake_framework(tiny.module.reference))

    def run(width: int) -> str:
        monkeypatch.setattr(runner, "start_worker", Workers(scripted))
        buf = io.StringIO()
        monkeypatch.setattr(console, "out", console.SafeConsole(file=buf, width=width, color_system=None))
        code = cli.main(["run", "--framework", "torch", "--suites", str(TEST_SUITES / "tiny"), "--quick",
                         "--machine", "m", "--results", str(tmp_path / f"r{width}"), "--no-report",
                         "--timeout", "10"])
        assert code == 0
        return buf.getvalue()

    return run


@pytest.mark.parametrize("width", WIDTHS)
def test_bench_run_summary_is_whole_at(run_at, width):
    lines = lines_of(run_at(width), width)
    rows = [ln for ln in lines if re.match(r"([\d,]+ +)?torch ", ln) and "·" not in ln]
    assert len(rows) >= 2, lines
    status = r"(ok|noisy \[\d+\]|unreliable \[\d+\])$"
    for ln in rows:  # framework, R [CI], theory and status, whole, on the row's line
        assert re.search(r"torch .*25\.00 \[12\.50, 47\.50\] +2\.50 +" + status, ln), ln
    assert on_one_line(lines, "unreliable [") and on_one_line(lines, "noisy [")
    assert "the gradient costs 25.0× the forward pass" in " ".join(" ".join(lines).split())


def test_bench_run_format_json_is_one_document_on_stdout(monkeypatch, tmp_path, capsys):
    """A script reads `bench run --format json`: stdout parses, numbers are numbers, and the
    results: line went to stderr."""
    from bench.catalog.loader import load_file

    tiny = load_file(TEST_SUITES / "tiny" / "tiny_mlp.py")
    monkeypatch.setattr(backends, "get", lambda name: fake_framework(tiny.module.reference))
    monkeypatch.setattr(runner, "start_worker", Workers(scripted))
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(console, "out", console.SafeConsole(file=out, width=80, color_system=None))
    monkeypatch.setattr(console, "err", console.SafeConsole(file=err, width=80, color_system=None))
    code = cli.main(["run", "--framework", "torch", "--suites", str(TEST_SUITES / "tiny"), "--quick",
                     "--machine", "m", "--results", str(tmp_path), "--no-report", "--timeout", "10",
                     "--format", "json"])
    assert code == 0
    doc = json.loads(out.getvalue())
    rows = [row for row in doc["cases"] if row.get("framework") == "torch"]
    assert rows and all(row["R"] == 25.0 and row["R_low"] == 12.5 for row in rows), rows
    assert "results: " in err.getvalue() and "results: " not in out.getvalue()


# --- bench run: the summary of a GPU run (two devices, long statuses) -------------------------


def gpu_records() -> list[Record]:
    out = []
    i = 0
    for device in ("cpu", "cuda"):
        for fw, mode in FRAMEWORKS:
            for batch in (64, 1024, 16384):
                i += 1
                q = "unreliable" if i % 3 == 0 else ("noisy" if i % 4 == 0 else "good")
                kw = dict(run_id="r", machine="m", params="{}", framework_version="1", status="ok",
                          suite="mlp_regression", case=f"batch={batch},width=512,depth=2", framework=fw,
                          mode=mode, device=device, quality=q, quality_reason="R CI half-width 31 %")
                out.append(Record(phase="forward", median_s=1.234e-4 * batch, **kw))
                out.append(Record(phase="gradient", median_s=3.1e-4 * batch, ratio=12.51, ratio_ci_low=2.41,
                                  ratio_ci_high=22.62, theory_ratio=2.5, **kw))
    return out


@pytest.mark.parametrize("width", WIDTHS)
def test_a_gpu_run_summary_keeps_framework_r_theory_and_status_whole_at(width):
    """Seen on a GPU run at 80 columns: "unreliable [3" and "unreliabl", frameworks cut to "j…"."""
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(console.summary(gpu_records()))
    lines = lines_of(buf.getvalue(), width)
    words = {"good": "ok", "noisy": "noisy [", "unreliable": "unreliable ["}
    for r in gpu_records():
        name = r.framework if r.mode == DEFAULT_MODES[r.framework] else f"{r.framework} {r.mode}"
        assert on_one_line(lines, f"{name} ", "12.51 [2.41, 22.62]", "2.50", words[r.quality]), r
    notes = [int(n) for ln in lines for n in re.findall(r"(?:noisy|unreliable) \[(\d+)\]$", ln)]
    flagged = sum(r.quality != "good" for r in gpu_records() if r.phase == "gradient")
    assert notes == list(range(1, flagged + 1))  # every marker whole, in order
    assert on_one_line(lines, "mlp_regression · cuda: forward vs gradient")


# --- bench compare ----------------------------------------------------------------------------

CASES = {"mlp_regression": ("batch=64,width=512,depth=2", "batch=1024,width=512,depth=2"),
         "linear_regression": ("batch=64,features=256", "batch=16384,features=256")}
# (suite, case index, framework, mode): how many times slower NEW is.
CHANGES = {("mlp_regression", 1, "jax", "jit"): 500.0, ("linear_regression", 0, "torch", "eager"): 1 / 3.2,
           ("mlp_regression", 0, "tensorflow", "function"): 1.2}


def write_side(path: Path, machine: str, changed: bool, seed: int, processor: str) -> Path:
    rng = np.random.default_rng(seed)
    records = []
    for suite, cases in CASES.items():
        for ci, case in enumerate(cases):
            for fw, mode in FRAMEWORKS:
                k = CHANGES.get((suite, ci, fw, mode), 1.0) if changed else 1.0
                f = k * 1e-3 * (1 + ci) * rng.lognormal(0.0, 0.02, size=20)
                g = 2.5 * f * rng.lognormal(0.0, 0.01, size=20)
                for phase, s in (("forward", f), ("gradient", g)):
                    records.append(Record(
                        run_id=path.stem, machine=machine, suite=suite, case=case, params="{}", framework=fw,
                        framework_version="0", mode=mode, device="cpu", phase=phase, status="ok",
                        median_s=float(np.median(s)), samples_s=tuple(float(x) for x in s), threads=2))
    w = ResultsWriter(path, {"run_id": path.stem, "machine": machine, "fingerprint": {"processor": processor},
                             "settings": {"threads": 2}})
    w.append(records)
    w.close()
    return path


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    write_side(root / "a" / "r1.parquet", "a", False, 0, "Intel(R) Xeon(R) Platinum 8480C")
    write_side(root / "b" / "r2.parquet", "b", True, 1, "AMD EPYC 9654 96-Core Processor")
    doc = json.loads(bench_cli("compare", str(root / "a"), str(root / "b"), "--format", "json").stdout)
    return root, doc


@pytest.mark.parametrize("width", WIDTHS)
def test_bench_compare_is_whole_at(two_machines, width):
    root, doc = two_machines
    proc = bench_cli("compare", str(root / "a"), str(root / "b"), env={"COLUMNS": str(width)})
    assert proc.returncode == 0, proc.stderr
    lines = lines_of(proc.stdout, width)
    assert len(doc["cases"]) == 32
    for r in doc["cases"]:
        said = r["verdict"] in ("faster", "slower")
        speed = fmt.speedup(r["speedup"], r["speedup_ci_low"], r["speedup_ci_high"], said)
        verdict = r["verdict"] if width >= 100 else BRIEF.get(r["verdict"], r["verdict"])
        assert on_one_line(lines, label(r) + " ", speed, verdict), (r, speed)
    for r in doc["R"]:
        assert on_one_line(lines, label(r) + " ", fmt.ratio(r["base_R"], r["base_R_low"], r["base_R_high"]),
                           fmt.ratio(r["new_R"], r["new_R_low"], r["new_R_high"]))
    # Labels agree with their numbers: the large changes in words, no "0.00", no trailing dot.
    assert re.search(r"\b4\d\d× slower \[4\d\d, 5\d\d\] +slower$", proc.stdout, re.MULTILINE), proc.stdout
    assert re.search(r"3\.\d× faster \[3\.\d, 3\.\d\] +faster$", proc.stdout, re.MULTILINE)
    assert "0.00 " not in proc.stdout and not re.search(r"\d\.(\s|$)", proc.stdout)
    assert proc.stdout.splitlines()[-1] == "faster: 2, no significant change: 26, slower: 4"


def test_compare_formats_carry_the_same_cases(two_machines):
    root, doc = two_machines
    assert {"base", "new", "differences", "cases", "geomean", "R", "calls"} <= set(doc)
    assert doc["calls"] == {"faster": 2, "no significant change": 26, "slower": 4}
    slow = [r for r in doc["cases"] if (r["framework"], r["case"]) == ("jax", "batch=1024,width=512,depth=2")]
    assert all(isinstance(r["speedup"], float) and 1 / 550 < r["speedup"] < 1 / 450 for r in slow)
    plain = bench_cli("compare", str(root / "a"), str(root / "b"), "--format", "plain").stdout
    assert not set(plain) & set("─│┃━") and plain.count("no significant change  ") + plain.count(
        "no significant change\n") >= 26
    md = bench_cli("compare", str(root / "a"), str(root / "b"), "--format", "markdown").stdout
    table = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert sum(ln.endswith("| slower |") for ln in table) == 4 and "|---|" in md


# --- a real run -------------------------------------------------------------------------------


@pytest.mark.slow  # a real torch run of the quick linear_regression cases: about 30 s
@needs("torch")
def test_a_real_quick_run_reads_whole_at_80_columns(tmp_path):
    proc = bench_cli("run", "--quick", "--suite", "linear_regression", "--framework", "torch",
                     "--machine", "m", "--results", str(tmp_path / "results"), "--no-report",
                     env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = lines_of(proc.stdout, 80)
    rows = [ln for ln in lines if re.match(r"([\d,]+ +)?torch +\d", ln)]
    assert len(rows) >= 2, proc.stdout
    for ln in rows:
        assert re.search(r"torch .*\d\.\d\d \[\d+\.\d\d, \d+\.\d\d\] +\d\.\d\d +(ok|noisy \[\d+\]|"
                         r"unreliable \[\d+\]|\w+)$", ln), ln
    assert on_one_line(lines, "torch eager · cpu: the gradient costs")
