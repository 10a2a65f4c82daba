"""The README's tutorial suite works as the README says."""

from __future__ import annotations

import re

from conftest import ROOT, bench_cli, needs

import bench


def tutorial_code() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Add your own model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the tutorial has one suite file"
    return blocks[0]


@needs("torch", "jax")
def test_tutorial_suite_runs_in_every_framework(tmp_path):
    folder = tmp_path / "my_suites"
    folder.mkdir()
    (folder / "softsign.py").write_text(tutorial_code())
    assert bench_cli("list", "--suites", str(folder)).returncode == 0

    proc = bench_cli("run", "--suites", str(folder), "--quick", "--framework", "torch,jax", "--no-report",
                     "--budget", "0.05", "--machine", "m", "--results", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    df = bench.load(tmp_path / "r")
    measured = df[df.phase != "backward_split"]
    assert (measured.status == "ok").all()
    assert (df.equiv_error < 1e-5).all()


@needs("torch")
def test_tutorial_flops_match_torch_flop_counter(tmp_path):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from bench.catalog.loader import load_file

    (tmp_path / "softsign.py").write_text(tutorial_code())
    suite = load_file(tmp_path / "softsign.py")
    for case in suite.cases():
        prob = suite.module.problem(case.as_dict(), 0)
        params = [torch.tensor(p, requires_grad=True) for p in prob.params]
        X, y = torch.tensor(prob.X), torch.tensor(prob.y)
        with FlopCounterMode(display=False) as counter:
            torch.autograd.grad(suite.module.loss_torch(params, X, y), params)
        assert counter.get_total_flops() == suite.module.flops(case.as_dict()).gradient


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_quickstart_is_two_commands():
    blocks = re.findall(r"```bash\n(.*?)```", section("Quickstart"), flags=re.S)
    assert len(blocks) == 2, blocks
    for block in blocks:
        assert len(block.strip().splitlines()) == 1, block


def results_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", section("Usage"), flags=re.S)
    found = [b for b in blocks if "bench.load(" in b]
    assert len(found) == 1
    return found[0]


def write_rows(root, run_id: str, machine: str, rows: list[tuple[str, str, str, str, float]]) -> None:
    """A stored run of gradient rows (suite, case, mode, device, R); the cases' ids are shared."""
    from bench import store
    from bench.core.records import Record

    writer = store.new_run(root, machine, run_id, {"run_id": run_id, "machine": machine})
    writer.append([Record(run_id=run_id, machine=machine, suite=suite, case=case, params='{"batch": 8}',
                          framework="torch", framework_version="2", mode=mode, device=device,
                          phase="gradient", status="ok", median_s=1e-3, samples_s=(1e-3, 1e-3),
                          process_rounds=(2,), rounds=2, ratio=r, theory_ratio=2.5)
                   for suite, case, mode, device, r in rows])
    writer.close()


def test_the_results_snippet_keeps_suites_modes_devices_and_runs_apart(tmp_path, monkeypatch):
    code = results_snippet()
    # Two suites sharing a case id, two modes, two devices and two runs: 16 different R.
    rows = [(s, "batch=8", m, d, 2.0 + i) for i, (s, m, d) in enumerate(
        (s, m, d) for s in ("custom_regression", "mlp_regression") for m in ("eager", "compile")
        for d in ("cpu", "cuda:0"))]
    write_rows(tmp_path / "results", "20260101T000000Z-aaaa", "box", rows)
    write_rows(tmp_path / "results", "20260102T000000Z-bbbb", "box", [(*r[:4], r[4] + 10) for r in rows])
    monkeypatch.chdir(tmp_path)
    printed = []
    exec(code, {"print": printed.append, "__name__": "readme"})
    per_framework, per_case = printed[-2:]
    # The summary keeps modes and devices apart: 4 groups of 4 rows, not one of 16.
    assert len(per_framework) == 4 and (per_framework["count"] == 4).all()
    # One row per case of each suite, mode, device and run: nothing merged, nothing duplicated.
    assert per_case.index.is_unique and len(per_case) == 16
    assert sorted(per_case.ratio) == sorted([r[4] for r in rows] + [r[4] + 10 for r in rows])
