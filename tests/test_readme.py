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

    from bench.discovery import load_file

    (tmp_path / "softsign.py").write_text(tutorial_code())
    suite = load_file(tmp_path / "softsign.py")
    for case in suite.cases():
        prob = suite.module.problem(case.as_dict(), 0)
        params = [torch.tensor(p, requires_grad=True) for p in prob.params]
        X, y = torch.tensor(prob.X), torch.tensor(prob.y)
        with FlopCounterMode(display=False) as counter:
            torch.autograd.grad(suite.module.loss_torch(params, X, y), params)
        assert counter.get_total_flops() == suite.module.flops(case.as_dict()).gradient
