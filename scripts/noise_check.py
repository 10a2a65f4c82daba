"""Do bench's intervals hold across reruns, and does it flag a busy machine?

    python scripts/noise_check.py [--runs 5] [--frameworks torch,jax] [--settings full|quick]
                                  [-- EXTRA bench run ARGS]

1. Runs the MLP quick cases (``bench run --quick --suite mlp_regression``)
   ``--runs`` times in a row on a quiet machine, at the full run's default
   budget and processes (``--settings full``, the default) or at ``--quick``'s
   own (``--settings quick``), and, for every (framework, case), counts how often
   another run's R falls inside a run's 95 % CI (every ordered pair of runs).
   A CI that covers run-to-run variation holds about 95 % of them; the goal is
   at least 90 %.
2. Runs the same once more with a CPU hog (a busy loop on one core): every
   row whose R moved more than 10 % from the quiet median must be marked
   noisy or unreliable, and the quiet runs may mark at most 10 % of their
   rows (of all phases; the share of gradient rows, which carry R, is printed too).

Arguments after ``--`` go to every ``bench run`` (e.g. ``-- --processes 3``).
Prints the figures and exits 0 when both goals are met, 1 otherwise, 2 on a
usage error. Check that nothing else runs first (``uptime``): the quiet runs
must be quiet.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_run(results: Path, machine: str, frameworks: str, extra: list[str]) -> float:
    """One quick MLP run; its wall time in seconds."""
    cmd = [sys.executable, "-m", "bench", "run", "--quick", "--suite", "mlp_regression",
           "--framework", frameworks, "--results", str(results), "--machine", machine, "--no-report",
           *extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.exit(f"noise_check: bench run failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return time.monotonic() - start


def coverage(grad) -> tuple[float, list[str]]:
    """Fraction of (run, other run) pairs where the other's R is inside the run's CI; per-key lines."""
    hits = pairs = 0
    lines = []
    for key, g in grad.groupby(["framework", "case"]):
        rows = list(g.itertuples())
        inside = sum(o.ratio >= r.ratio_ci_low and o.ratio <= r.ratio_ci_high
                     for r, o in itertools.permutations(rows, 2))
        n = len(rows) * (len(rows) - 1)
        hits, pairs = hits + inside, pairs + n
        spread = (g.ratio.max() - g.ratio.min()) / g.ratio.median()
        half = ((g.ratio_ci_high - g.ratio_ci_low) / 2 / g.ratio).median()
        lines.append(f"  {key[0]:<6} {key[1]:<30} R {g.ratio.min():.2f}-{g.ratio.max():.2f} "
                     f"(spread {spread:.0%}), median CI half-width {half:.1%}, covered {inside}/{n}")
    return (hits / pairs if pairs else float("nan")), lines


def agreement(grad) -> float:
    """Fraction of pairs of runs whose R differ by less than their half-widths combined (on a log scale).

    The calibration test for intervals that hold run-to-run variation: two
    runs' R differ by sqrt(2) times one run's standard error, so exact 95 %
    intervals hold 95 % of such differences within sqrt(h1^2 + h2^2), but
    another run's R lands inside one run's interval only about 83 % of the
    time (Cumming and Maillardet 2006, "Confidence intervals and replication:
    where will the next mean fall?").
    """
    hits = pairs = 0
    for _, g in grad.groupby(["framework", "case"]):
        rows = [(math.log(r.ratio), (math.log(r.ratio_ci_high) - math.log(r.ratio_ci_low)) / 2)
                for r in g.itertuples() if r.ratio > 0 and r.ratio_ci_low > 0]
        for (a, ha), (b, hb) in itertools.combinations(rows, 2):
            hits, pairs = hits + (abs(a - b) <= math.hypot(ha, hb)), pairs + 1
    return hits / pairs if pairs else float("nan")


def main(argv: list[str]) -> int:
    ours, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="quiet runs (at least 2; default 5)")
    ap.add_argument("--frameworks", default="torch,jax", help="frameworks to run (default torch,jax)")
    ap.add_argument("--settings", choices=("full", "quick"), default="full",
                    help="full: the full run's default --budget and --processes on the quick cases "
                         "(default); quick: --quick's own")
    ap.add_argument("--keep", type=Path, default=None, metavar="DIR",
                    help="keep the results under DIR (quiet/ and hog/) instead of a temporary folder")
    args = ap.parse_args(ours)
    if args.runs < 2:
        ap.error("--runs must be at least 2")
    import bench
    from bench.core import defaults
    from bench.stats import quality

    if args.settings == "full":
        extra = ["--budget", str(defaults.BUDGET_S), "--processes", str(defaults.PROCESSES), *extra]

    with tempfile.TemporaryDirectory(prefix="bench-noise-") as tmp:
        results = args.keep or Path(tmp)
        walls = [bench_run(results, "quiet", args.frameworks, extra) for _ in range(args.runs)]
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(hog.pid, {sorted(os.sched_getaffinity(0))[0]})
            hog_wall = bench_run(results, "hog", args.frameworks, extra)
        finally:
            hog.kill()
            hog.wait()
        quiet, busy = bench.load(results / "quiet"), bench.load(results / "hog")

    qgrad = quiet[(quiet.phase == "gradient") & (quiet.status == "ok")]
    cov, lines = coverage(qgrad)
    print(f"bench run --quick --suite mlp_regression --framework {args.frameworks} {' '.join(extra)}")
    print(f"{args.runs} quiet runs, {min(walls):.0f}-{max(walls):.0f} s each")
    print(f"(a) other runs' R inside a run's 95 % CI: {cov:.0%} (goal >= 90 %; exact 95 % intervals "
          f"give about 83 %)")
    print(*lines, sep="\n")
    print(f"    pairs of runs whose R differ by less than their half-widths combined: "
          f"{agreement(qgrad):.0%} (exact 95 % intervals: 95 %)")

    ok_q = quiet[quiet.status == "ok"]
    flagged_all = ok_q.quality.isin(["noisy", "unreliable"]).mean()
    flagged_quiet = qgrad.quality.isin(["noisy", "unreliable"]).mean()
    medians = qgrad.groupby(["framework", "case"]).ratio.median()
    bgrad = busy[(busy.phase == "gradient") & (busy.status == "ok")]
    moved = [(r, r.ratio / medians[(r.framework, r.case)] - 1) for r in bgrad.itertuples()]
    missed = [(r, m) for r, m in moved if abs(m) > 0.10 and r.quality not in ("noisy", "unreliable")]
    print(f"(b) with a CPU hog on one core ({hog_wall:.0f} s): R moved > 10 % on "
          f"{sum(abs(m) > 0.10 for _, m in moved)} of {len(moved)} gradient rows; unflagged among them: "
          f"{len(missed)} (goal 0); rows flagged in the hog run: "
          f"{busy[busy.status == 'ok'].quality.isin(['noisy', 'unreliable']).mean():.0%}")
    for r, m in moved:
        print(f"  {r.framework:<6} {r.case:<30} R {r.ratio:.2f} ({m:+.0%} from quiet) {r.quality}: "
              f"{r.quality_reason.split('; ')[0]}")
    per_run = ok_q.groupby("run_id").quality.apply(lambda q: q.isin(["noisy", "unreliable"]).mean())
    print(f"    quiet runs: {flagged_all:.0%} of all rows flagged (goal <= 10 %; the runs "
          f"{per_run.min():.0%}-{per_run.max():.0%}), {flagged_quiet:.0%} of gradient rows")
    reasons = quality.main_reason(ok_q.quality_reason)
    if reasons:
        print(f"    the quiet runs' most common reason: {reasons}")
    good = cov >= 0.90 and not missed and flagged_all <= 0.10
    print("both goals met" if good else "a goal was missed")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
