"""bench run --precision --max-processes: more processes for the cases whose R is still too wide.

Rounds narrow each process's interval; only more processes narrow the spread
between them. A scripted worker (tests/fake_worker.py) plays every process:
the first case's processes disagree on R, the other three's agree.
"""

from __future__ import annotations

import io

import pytest
from conftest import TEST_SUITES
from fake_worker import Workers, cases_played, fake_framework, measure

from bench import backends, store
from bench.catalog.loader import load_file
from bench.cli import main as cli
from bench.core.records import CaseKey, Record
from bench.execute import runner
from bench.execute.session import short_of_precision
from bench.present import console

# R of each process of the first case: they scatter. The other cases' processes agree.
SPREAD = (2.0, 2.6, 1.7, 2.4, 2.1, 2.3, 1.9)
CASES = [f"batch={b},width=16,depth=2" for b in (8, 16, 24, 32)]
FIRST = CASES[0]


def process_script(counter: list[int]):
    """A worker script; ``counter`` numbers the processes it has played."""

    def script(link):
        n = counter[0]
        counter[0] += 1
        for job, case in cases_played(link, load_file(TEST_SUITES / "tiny" / "tiny_mlp.py")):
            ratio = SPREAD[n % len(SPREAD)] if case.id == FIRST else 2.0 * (1 + 0.001 * (n % 3))
            forward = [1e-3] * 6
            samples = {"forward": forward, "gradient": [ratio * f for f in forward],
                       "backward": [(ratio - 1) * f for f in forward],
                       "backward_split": [(ratio - 1) * f for f in forward],
                       "step": [1.05 * ratio * f for f in forward]}
            measure(link, job, case, records=[Record(
                run_id=job.run_id, machine=job.machine, suite=case.suite, case=case.id, params="{}",
                framework=job.framework, framework_version="0", mode=job.mode, device=job.device,
                phase=phase, status="ok", median_s=s[0], samples_s=tuple(s), rounds=len(s),
                ratio=s[0] / forward[0], ratio_ci_low=s[0] / forward[0], ratio_ci_high=s[0] / forward[0],
                threads=1, precision_target=job.settings.precision or float("nan"))
                for phase, s in samples.items()])
        return None

    return script


@pytest.fixture
def run(monkeypatch, tmp_path):
    """``bench run`` of the tiny suite in-process with scripted processes; its rows by case and phase."""
    tiny = load_file(TEST_SUITES / "tiny" / "tiny_mlp.py")
    monkeypatch.setattr(backends, "get", lambda name: fake_framework(tiny.module.reference))
    monkeypatch.setattr(console, "out", console.SafeConsole(file=io.StringIO(), width=100, color_system=None))

    def go(*extra: str) -> tuple[int, dict]:
        counter = [0]
        monkeypatch.setattr(runner, "start_worker", Workers(process_script(counter)))
        results = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
        cases = [a for c in CASES for a in ("--case", c)]
        code = cli.main(["run", "--framework", "torch", "--suites", str(TEST_SUITES / "tiny"), "--suite",
                         "tiny_mlp", *cases, "--quick", "--machine", "m", "--results", str(results),
                         "--no-report", "--timeout", "10", *extra])
        df = store.load(results)
        return code, {(r.case, r.phase): r for r in df.itertuples()}

    return go


def test_only_the_cases_short_of_the_precision_get_more_processes(run):
    code, rows = run("--processes", "3", "--precision", "0.05", "--max-processes", "6")
    assert code == 0  # the first case never got there: noisy, but measured
    wide = rows[(FIRST, "gradient")]
    assert len(wide.process_rounds) == 6  # its processes keep disagreeing: up to the cap
    assert "more processes do: --max-processes" in wide.quality_reason
    for case in CASES[1:]:
        calm = rows[(case, "gradient")]
        assert len(calm.process_rounds) == 3  # agreed after the first three: no more
        assert (calm.ratio_ci_high - calm.ratio_ci_low) / 2 / calm.ratio <= 0.05


def test_without_max_processes_the_processes_asked_are_all(run):
    code, rows = run("--processes", "3", "--precision", "0.05")
    assert code == 0
    assert {len(r.process_rounds) for r in rows.values() if r.phase == "gradient"} == {3}


def test_short_of_precision_names_multi_process_cases_wider_than_asked():
    def row(case: str, low: float, high: float, processes: tuple[int, ...]) -> Record:
        return Record(run_id="r", machine="m", suite="s", case=case, params="{}", framework="torch",
                      framework_version="0", mode="eager", device="cpu", phase="gradient", status="ok",
                      ratio=2.0, ratio_ci_low=low, ratio_ci_high=high, process_rounds=processes)

    rows = [row("wide", 1.8, 2.2, (3, 3, 3)), row("narrow", 1.98, 2.02, (3, 3, 3)),
            row("one", 1.0, 3.0, (9,))]  # one process: rounds were its business
    assert short_of_precision(rows, 0.05) == {CaseKey("s", "wide", "torch", "eager", "cpu", "float32")}
    assert short_of_precision(rows, None) == set()


@pytest.mark.parametrize(("args", "words"), [
    (["--max-processes", "5"], "give --precision too"),
    (["--precision", "0.02", "--processes", "3", "--max-processes", "2"], "give 3 (--processes) to 100"),
    (["--precision", "0.02", "--max-processes", "101"], "to 100"),
])
def test_max_processes_refuses_what_it_cannot_do(args, words, capsys):
    code = cli.main(["run", "--dry-run", *args])
    assert code == 2
    assert words in capsys.readouterr().err


def test_the_dry_run_says_how_many_more_processes_may_come(capsys):
    code = cli.main(["run", "--dry-run", "--suite", "mlp_regression", "--framework", "torch", "--precision",
                     "0.02", "--max-processes", "6"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "and up to 3 more processes per case (--max-processes): not counted below" in out
