"""Shared test helpers.

Framework skips and running the real CLI; and the mechanics that the framework
and suite tests share: the frameworks' modes as parameters, implementing a
suite in a framework, central finite differences, torch's FLOP counter and the
float64 training curve. The checks themselves stay in the tests.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from bench import backends
from bench.backends import Implementation, Phase
from bench.catalog.loader import Suite
from bench.core.contract import Problem

# A shell starts a background job (`cmd &`, nohup) with SIGINT ignored, and an ignored signal
# stays ignored in every program it runs: the children of the tests that press Ctrl-C would
# never see it. A handler here is reset to the default at exec, so children get Ctrl-C again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
# Results files of earlier versions and machines, and suite folders the tests run.
DATA = Path(__file__).resolve().parent / "data"
TEST_SUITES = DATA / "suites"
FRAMEWORKS = ("torch", "tensorflow", "jax")


def installed(name: str) -> bool:
    """Whether the module ``name`` can be imported here (without importing it)."""
    return importlib.util.find_spec(name) is not None


def needs(*names: str) -> pytest.MarkDecorator:
    """Skip (cleanly, with the reason) unless every named framework is installed."""
    missing = [n for n in names if not installed(n)]
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)}")


def bench_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``bench`` console script (the real entry point)."""
    exe = Path(sys.executable).with_name("bench")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bench"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


# --- parametrizing over frameworks, modes and cases ------------------------------------------

# Every (framework, mode) pair, as the framework modules declare them.
MODES: list[tuple[str, str]] = [(n, m) for n in FRAMEWORKS for m in backends.get(n).MODES]

# One test per (framework, mode), id ``framework:mode``, skipped where the
# framework is not installed. torch.compile takes tens of seconds to compile
# on a small CPU: those are slow.
each_mode = pytest.mark.parametrize(
    ("name", "mode"),
    [pytest.param(n, m, id=f"{n}:{m}", marks=[needs(n)] + ([pytest.mark.slow] if m == "compile" else []))
     for n, m in MODES],
)

# One test per framework, skipped where it is not installed.
each_framework = pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in FRAMEWORKS])


def case_id(params: Mapping[str, int]) -> str:
    """A case's readable test id, as ``Case.id`` spells it: ``batch=8,width=16,depth=2``."""
    return ",".join(f"{k}={v}" for k, v in params.items())


def each_case(cases: Sequence[Mapping[str, int]], argname: str = "case") -> pytest.MarkDecorator:
    """Parametrize ``argname`` over a suite's parameter dicts, each with its ``case_id``."""
    return pytest.mark.parametrize(argname, cases, ids=[case_id(c) for c in cases])


# --- problems and implementations ------------------------------------------------------------


def with_params(prob: Problem, params: Sequence[np.ndarray]) -> Problem:
    """``prob`` with other parameters: the same data, names and dtypes as given."""
    return Problem(prob.X, prob.y, tuple(params), prob.names)


def as64(prob: Problem, params: Sequence[np.ndarray] | None = None) -> Problem:
    """``prob`` (or ``prob`` with ``params``) with data and parameters in float64."""
    params = prob.params if params is None else params
    return Problem(
        prob.X.astype(np.float64), prob.y.astype(np.float64),
        tuple(np.asarray(p, dtype=np.float64) for p in params), prob.names,
    )


def implement_suite(suite: Suite, name: str, prob: Problem, lr: float, mode: str | None = None,
                    plain_sgd: bool = False) -> tuple[backends.Framework, Any, Implementation]:
    """``suite``'s model for ``prob`` in framework ``name`` on the CPU: ``(fw, device, impl)``.

    ``mode`` defaults to the framework's default mode; the optimizer is the
    suite's own for that framework (None, plain SGD, where it has none), or
    plain SGD regardless with ``plain_sgd``.
    """
    fw = backends.get(name)
    device, _ = fw.resolve_device("cpu")
    optimizer = None if plain_sgd else suite.optimizer(name)
    impl = fw.implement(suite.loss(name), prob, device, mode or fw.DEFAULT_MODE, lr, optimizer)
    return fw, device, impl


def phase(impl: Implementation, name: str) -> Phase:
    """The phase called ``name`` of ``impl``."""
    return next(p for p in impl.phases if p.name == name)


def forward_loss(fw: ModuleType, device: Any, impl: Implementation) -> float:
    """Run ``impl``'s forward phase once, wait for it, and return the loss it computed."""
    out = phase(impl, "forward").run(None)
    fw.sync(out, device)
    return float(fw.to_numpy(out))


# --- float64 references: finite differences and training curves -----------------------------


