"""Rows and suite files that tests of several packages build: one place for each.

``process`` is one worker process's rows of a case, with statistics computed as a worker does;
``SUITE_HEADER`` starts a suite file that borrows the real MLP's pieces (a test then breaks one).
"""

from __future__ import annotations

from conftest import ROOT

from bench.core.records import PHASES, Record
from bench.stats import row_stats

BASE = dict(run_id="r", machine="m", suite="s", case="c", params="{}", framework="torch",
            framework_version="1", mode="eager", device="cpu")


def process(forward: list[float], gradient: list[float], status: str = "ok", **kw) -> list[Record]:
    """One process's rows of a case, statistics computed as a worker does."""
    rows = []
    step = [g * 1.05 for g in gradient]
    for phase in PHASES:
        if status != "ok":
            rows.append(Record(phase=phase, status=status, reason="boom", **BASE))
            continue
        if phase == "backward":
            numbers = row_stats.derived_backward(gradient, forward)
        else:
            samples = {"forward": forward, "gradient": gradient, "backward_split": [g - f for g, f in
                       zip(gradient, forward, strict=True)], "step": step}[phase]
            numbers = row_stats.measured(samples, forward)
        rows.append(Record(phase=phase, status="ok", flops=100.0, **numbers, **{**BASE, **kw}))
    return rows


# Each suite borrows the real MLP's pieces and breaks one thing.
SUITE_HEADER = f"""
from pathlib import Path
from bench.catalog.loader import load_file
_mlp = load_file(Path({str(ROOT / "suites" / "mlp_regression.py")!r})).module
DESCRIPTION = "test suite"
GRID = [{{"batch": 8, "width": 16, "depth": 2}}]
QUICK = GRID
problem, reference, flops = _mlp.problem, _mlp.reference, _mlp.flops
loss_torch, loss_tensorflow, loss_jax = _mlp.loss_torch, _mlp.loss_tensorflow, _mlp.loss_jax
"""
