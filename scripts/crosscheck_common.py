"""Shared machinery of the JAX and TensorFlow timer cross-checks.

Both scripts time the forward and gradient phases of one ``mlp_regression``
case two ways, in the same process, on the same pinned CPUs and the same
thread settings:

1. bench   bench's ``Timer`` exactly as a worker runs it: the timing config of
           ``bench.worker.timing_config``, and (``--phases worker``, default)
           every phase the implementation offers timed in the same
           interleaved rounds, so the forward blocks alternate with gradient,
           backward_split and step blocks as they do in ``bench run``.
2. plain   a plain loop over the very same callables: blocks of ``n``
           back-to-back calls ending with one device sync, ``n`` doubled
           until a block lasts at least ``--block-ms``, then blocks of one
           phase at a time until its share of the budget is spent; the median
           of block time / ``n``.

The two methods alternate ``--repeats`` times (the order flips every time),
so a machine that drifts hits both; each side reports the median of its runs.

The process runs under the environment a worker gets
(``bench.runner.worker_env``: ``OMP_NUM_THREADS``, ``TF_NUM_INTRAOP_THREADS``
and so on set to ``--threads``): a script started without it re-executes
itself with it before any framework is imported. ``--no-worker-env`` keeps
the caller's environment instead.

Exit status: 0 when both phases agree within ``--tolerance`` (5 %), 1 when
one does not, 2 on an argument error (one line on stderr).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import frameworks, machine
from bench.discovery import load_file
from bench.spec import Settings
from bench.timing import Phase, Timer
from bench.worker import TRAIN_STEPS, pin_threads, timing_config

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "mlp_regression.py"
COMPARED = ("forward", "gradient")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (and exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise ValueError(text)
    return value


_positive_int.__name__ = "positive integer"
_positive_float.__name__ = "positive number"


def parse_args(prog: str, description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = OneLineParser(
        prog=prog,
        description=description,
        epilog="Exit status: 0 both phases agree within the tolerance, 1 one does not, "
               "2 an argument error.",
    )
    ap.add_argument("--batch", type=_positive_int, default=256, help="mlp_regression batch (default 256)")
    ap.add_argument("--width", type=_positive_int, default=256, help="mlp_regression width (default 256)")
    ap.add_argument("--depth", type=_positive_int, default=3, help="mlp_regression depth (default 3)")
    ap.add_argument("--threads", type=_positive_int, default=machine.usable_cpus(),
                    help="CPU threads, pinned as a worker pins them (default: all usable CPUs)")
    ap.add_argument("--repeats", type=_positive_int, default=3,
                    help="alternations of the two methods (default 3)")
    ap.add_argument("--budget", type=_positive_float, default=2.0,
                    help="seconds of bench's timed rounds per measurement, as bench run --budget; "
                         "the plain loop spends the same per measurement (default 2)")
    ap.add_argument("--block-ms", type=_positive_float, default=20.0,
                    help="shortest block of the plain loop, ms (default 20)")
    ap.add_argument("--phases", choices=("worker", "pair"), default="worker",
                    help="what bench's Timer times in its rounds: every phase of the implementation "
                         "as a worker does (default), or only forward and gradient")
    ap.add_argument("--tolerance", type=_positive_float, default=0.05,
                    help="largest |relative difference| that passes (default 0.05 = 5 %%)")
    ap.add_argument("--no-worker-env", action="store_true",
                    help="keep the caller's environment instead of a worker's")
    args = ap.parse_args(argv)
    if args.threads > machine.usable_cpus():
        ap.error(f"--threads {args.threads}: only {machine.usable_cpus()} CPUs are usable here")
    return args


def ensure_worker_env(args: argparse.Namespace) -> None:
    """Re-execute this script under a worker's environment unless it already has it.

    Thread pools read their environment variables when the framework starts,
    so this must run before any framework is imported.
    """
    if args.no_worker_env:
        return
    from bench.runner import worker_env

    env = worker_env(Settings(threads=args.threads))
    if all(os.environ.get(k) == v for k, v in env.items()):
        return
    script = os.path.abspath(sys.argv[0])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, script, *sys.argv[1:]], env)


def plain_median(call: Callable[[], Any], sync: Callable[[Any], None], block_s: float,
                 seconds: float, min_blocks: int = 10) -> tuple[float, int]:
    """Median seconds per call over blocks of ``n`` calls and one sync; and ``n``.

    ``n`` doubles until a block lasts ``block_s`` (this warms up too); one
    more block is thrown away, then blocks run until ``seconds`` have been
    spent and at least ``min_blocks`` were timed.
    """

    def block(n: int) -> float:
        out = None
        start = time.perf_counter()
        for _ in range(n):
            out = call()
        sync(out)
        return time.perf_counter() - start

    n = 1
    while block(n) < block_s:
        n *= 2
    block(n)
    samples: list[float] = []
    spent = 0.0
    while len(samples) < min_blocks or spent < seconds:
        elapsed = block(n)
        samples.append(elapsed / n)
        spent += elapsed
    return statistics.median(samples), n


@dataclass
class Side:
    """One method's runs: per phase, the median of each run and the block size."""

    runs: dict[str, list[float]]
    calls: dict[str, list[int]]

    @classmethod
    def empty(cls) -> Side:
        return cls({p: [] for p in COMPARED}, {p: [] for p in COMPARED})

    def add(self, phase: str, median_s: float, calls: int) -> None:
        self.runs[phase].append(median_s)
        self.calls[phase].append(calls)

    def median(self, phase: str) -> float:
        return statistics.median(self.runs[phase])


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def crosscheck(framework: str, mode: str, args: argparse.Namespace, plain_sync: Callable[[Any], None],
               plain_name: str, about: str = "") -> int:
    """Time both ways, alternating; print both medians per phase; the exit status."""
    cpus = pin_threads(args.threads)
    fw = frameworks.get(framework)
    fw.configure(args.threads, allow_tf32=False, seed=0)
    settings = Settings(threads=args.threads, budget_s=args.budget)

    suite = load_file(SUITE)
    params = {"batch": args.batch, "width": args.width, "depth": args.depth}
    device, _ = fw.resolve_device("cpu")
    impl = fw.implement(suite.loss(framework), suite.module.problem(params, settings.seed), device, mode,
                        settings.learning_rate, suite.optimizer(framework))
    impl.loss_and_grads()  # as the worker: the equivalence check, then a short training
    impl.train(TRAIN_STEPS)
    by_name = {p.name: p for p in impl.phases}
    timed: list[Phase] = list(impl.phases) if args.phases == "worker" else [by_name[p] for p in COMPARED]
    timer = Timer(lambda out: fw.sync(out, device), timing_config(settings))

    load_before = _load()
    ours, theirs = Side.empty(), Side.empty()
    recompiles = 0
    for i in range(args.repeats):
        methods = ("bench", "plain") if i % 2 == 0 else ("plain", "bench")
        for method in methods:
            if method == "bench":
                timing = timer.measure(timed, impl.traces)
                recompiles += timing.recompiles
                for p in COMPARED:
                    ours.add(p, timing[p].median_s, timing[p].calls_per_block)
            else:
                for p in COMPARED:
                    run = by_name[p].run
                    median, n = plain_median(lambda run=run: run(None), plain_sync, args.block_ms / 1e3,
                                             args.budget / len(COMPARED))
                    theirs.add(p, median, n)
    load_after = _load()

    env = "the caller's" if args.no_worker_env else "a worker's (bench.runner.worker_env)"
    case = ",".join(f"{k}={v}" for k, v in params.items())
    print(f"case mlp_regression {case}, {framework} {fw.version()} ({mode}), threads {args.threads} "
          f"(pinned to CPUs {cpus}), environment: {env}")
    print(f"bench Timer times {', '.join(p.name for p in timed)} in its rounds (budget {args.budget:g} s); "
          f"plain loop: {plain_name}, blocks >= {args.block_ms:g} ms{about}")
    print(f"load average (1, 5, 15 min): {load_before} before, {load_after} after")
    if recompiles:
        print(f"warning: {recompiles} traces or compilations inside bench's timed rounds")

    def runs(side: Side, p: str) -> str:
        return (", ".join(f"{x * 1e3:.3f}" for x in side.runs[p])
                + "; calls/block " + ", ".join(str(n) for n in side.calls[p]))

    agree = True
    for p in COMPARED:
        a, b = ours.median(p), theirs.median(p)
        diff = (a - b) / b
        ok = abs(diff) <= args.tolerance
        agree &= ok
        print(f"{p:<8} bench Timer median: {a * 1e3:.4f} ms  (runs: {runs(ours, p)})")
        print(f"{p:<8} plain loop  median: {b * 1e3:.4f} ms  (runs: {runs(theirs, p)})")
        print(f"{p:<8} relative difference: {diff:+.1%} "
              f"({'within' if ok else 'OUTSIDE'} {args.tolerance:.0%})")
    return 0 if agree else 1