def central_differences(loss: Callable[[list[np.ndarray]], float], params: Sequence[np.ndarray],
                        h: float = 1e-6) -> list[np.ndarray]:
    """The gradient of ``loss`` at ``params`` by central differences, in float64.

    ``loss`` takes the whole parameter list. Each entry of each parameter in
    turn is moved by +h and -h (in fresh copies of all the parameters), and
    its derivative is ``(loss(plus) - loss(minus)) / (2 h)``.
    """
    params = [np.asarray(p, dtype=np.float64) for p in params]
    fd = []
    for k, p in enumerate(params):
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            plus = [q.copy() for q in params]
            minus = [q.copy() for q in params]
            plus[k][idx] += h
            minus[k][idx] -= h
            g[idx] = (loss(plus) - loss(minus)) / (2 * h)
        fd.append(g)
    return fd


def numpy_training_curve(reference: Callable[[Problem], tuple[float, list[np.ndarray]]], prob: Problem,
                         lr: float, steps: int = 20, optimizer: ModuleType | None = None) -> list[float]:
    """The float64 training curve from ``prob``'s float32 start: the loss before each of ``steps`` steps.

    Gradients come from ``reference``; the update is plain SGD, or, with
    ``optimizer`` (a suite module), its NumPy ``init_numpy``/``update_numpy``.
    """
    params = [p.astype(np.float64) for p in prob.params]
    state = None if optimizer is None else optimizer.init_numpy(params)
    losses = []
    for _ in range(steps):
        loss, grads = reference(with_params(prob, params))
        losses.append(loss)
        if optimizer is None:
            params = [p - lr * g for p, g in zip(params, grads, strict=True)]
        else:
            params, state = optimizer.update_numpy(params, grads, state, lr)
    return losses


# --- FLOPs -----------------------------------------------------------------------------------


def torch_flop_counts(loss: Callable, params: Sequence[np.ndarray], X: np.ndarray,
                      y: np.ndarray) -> tuple[int, int]:
    """What torch's ``FlopCounterMode`` counts for ``loss(params, X, y)``: ``(forward, gradient)``.

    The forward pass runs under ``torch.no_grad``; the gradient is the forward
    pass and ``torch.autograd.grad`` of the loss with respect to every parameter.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    weights = [torch.tensor(p, requires_grad=True) for p in params]
    X_t, y_t = torch.tensor(X), torch.tensor(y)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        loss(weights, X_t, y_t)
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        torch.autograd.grad(loss(weights, X_t, y_t), weights)
    return forward, counter.get_total_flops()


def write_run(path: Path, machine: str, scale: float, cases=("a", "b"), seed: int = 0,
              threads: int = 2) -> Path:
    """A results file with forward and gradient rows whose times are ``scale`` x a fixed base."""
    from bench.core.records import Record
    from bench.store.writer import ResultsWriter

    rng = np.random.default_rng(seed)
    records = []
    for case in cases:
        f = scale * 1e-3 * rng.lognormal(0.0, 0.02, size=20)
        g = 2.5 * f * rng.lognormal(0.0, 0.01, size=20)
        for phase, s in (("forward", f), ("gradient", g)):
            records.append(Record(
                run_id=path.stem, machine=machine, suite="s", case=case, params="{}", framework="jax",
                framework_version="0", mode="jit", device="cpu", phase=phase, status="ok",
                median_s=float(np.median(s)), samples_s=tuple(float(x) for x in s), threads=threads))
    w = ResultsWriter(path, {"run_id": path.stem, "machine": machine,
                             "fingerprint": {"cpu": "Fake CPU"}, "settings": {"threads": threads}})
    w.append(records)
    w.close()
    return path


# --- a real S3 server -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on a free localhost port, started once per session, with bucket ``bench-test``."""
    from s3server import make_bucket, moto_server

    with moto_server() as url:
        make_bucket(url, "bench-test")
        yield url


@pytest.fixture
def s3(s3_endpoint, monkeypatch) -> str:
    """The S3 server's endpoint, with this test's environment pointing s3fs at it (fake credentials)."""
    from s3server import set_env

    set_env(monkeypatch, s3_endpoint)
    return s3_endpoint


# --- bench run in-process with scripted workers (tests/fake_worker.py) ---------------------------


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    """``bench run`` in-process over the tiny suite with a fake torch; returns (run, workers)."""
    from fake_worker import TINY, Workers, fake_framework

    from bench import backends
    from bench.cli import main as cli
    from bench.execute import runner

    monkeypatch.setattr(backends, "get", lambda name: fake_framework(TINY.module.reference))

    def start(*scripts):
        workers = Workers(*scripts)
        monkeypatch.setattr(runner, "start_worker", workers)
        return workers

    def run(*extra: str) -> int:
        return cli.main(["run", "--framework", "torch", "--suites", str(TINY.path.parent), "--quick",
                         "--machine", "m", "--results", str(tmp_path / "results"), "--no-report",
                         "--timeout", "10", *extra])

    return run, start
