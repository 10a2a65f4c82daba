"""Shared machinery of the JAX and TensorFlow timer cross-checks.

Both scripts time the forward and gradient phases of one ``mlp_regression``
case two ways, in the same process, on the same pinned CPUs and the same
thread settings:

1. bench   bench's ``Timer`` exactly as a worker runs it: the timing config of
           ``bench.measure.worker.timing_config``, and (``--phases worker``, default)
           every phase the implementation offers timed in the same
           interleaved rounds, so the forward blocks alternate with gradient,
           backward_split and step blocks as they do in ``bench run``.
2. plain   a plain loop over the very same callables: blocks of ``n``
           back-to-back calls ending with one device sync, ``n`` doubled
           until a block lasts at least ``--block-ms``, then blocks of one
           phase at a time until its share of the budget is spent; the median
           of block time / ``n``.

The two methods alternate ``--repeats`` times (the order flips every time).
Each side reports the median of its runs; the verdict uses the **paired**
difference, the median over repeats of (bench run i - plain run i) / plain run
i, runs taken next to each other. That matters on shared (virtual) machines:
on the 2-core development VM, vectorised code (a NumPy or XLA matmul) runs 20
to 40 % slower for stretches of 2 to 20 s, again and again, with no other
process running and no steal time, so two numbers taken at different moments
differ by that much whatever method took them. Before every run a speed probe
(a 512 x 512 matmul in the framework itself) is timed and printed, so such a
change shows.

``--budget`` sets bench's block length as in a run: blocks last at least
budget / (phases x 25), 20 ms at the default 2 s with four phases; ``--budget
0.5`` gives the 5 ms blocks of ``bench run --quick``.

The process runs under the environment a worker gets
(``bench.execute.runner.worker_env``: ``OMP_NUM_THREADS``, ``TF_NUM_INTRAOP_THREADS``
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
from pathlib import Path
from typing import Any

from bench import backends
from bench.backends import Phase
from bench.catalog.loader import load_file
from bench.core.settings import Settings
from bench.execute import machine
from bench.measure import interference
from bench.measure.timing import Timer
from bench.measure.worker import TRAIN_STEPS, pin_threads, timing_config

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "mlp_regression.py"
COMPARED = ("forward", "gradient")
# The speed probe: an n x n float32 matmul in the framework itself (its own thread
# pool, no other library's threads), a few ms per call on a CPU.
PROBE_N = 512


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
    ap.add_argument("--repeats", type=_positive_int, default=5,
                    help="alternations of the two methods (default 5)")
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
    from bench.execute.runner import worker_env

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

    One untimed call first (a first call may compile, and a block of one
    compiling call would fix ``n`` at 1: a sync per call). Then ``n`` doubles
    until a block lasts ``block_s`` (this warms up too); one more block is
    thrown away, then blocks run until ``seconds`` have been spent and at
    least ``min_blocks`` were timed.
    """

    def block(n: int) -> float:
        out = None
        start = time.perf_counter()
        for _ in range(n):
            out = call()
        sync(out)
        return time.perf_counter() - start

    block(1)
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


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def crosscheck(framework: str, mode: str, args: argparse.Namespace, plain_sync: Callable[[Any], None],
               plain_name: str) -> int:
    """Time both ways, alternating; print both medians per phase; the exit status."""
    cpus = pin_threads(args.threads)
    fw = backends.get(framework)
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
    matmul = fw.matmul(device, PROBE_N)
    plain_median(lambda: matmul(None), plain_sync, 0.01, 0.02, min_blocks=1)  # compile it

    def probe() -> float:
        return plain_median(lambda: matmul(None), plain_sync, 0.01, 0.05, min_blocks=3)[0]

    load_before = _load()
    monitor = interference.CpuMonitor()
    cpu_before, started = monitor.read(), time.perf_counter()
    # ours[p][i], theirs[p][i]: run i's median per call; calls per block alike.
    ours: dict[str, list[float]] = {p: [] for p in COMPARED}
    theirs: dict[str, list[float]] = {p: [] for p in COMPARED}
    ours_n: dict[str, list[int]] = {p: [] for p in COMPARED}
    theirs_n: dict[str, list[int]] = {p: [] for p in COMPARED}
    probes: list[tuple[str, float]] = []
    recompiles = 0
    for i in range(args.repeats):
        for method in (("bench", "plain") if i % 2 == 0 else ("plain", "bench")):
            probes.append((method, probe()))
            if method == "bench":
                timing = timer.measure(timed, impl.traces)
                recompiles += timing.recompiles
                for p in COMPARED:
                    ours[p].append(timing[p].median_s)
                    ours_n[p].append(timing[p].calls_per_block)
            else:
                for p in COMPARED:
                    run = by_name[p].run
                    median, n = plain_median(lambda run=run: run(None), plain_sync, args.block_ms / 1e3,
                                             args.budget / len(COMPARED))
                    theirs[p].append(median)
                    theirs_n[p].append(n)
    load_after = _load()
    other, steal = interference.share(cpu_before, monitor.read(), time.perf_counter() - started)

    env = "the caller's" if args.no_worker_env else "a worker's (bench.execute.runner.worker_env)"
    case = ",".join(f"{k}={v}" for k, v in params.items())
    print(f"case mlp_regression {case}, {framework} {fw.version()} ({mode}), threads {args.threads} "
          f"(pinned to CPUs {cpus}), environment: {env}")
    print(f"bench Timer times {', '.join(p.name for p in timed)} in its rounds (budget {args.budget:g} s); "
          f"plain loop: {plain_name}, blocks >= {args.block_ms:g} ms; {args.repeats} alternations")
    print(f"load average (1, 5, 15 min): {load_before} before, {load_after} after; meanwhile other "
          f"processes took {other:.2f} CPU and steal time was {steal:.2f} CPU (bench.measure.interference)")
    values = [t for _, t in probes]
    spread = max(values) / min(values) - 1
    print(f"speed probe ({PROBE_N}x{PROBE_N} float32 matmul in {framework}, ms) before each run: "
          + ", ".join(f"{m} {t * 1e3:.3f}" for m, t in probes) + f"  (spread {spread:.0%})")
    if spread > args.tolerance:
        print("note: the machine's speed changed during the check (the probe moved by more than the "
              "tolerance): trust the paired difference, or run again with more --repeats")
    if recompiles:
        print(f"warning: {recompiles} traces or compilations inside bench's timed rounds")

    def runs(values: list[float], calls: list[int]) -> str:
        return (", ".join(f"{x * 1e3:.3f}" for x in values)
                + "; calls/block " + ", ".join(str(n) for n in calls))

    agree = True
    for p in COMPARED:
        a, b = statistics.median(ours[p]), statistics.median(theirs[p])
        # Run i of bench and run i of the plain loop were taken next to each
        # other: their difference survives the machine changing speed between
        # repeats, which the difference of the two medians does not.
        paired = statistics.median((x - y) / y for x, y in zip(ours[p], theirs[p], strict=True))
        ok = abs(paired) <= args.tolerance
        agree &= ok
        print(f"{p:<8} bench Timer median: {a * 1e3:.4f} ms  (runs: {runs(ours[p], ours_n[p])})")
        print(f"{p:<8} plain loop  median: {b * 1e3:.4f} ms  (runs: {runs(theirs[p], theirs_n[p])})")
        print(f"{p:<8} relative difference: {paired:+.1%} paired, {(a - b) / b:+.1%} of the medians "
              f"({'within' if ok else 'OUTSIDE'} {args.tolerance:.0%})")
    return 0 if agree else 1
