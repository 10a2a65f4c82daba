"""bench's cases through pytest-benchmark: ``pytest suites/ --benchmark-only``.

Every suite's QUICK cases, in every installed framework (default mode), for
the forward, gradient and step phases, timed by pytest-benchmark's
``benchmark`` fixture. The framework's device sync is inside the timed
function, so asynchronous dispatch (JAX, GPUs) is not mistaken for speed.
bench's own ``bench run`` remains the reference method (blocked calls, one
sync per block, paired rounds); this file lets bench's models live in a
pytest-benchmark workflow (``--benchmark-autosave``, ``pytest-benchmark compare``).

suites/conftest.py gives the process the thread environment of ``bench run``'s
workers (``--bench-threads N``, default all usable CPUs) and configures each
framework once as they do. ``bench run`` times each framework in its own
process: for comparable numbers, run one framework per process
(``--bench-framework torch``); the terminal summary warns when several
frameworks, or other processes, shared the CPUs.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from bench import backends
from bench.catalog.discovery import load_dir
from bench.core.records import FRAMEWORKS

SUITES, _ = load_dir(Path(__file__).resolve().parent)
PHASES = ("forward", "gradient", "step")
PARAMS = [
    pytest.param(suite, case, name, phase, id=f"{suite.name}[{case.id}]-{name}-{phase}",
                 marks=pytest.mark.skipif(importlib.util.find_spec(name) is None,
                                          reason=f"{name} not installed"))
    for suite in SUITES for case in suite.cases(quick=True)
    for name in FRAMEWORKS if name in suite.frameworks for phase in PHASES
]


@pytest.mark.parametrize(("suite", "case", "framework", "phase"), PARAMS)
def test_case(benchmark, bench_session, request, suite, case, framework, phase):
    fw = backends.get(framework)
    in_effect = bench_session.configure(framework)  # once per process, as bench run's worker
    device, _ = fw.resolve_device("cpu")
    prob = suite.module.problem(case.as_dict(), 0)
    impl = fw.implement(suite.loss(framework), prob, device, fw.DEFAULT_MODE, 1e-3,
                        suite.optimizer(framework))
    run = next(p for p in impl.phases if p.name == phase).run

    def timed():
        out = run(None)
        fw.sync(out, device)  # inside the timed function: the work must be done
        return out

    timed()  # the first call traces and compiles: keep it out of the calibration
    benchmark.group = f"{suite.name}:{phase}"
    benchmark.extra_info.update(case=case.id, framework=framework, mode=fw.DEFAULT_MODE,
                                threads=bench_session.threads, cpus=bench_session.cpus,
                                settings=in_effect)
    before, start = bench_session.read(), time.perf_counter()
    assert benchmark(timed) is not None
    other, steal = bench_session.record(request.node.nodeid, framework, before,
                                        time.perf_counter() - start)
    benchmark.extra_info.update(other_cpu=round(other, 3), steal_cpu=round(steal, 3))
