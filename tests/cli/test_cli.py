"""The CLI through its real entry point: bad input, listing, a small run."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, TEST_SUITES, bench_cli, needs

import bench
from bench import store


def assert_user_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--device", "tpu"], ["unknown device 'tpu'", "cpu, cuda or cuda:N"]),
        (["--device", "cuda:x"], ["unknown device"]),
        (["--framework", "mxnet"], ["unknown framework 'mxnet'", "torch"]),
        (["--suite", "nope"], ["unknown suite 'nope'", "mlp_regression"]),
        (["--suites", "/no/such/dir"], ["does not exist"]),
        (["--threads", "0"], ["--threads 0"]),
        (["--threads", "100000"], ["--threads 100000"]),
        (["--budget", "-1"], ["--budget -1"]),
        (["--budget", "abc"], ["--budget", "invalid float"]),
        (["--machine", "a/b"], ["--machine"]),
        (["--frobnicate"], ["unrecognized arguments"]),
        (["--l2", "cold"], ["--l2", "invalid choice"]),
        (["--precision", "0"], ["--precision 0", "between 0 and 1"]),
        (["--precision", "2"], ["--precision 2"]),
        (["--max-time", "5"], ["--max-time caps --precision"]),
        (["--precision", "0.02", "--max-time", "-1"], ["--max-time -1"]),
        (["--processes", "0"], ["--processes 0"]),
        (["--case", "batch=8"], ["--case needs exactly one --suite"]),
        (["--suite", "mlp_regression", "--case", "batch=8,width=16"],
         ["--case batch=8,width=16", "takes exactly batch, depth, width"]),
        (["--suite", "mlp_regression", "--case", "batch=-8,width=16,depth=1"], ["NAME=INTEGER"]),
        (["--suite", "mlp_regression", "--case", "batch=8;width=16,depth=1"], ["NAME=INTEGER"]),
        (["--suite", "mlp_regression", "--case", "batch=8,batch=9,width=16,depth=1"],
         ["batch is given twice"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, words):
    proc = bench_cli("run", "--results", str(tmp_path / "results"), *args)
    assert_user_error(proc, *words)
    assert not (tmp_path / "results").exists()


def test_cuda_without_gpu_is_a_user_error(tmp_path):
    from bench.execute import machine

    if machine.has_nvidia_gpu():
        pytest.skip("this machine has a GPU")
    proc = bench_cli("run", "--device", "cuda", "--results", str(tmp_path / "r"))
    assert_user_error(proc, "no NVIDIA GPU")
    assert not (tmp_path / "r").exists()


def test_framework_not_installed_is_a_user_error(tmp_path, monkeypatch, capsys):
    from bench.backends import tensorflow
    from bench.cli import main as cli

    monkeypatch.setattr(tensorflow, "available", lambda: False)
    code = cli.main(["run", "--framework", "tensorflow", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "tensorflow is not installed" in err and "pip install" in err
    assert not (tmp_path / "r").exists()


def test_help_explains_each_command():
    top = bench_cli("--help")
    assert top.returncode == 0
    for command in ("run", "list", "env"):
        assert command in top.stdout
    run = bench_cli("run", "--help")
    for option in ("--device", "--framework", "--suite", "--quick", "--budget", "--threads",
                   "--allow-tf32", "--machine", "--timeout"):
        assert option in run.stdout


def test_python_m_bench_is_the_same_cli():
    proc = subprocess.run([sys.executable, "-m", "bench", "--version"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0
    assert bench.__version__ in proc.stdout


def test_list_shows_suites_cases_and_frameworks():
    proc = bench_cli("list")
    assert proc.returncode == 0, proc.stderr
    assert "mlp_regression" in proc.stdout
    assert "batch=64,width=128,depth=2" in proc.stdout  # a quick case
    for fw in ("torch", "tensorflow", "jax"):
        assert fw in proc.stdout


def test_list_reports_a_broken_suite_and_lists_the_others(tmp_path):
    (tmp_path / "broken.py").write_text("raise ImportError('boom')\n")
    (tmp_path / "mlp.py").write_text((ROOT / "suites" / "mlp_regression.py").read_text())
    proc = bench_cli("list", "--suites", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "mlp" in proc.stdout
    assert "broken" in proc.stderr and "boom" in proc.stderr


def test_import_bench_imports_no_framework():
    # Every module of bench (the framework modules included), and the whole parser.
    code = (
        "import importlib, pkgutil, sys, bench; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(bench.__path__, 'bench.') "
        " if not m.name.endswith('__main__')]; "
        "import bench.cli.main; bench.cli.main.build_parser(); "
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@needs("jax")
def test_run_writes_results_and_prints_summary(tmp_path):
    results = tmp_path / "results"
    proc = bench_cli(
        "run", "--framework", "jax", "--suites", str(TEST_SUITES / "tiny"), "--quick",
        "--budget", "0.05", "--machine", "testbox", "--results", str(results),
        "--reports", str(tmp_path / "reports"),
    )
    assert proc.returncode == 0, proc.stderr
    files = list((results / "testbox").glob("*.parquet"))
    assert len(files) == 1
    assert f"results: {files[0]}" in proc.stdout.replace("\n", "")
    report = tmp_path / "reports" / f"{files[0].stem}.html"
    assert report.exists() and "<svg" in report.read_text()
    assert "R [95% CI]" in proc.stdout

    df = bench.load(files[0])
    ok = df[df.status == "ok"]
    assert set(ok.phase) == {"forward", "gradient", "backward", "backward_split", "step"}
    assert set(df.case) == {"batch=8,width=16,depth=2", "batch=16,width=16,depth=2"}
    # The derived backward (gradient - forward) may come out <= 0 on a busy machine: quality flags it.
    assert (ok[ok.phase != "backward"].median_s > 0).all()
    grad = ok[ok.phase == "gradient"]
    assert (grad.ratio_ci_low <= grad.ratio).all() and (grad.ratio <= grad.ratio_ci_high).all()
    assert (grad.equiv_error < grad.equiv_tol).all()
    assert (df.machine == "testbox").all()
    timed = ok[ok.phase != "backward"]
    assert ((timed.flops_per_s - timed.flops / timed.median_s).abs() <= 1e-9 * timed.flops_per_s).all()
    for curve in ok[ok.phase == "step"].loss_curve:
        assert len(curve) == 20 and curve[-1] < curve[0]  # it learns from the shared start

    # Memory and peak, from the suite's theory and the worker's own measurements.
    assert (ok.saved_bytes >= ok.theory_saved_bytes).all() and (ok.theory_saved_bytes > 0).all()
    assert (grad.memory_ratio > 1).all() and (grad.theory_memory_ratio > 1).all()
    assert (ok.peak_flops_per_s > 0).all() and (ok.l2 == "warm").all()
    assert ok.memory_method.str.contains("jax.vjp residuals").all()

    meta = store.read_metadata(files[0])
    assert meta["finished"] is not None
    assert meta["frameworks"]["jax:jit@cpu"]["version"]
    assert meta["frameworks"]["jax:jit@cpu"]["peak_flops_per_s"] > 0
    assert meta["settings"]["budget_s"] == 0.05


@pytest.mark.slow
def test_run_of_given_cases_with_a_flushed_cache(tmp_path):
    results = tmp_path / "results"
    proc = bench_cli(
        "run", "--framework", "torch", "--suite", "mlp_regression", "--case", "batch=4,width=8,depth=1",
        "--case", "batch=4,width=8,depth=3", "--l2", "flush", "--budget", "0.05", "--machine", "m",
        "--results", str(results), "--no-report",
    )
    assert proc.returncode == 0, proc.stderr
    df = bench.load(results / "m")
    assert set(df.case) == {"batch=4,width=8,depth=1", "batch=4,width=8,depth=3"}
    assert (df.l2 == "flush").all() and (df.status != "failed").all()
    grad = df[df.phase == "gradient"].set_index("case")
    # torch keeps exactly what the suite's theory counts, and deeper keeps more.
    assert (grad.saved_bytes == grad.theory_saved_bytes).all()
    assert grad.saved_bytes["batch=4,width=8,depth=3"] > grad.saved_bytes["batch=4,width=8,depth=1"]


@pytest.mark.parametrize(
    ("mode", "words"),
    [("nope", ["unknown mode 'nope'", "torch: eager, compile"]),
     ("torch:jit", ["torch modes are eager, compile"]),
     ("mxnet:jit", ["'mxnet' is not among the frameworks run"])],
)
def test_bad_mode_is_a_user_error(tmp_path, mode, words):
    proc = bench_cli("run", "--mode", mode, "--results", str(tmp_path / "r"))
    assert_user_error(proc, *words)
    assert not (tmp_path / "r").exists()


def test_mode_selection():
    from bench.cli.run import parse_modes

    names = ["torch", "tensorflow", "jax"]
    assert parse_modes("default", names) == [("torch", "eager"), ("tensorflow", "function"),
                                             ("jax", "jit")]
    assert parse_modes("eager", names) == [("torch", "eager"), ("tensorflow", "eager")]
    assert parse_modes("xla,torch:compile", names) == [("torch", "compile"), ("tensorflow", "xla")]
    assert len(parse_modes("all", names)) == 6
    assert parse_modes("all", ["jax"]) == [("jax", "jit")]


@needs("torch")
def test_a_broken_memory_theory_costs_the_case_nothing_but_its_theory(tmp_path):
    results = tmp_path / "results"
    proc = bench_cli("run", "--framework", "torch", "--suites", str(TEST_SUITES / "bad_memory"), "--quick",
                     "--budget", "0.05", "--machine", "m", "--results", str(results), "--no-report")
    assert proc.returncode == 0, proc.stderr
    df = bench.load(results / "m")
    timed = df[df.phase != "backward_split"]
    assert (timed.status == "ok").all() and (timed[timed.phase != "backward"].median_s > 0).all()
    assert df.theory_saved_bytes.isna().all()
    assert (df.saved_bytes > 0).all()  # measured all the same
    methods = df.groupby("case").memory_method.first()
    assert "ZeroDivisionError: no theory here" in methods["batch=8,width=16,depth=2"]
    assert "returned dict, not bench.Memory" in methods["batch=16,width=16,depth=2"]


@needs("torch")
def test_a_busy_process_during_the_run_flags_the_rows(tmp_path):
    import subprocess
    import sys

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # one core, until killed
    try:
        proc = bench_cli("run", "--framework", "torch", "--suites", str(TEST_SUITES / "tiny"), "--quick",
                         "--budget", "0.2", "--machine", "m", "--results", str(tmp_path), "--no-report",
                         timeout=120)
    finally:
        hog.kill()
        hog.wait()
    assert proc.returncode == 0, proc.stderr
    ok = bench.load(tmp_path / "m").query("status == 'ok'")
    # The hog takes most of one CPU in every round.
    assert (ok.interference > 0.5).all(), ok.interference.tolist()
    assert ok.quality.isin(["noisy", "unreliable"]).all()
    assert ok.quality_reason.str.contains("other processes used").all()
    assert "measured rows are noisy" in proc.stderr and "other processes used" in proc.stderr
    assert "unreliable" in proc.stdout or "noisy" in proc.stdout  # marked in the summary table


def test_list_cases_prints_every_case_and_marks_the_quick_ones():
    from bench.catalog import discovery

    proc = bench_cli("list", "--cases")
    assert proc.returncode == 0, proc.stderr
    suites, _ = discovery.load_dir(discovery.default_dir())
    mlp = next(s for s in suites if s.name == "mlp_regression")
    assert f"mlp_regression: {len(mlp.cases())} cases" in proc.stdout
    lines = proc.stdout.splitlines()
    for case in mlp.cases():
        assert any(line.strip().lstrip("* ").startswith(case.id) for line in lines), case.id
    for case in mlp.cases(quick=True):
        assert any(line.strip().startswith(f"* {case.id}") for line in lines), case.id


@needs("jax")
def test_env_json_holds_the_machine_and_what_each_framework_sees_not_protocol_events(monkeypatch, capsys):
    import json

    from bench.backends import tensorflow, torch
    from bench.cli import main as cli

    # One framework started is enough (and fast); the others read as not installed.
    monkeypatch.setattr(torch, "available", lambda: False)
    monkeypatch.setattr(tensorflow, "available", lambda: False)
    assert cli.main(["env", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"machine", "fingerprint", "frameworks"}
    assert set(doc["frameworks"]["jax"]) == {"version", "devices", "cpus", "settings"}
    assert "cpu" in doc["frameworks"]["jax"]["devices"]
    assert doc["frameworks"]["torch"] == {"installed": False, "hint": "pip install 'bench[torch]'"}
    assert not any("event" in info for info in doc["frameworks"].values())
