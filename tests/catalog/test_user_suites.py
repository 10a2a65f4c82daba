"""Suites from any folder: broken ones are reported in one line and skipped, the rest run."""

from __future__ import annotations

import textwrap

from conftest import bench_cli, needs
from factories import SUITE_HEADER

import bench

SUITES = {
    "good": "",
    "broken_import": "raise RuntimeError('boom at import')",
    "bad_grid": "GRID = 'every size'",
    "wrong_shapes": textwrap.dedent("""
        def reference(prob):
            loss, grads = _mlp.reference(prob)
            return loss, [g.T for g in grads]  # transposed: W0 is 16x16 but W1 is 16x1
    """),
    "raises": textwrap.dedent("""
        def loss_jax(params, X, y):
            raise ValueError("this model is not finished")
    """),
}


@needs("jax")
def test_broken_user_suites_are_reported_and_the_others_run(tmp_path):
    folder = tmp_path / "my_suites"
    folder.mkdir()
    for name, body in SUITES.items():
        (folder / f"{name}.py").write_text(SUITE_HEADER + body)
    results = tmp_path / "results"

    proc = bench_cli("run", "--framework", "jax", "--suites", str(folder), "--quick", "--no-report",
                     "--budget", "0.05", "--machine", "m", "--results", str(results))

    assert proc.returncode == 1  # the run went through, but not every row measured
    assert "Traceback" not in proc.stderr
    import_line = [ln for ln in proc.stderr.splitlines() if "broken_import" in ln]
    grid_line = [ln for ln in proc.stderr.splitlines() if "bad_grid" in ln]
    assert len(import_line) == 1 and "boom at import" in import_line[0]
    assert len(grid_line) == 1 and "GRID must be" in grid_line[0]

    df = bench.load(results / "m")
    assert set(df.suite) == {"good", "wrong_shapes", "raises"}
    status = df.groupby("suite").status.agg(set).to_dict()
    assert status["good"] == {"ok"}
    assert status["wrong_shapes"] == {"failed"}
    assert status["raises"] == {"error"}
    reasons = df.groupby("suite").reason.first().to_dict()
    assert "gradient shapes" in reasons["wrong_shapes"]
    assert "ValueError: this model is not finished" in reasons["raises"]


def test_naming_a_broken_suite_is_a_user_error(tmp_path):
    (tmp_path / "broken.py").write_text(SUITE_HEADER + "raise RuntimeError('boom')")
    proc = bench_cli("run", "--suites", str(tmp_path), "--suite", "broken",
                     "--results", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "boom" in proc.stderr
    assert not (tmp_path / "r").exists()
