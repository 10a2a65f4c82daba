"""A pytest plugin: ``pytest suites/ --benchmark-only`` under the conditions of ``bench run``'s workers.

``suites/conftest.py`` loads it; any folder of suites can do the same.

Before any framework is imported, the process gets the environment and the
CPUs that ``bench run`` gives its workers (``bench.execute.runner.worker_env``: OMP,
MKL, OpenBLAS and TensorFlow thread pools of ``--bench-threads`` threads,
and ``bench.measure.worker.pin_threads``, which also bounds XLA's pool). Each
framework is then configured once, as a worker does (``configure(threads,
allow_tf32=False, seed=0)``).

Two things still make these numbers differ from ``bench run``'s, and the
terminal summary says so when they happen:

- several frameworks timed in one process (``bench run`` starts one process
  per framework): run one per process with ``--bench-framework NAME`` (or
  ``-k NAME``);
- other processes using the CPUs while a test was timed. A framework whose
  intra-op pool has one thread per core waits, at every parallel region, for
  the thread that lost its core: on a 2-core machine, torch's gradients
  (2 threads) were 2-3x slower beside a busy loop, 7-11x beside another
  2-thread torch process, and up to 100x and more beside other test runs.
  ``bench run`` is exposed the same way (it marks such rows noisy).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench import backends
from bench.core.records import FRAMEWORKS
from bench.core.settings import Settings
from bench.execute.machine import usable_cpus
from bench.execute.runner import worker_env
from bench.measure.interference import CpuMonitor, CpuTimes, share
from bench.measure.worker import pin_threads
from bench.stats.quality import OTHER_CPU_NOISY

SEVERAL_FRAMEWORKS = "timed in one process"  # the start of the warning's text, for the tests


@dataclass
class BenchSession:
    """What this pytest process set up, and what its benchmark tests saw."""

    threads: int
    cpus: list[int]
    late: list[str]  # frameworks imported before the environment was set
    configured: dict[str, dict[str, Any]] = field(default_factory=dict)
    timed: list[str] = field(default_factory=list)  # frameworks, in the order first timed
    # (test id, other processes' CPU share, steal share) for tests above the threshold
    shared: list[tuple[str, float, float]] = field(default_factory=list)
    monitor: CpuMonitor = field(default_factory=CpuMonitor)

    def configure(self, name: str) -> dict[str, Any]:
        """Configure ``name`` once, as bench run's worker does; its settings in effect."""
        if name not in self.configured:
            self.configured[name] = backends.get(name).configure(self.threads, False, 0)
        return self.configured[name]

    def read(self) -> CpuTimes | None:
        return self.monitor.read()

    def record(self, test: str, framework: str, before: CpuTimes | None, wall_s: float
               ) -> tuple[float, float]:
        """Note a timed test; (other processes' CPU, steal) during it, as fractions of one CPU."""
        if framework not in self.timed:
            self.timed.append(framework)
        other, steal = share(before, self.read(), wall_s)
        if other > OTHER_CPU_NOISY or steal > OTHER_CPU_NOISY:
            self.shared.append((test, other, steal))
        return other, steal


_KEY = pytest.StashKey[BenchSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bench", "bench's suites under pytest-benchmark (suites/conftest.py)")
    group.addoption("--bench-threads", type=int, default=None, metavar="N",
                    help="CPU threads for every framework, and the CPUs the process may use, "
                         "as `bench run --threads N` (default: all usable CPUs)")
    group.addoption("--bench-framework", default=None, metavar="NAME", choices=FRAMEWORKS,
                    help="time only this framework's tests: one framework per process, as "
                         f"`bench run` does ({', '.join(FRAMEWORKS)})")


def pytest_configure(config: pytest.Config) -> None:
    usable = usable_cpus()
    threads = config.getoption("bench_threads")
    threads = usable if threads is None else threads
    if not 1 <= threads <= usable:
        raise pytest.UsageError(f"--bench-threads {threads}: this machine lets bench use 1 to {usable} CPUs")
    late = [n for n in FRAMEWORKS if n in sys.modules]
    # The frameworks read these when they start their thread pools: now,
    # before suites/test_suites.py imports any of them.
    os.environ.update(worker_env(Settings(threads=threads)))
    cpus = pin_threads(threads)
    config.stash[_KEY] = BenchSession(threads=threads, cpus=cpus, late=late)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = config.getoption("bench_framework")
    if not chosen:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("framework") if callspec else None
        (drop if name is not None and name != chosen else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def bench_session(pytestconfig: pytest.Config) -> BenchSession:
    """The process's thread settings; configures frameworks and records what was timed."""
    return pytestconfig.stash[_KEY]


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(_KEY, None)
    if session is None or not session.timed:
        return
    tr = terminalreporter
    lines = [f"threads {session.threads} (OMP_NUM_THREADS, TF pools, torch.set_num_threads), "
             f"CPUs {session.cpus or 'not pinned'}; frameworks timed: {', '.join(session.timed)}"]
    if session.late:
        lines.append(f"WARNING: {', '.join(session.late)} was imported before suites/conftest.py "
                     "set the thread environment: its pools may not have the threads above")
    if len(session.timed) > 1:
        lines.append(
            f"WARNING: {', '.join(session.timed)} {SEVERAL_FRAMEWORKS}: these numbers cannot be "
            "compared with `bench run`, which runs each framework in its own process. Run one "
            "framework per process: pytest suites/ --benchmark-only --bench-framework torch "
            "(or -k torch)")
    if session.shared:
        worst = max(session.shared, key=lambda s: s[1] + s[2])
        lines.append(
            f"WARNING: other processes used the CPUs during {len(session.shared)} timed test(s) "
            f"(more than {OTHER_CPU_NOISY:g} CPU; worst {worst[1]:.2f} CPU, steal {worst[2]:.2f}, in "
            f"{worst[0]}): their times can be many times too slow and cannot be compared with "
            "`bench run`; see extra_info other_cpu, and rerun on a quiet machine")
    tr.write_sep("-", "bench: conditions of these benchmarks")
    for line in lines:
        tr.write_line(line, yellow=line.startswith("WARNING"))
