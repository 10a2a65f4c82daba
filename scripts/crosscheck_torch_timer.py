"""Cross-check bench's timing engine against torch.utils.benchmark.

Times the same torch forward pass (one mlp_regression case, the same thread
count) with bench's Timer and with ``torch.utils.benchmark.Timer.blocked_autorange``,
alternating the two a few times so that drift of the machine hits both, and
prints both medians and their relative difference.

    python scripts/crosscheck_torch_timer.py [--batch 512 --width 256 --depth 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench import backends
from bench.catalog.loader import load_file
from bench.execute import machine
from bench.measure.timing import Timer, TimingConfig
from bench.measure.worker import pin_threads

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--threads", type=int, default=machine.usable_cpus())
    ap.add_argument("--repeats", type=int, default=5, help="alternations of the two timers")
    ap.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    args = ap.parse_args()

    pin_threads(args.threads)
    fw = backends.get("torch")
    fw.configure(args.threads, allow_tf32=False, seed=0)
    import torch.utils.benchmark as tb

    suite = load_file(ROOT / "suites" / "mlp_regression.py")
    params = {"batch": args.batch, "width": args.width, "depth": args.depth}
    device, _ = fw.resolve_device("cpu")
    impl = fw.implement(suite.loss("torch"), suite.module.problem(params, 0), device, "eager", 1e-3)
    forward = next(p for p in impl.phases if p.name == "forward")

    timer = Timer(lambda out: fw.sync(out, device), TimingConfig(budget_s=args.budget))
    reference = tb.Timer(stmt="f(None)", globals={"f": forward.run}, num_threads=args.threads)
    ours, theirs = [], []
    for _ in range(args.repeats):
        ours.append(timer.measure([forward])["forward"].median_s)
        theirs.append(reference.blocked_autorange(min_run_time=args.budget).median)

    a, b = statistics.median(ours), statistics.median(theirs)
    case = ",".join(f"{k}={v}" for k, v in params.items())
    print(f"case {case}, threads {args.threads}, torch {fw.version()}")
    print(f"bench Timer            forward median: {a * 1e3:.4f} ms  (runs: "
          + ", ".join(f"{x * 1e3:.3f}" for x in ours) + ")")
    print(f"torch blocked_autorange forward median: {b * 1e3:.4f} ms  (runs: "
          + ", ".join(f"{x * 1e3:.3f}" for x in theirs) + ")")
    diff = (a - b) / b
    print(f"relative difference: {diff:+.1%} ({'within' if abs(diff) <= 0.10 else 'OUTSIDE'} 10 %)")
    return 0 if abs(diff) <= 0.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
