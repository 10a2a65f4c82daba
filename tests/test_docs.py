"""The README and the docs/ site say what bench does, and their examples work.

The tutorial suite (docs/suites.md) runs in every framework, the README's
Quickstart stays two commands and its results snippet reads results as it
claims; every Python block compiles, every relative link points at a file,
the README stays short, and the mkdocs site builds with no warning.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, bench_cli, needs

import bench

DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 250


def pages() -> list[Path]:
    """The README and every page of the site."""
    return [README, *sorted(DOCS.glob("*.md"))]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def tutorial_code() -> str:
    blocks = python_blocks((DOCS / "suites.md").read_text())
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


def section(title: str, path: Path = README) -> str:
    text = path.read_text()
    assert f"\n## {title}\n" in text, f"{path.name} has no section '## {title}'"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_quickstart_is_two_commands():
    blocks = re.findall(r"```bash\n(.*?)```", section("Quickstart"), flags=re.S)
    assert len(blocks) == 2, blocks
    for block in blocks:
        assert len(block.strip().splitlines()) == 1, block


def results_snippet(path: Path = README, title: str = "Usage") -> str:
    found = [b for b in python_blocks(section(title, path)) if "bench.load(" in b]
    assert len(found) == 1
    return found[0]


def test_the_docs_show_the_readme_results_snippet():
    """docs/usage.md repeats the README's snippet: the test below runs it for both."""
    assert results_snippet(DOCS / "usage.md", "Results in Python") == results_snippet()


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


@pytest.mark.parametrize("path", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_python_block_compiles(path):
    for i, code in enumerate(python_blocks(path.read_text())):
        compile(code, f"{path.relative_to(ROOT)} block {i + 1}", "exec")


def test_the_readme_stays_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move the detail to docs/"


# [text](target) and ![alt](target), outside code; the target up to a space or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")


def relative_links(text: str) -> list[str]:
    prose = CODE.sub("", FENCE.sub("", text))
    return [t for t in LINK.findall(prose) if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


@pytest.mark.parametrize("path", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_at_a_file(path):
    links = relative_links(path.read_text())
    broken = [t for t in links if not (path.parent / t.split("#", 1)[0]).exists()]
    assert not broken, f"{path.relative_to(ROOT)} links to missing files: {broken}"


def test_the_link_check_sees_links():
    text = "[a](docs/x.md#y) ![b](img/c.png) [web](https://e.org) [top](#q) `[no](code.md)`"
    assert relative_links(text) == ["docs/x.md#y", "img/c.png"]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None
                    or importlib.util.find_spec("material") is None,
                    reason="not installed: mkdocs, mkdocs-material (pip install -e '.[docs]')")
def test_the_site_builds_strictly(tmp_path):
    """Strict: a broken link or anchor, a page missing from nav or a lost schema marker fails it."""
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr
    from bench.store import COLUMNS

    schema = (tmp_path / "site" / "schema" / "index.html").read_text()
    assert "bench:schema" not in schema  # the hook replaced the marker ...
    for column in COLUMNS:  # ... with every column of the results table
        assert f"<code>{column}</code>" in schema, column
