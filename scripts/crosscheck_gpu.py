"""Cross-check bench's GPU timings against CUDA events and triton's do_bench.

Why: on a GPU, bench times a block of ``n`` back-to-back calls with the host
clock and one ``torch.cuda.synchronize`` at the end (bench/measure/timing.py). That is
only right if the sync really waits for the queued work and the block is long
enough for the sync's round trip not to count. This script times the very
same callables (the torch ``Phase.run`` of the forward and gradient phases of
one mlp_regression case) three ways:

1. bench   bench's ``Timer(sync, TimingConfig(budget_s=...)).measure``: median
           over paired rounds of block time / calls per block.
2. events  ``torch.cuda.Event(enable_timing=True)`` pairs around blocks of the
           same ``n`` calls that bench chose (device-side clock, no host
           clock, no sync inside the interval): median of block time / n.
3. do_bench  ``triton.testing.do_bench(..., return_mode="median")``: one
           event pair around every single call, with triton's L2 flush
           (zeroing a 256 MiB buffer) before every call.

How to read it: one row per phase with the three per-call times in ms and the
differences of events and do_bench relative to bench; PASS when within the
tolerance (5 %). Then R = T(gradient) / T(forward) by each method. The case
must be long per call (>= 1 ms; the forward time is printed): then launch
overheads are negligible and, the calls being compute-bound, a cold or warm L2
hardly matters, so the three should agree. do_bench always flushes the L2
before each call while bench's default policy is "warm" (no flush); with
``--l2 flush`` bench (and the events) flush before each block too.

Exit status: 0 all agree, 1 some time disagrees, 2 no usable CUDA GPU (one line
on stderr). Without triton only bench and events are compared.

    python scripts/crosscheck_gpu.py [--batch 8192 --width 4096 --depth 4] [--budget 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import backends
from bench.backends import Phase
from bench.catalog.loader import load_file
from bench.core.device import Device, flush_bytes
from bench.execute import machine
from bench.measure.timing import Timer, TimingConfig
from bench.measure.worker import pin_threads

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("forward", "gradient")


class Unusable(Exception):
    """No CUDA GPU (or no CUDA torch) here: the message is the one line printed."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 all agree within the tolerance, 1 some disagree, 2 no CUDA GPU.",
    )
    ap.add_argument("--batch", type=int, default=8192, help="mlp_regression batch (default 8192)")
    ap.add_argument("--width", type=int, default=4096, help="mlp_regression width (default 4096)")
    ap.add_argument("--depth", type=int, default=4, help="mlp_regression depth (default 4)")
    ap.add_argument("--device", default="cuda", help="cuda or cuda:N (default cuda)")
    ap.add_argument("--threads", type=int, default=machine.usable_cpus(), help="CPU threads for torch")
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of bench's timed rounds (default 2)")
    ap.add_argument("--blocks", type=int, default=20,
                    help="event-timed blocks per phase, interleaved like bench's rounds (default 20)")
    ap.add_argument("--warmup-ms", type=int, default=200, help="do_bench warmup, ms (default 200)")
    ap.add_argument("--rep-ms", type=int, default=1000,
                    help="do_bench repetition time per phase, ms (default 1000)")
    ap.add_argument("--tolerance", type=float, default=0.05,
                    help="largest |relative difference| to bench that passes (default 0.05 = 5 %%)")
    ap.add_argument("--l2", choices=("warm", "flush"), default="warm",
                    help="bench's cache policy: warm (bench's default) or flush before each block, "
                         "if bench's Timer takes a flush callable; events follow bench's policy")
    ap.add_argument("--allow-tf32", action="store_true", help="allow TF32 matmuls (default: off)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers as JSON")
    return ap.parse_args(argv)


def cuda_torch(device_spec: str) -> tuple[Any, Any, str]:
    """torch, its device and the device's name; ``Unusable`` when there is no CUDA GPU."""
    try:
        import torch
    except ImportError as exc:
        raise Unusable(f"torch is not installed ({exc})") from None
    if torch.version.cuda is None:
        raise Unusable(f"torch {torch.__version__} is a CPU-only build: no CUDA")
    if not torch.cuda.is_available():
        raise Unusable(f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA GPU")
    try:
        device, name = backends.get("torch").resolve_device(device_spec)
    except (backends.DeviceUnavailable, ValueError) as exc:
        raise Unusable(f"{device_spec}: {exc}") from None
    if device.type != "cuda":
        raise Unusable(f"{device_spec} is not a CUDA device")
    return torch, device, name


def make_flush(torch: Any, device: Any) -> Callable[..., None]:
    """bench's own L2 flush (``--l2 flush``), finished before any timed interval starts."""
    overwrite = backends.get("torch").flusher(device, flush_bytes(Device("cuda", device.index or 0)))

    def flush(*_: Any) -> None:
        overwrite()
        torch.cuda.synchronize(device)

    return flush


def time_events(
    torch: Any, device: Any, phases: Sequence[Phase], numbers: dict[str, int], blocks: int,
    flush: Callable[..., None] | None,
) -> dict[str, list[float]]:
    """Per-call ms of each phase: CUDA events around blocks of ``numbers[name]`` calls.

    Blocks of the phases alternate, the order rotating, as in bench's rounds.
    """
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def block(p: Phase) -> float:
        n = numbers[p.name]
        state = p.prepare() if p.prepare is not None else None
        if flush is not None:
            flush()
        torch.cuda.synchronize(device)
        start.record()
        for _ in range(n):
            p.run(state)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / n

    for p in phases:  # warm-up, untimed
        block(p)
    samples: dict[str, list[float]] = {p.name: [] for p in phases}
    for r in range(blocks):
        k = r % len(phases)
        for p in (*phases[k:], *phases[:k]):
            samples[p.name].append(block(p))
    return samples


def rel(x: float, ref: float) -> float:
    return (x - ref) / ref if ref and not math.isnan(x) else math.nan


def finite(obj: Any) -> Any:
    """``obj`` with NaN floats (do_bench without triton) as None, for strict JSON."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def num(x: float, fmt: str) -> str:
    return "n/a" if math.isnan(x) else format(x, fmt)


def verdict(diff: float, tol: float) -> str:
    if math.isnan(diff):
        return "n/a"
    return "PASS" if abs(diff) <= tol else "FAIL"


def run(args: argparse.Namespace) -> int:
    torch, device, device_name = cuda_torch(args.device)
    torch.cuda.set_device(device)  # triton's do_bench and flush work on the current device
    try:
        import triton
        import triton.testing

        do_bench: Callable[..., Any] | None = triton.testing.do_bench
        triton_version = triton.__version__
    except ImportError as exc:
        do_bench, triton_version = None, ""
        triton_missing = f"triton unavailable ({exc}): do_bench skipped, bench vs events only"
    else:
        triton_missing = ""

    pin_threads(args.threads)
    fw = backends.get("torch")
    settings = fw.configure(args.threads, allow_tf32=args.allow_tf32, seed=0)
    suite = load_file(ROOT / "suites" / "mlp_regression.py")
    params = {"batch": args.batch, "width": args.width, "depth": args.depth}
    case = ",".join(f"{k}={v}" for k, v in params.items())
    impl = fw.implement(suite.loss("torch"), suite.module.problem(params, 0), device, "eager", 1e-3)
    phases = [next(p for p in impl.phases if p.name == name) for name in PHASES]

    flush = make_flush(torch, device) if args.l2 == "flush" else None
    timer_kwargs: dict[str, Any] = {"flush": flush}
    if flush is not None:
        l2_note = "bench: L2 flushed before each block (--l2 flush); events: the same"
    else:
        l2_note = "bench and events: warm L2 (bench's default policy)"
    l2_note += "; do_bench: L2 flushed before every call (always)"

    # 1. bench
    timer = Timer(lambda out: fw.sync(out, device), TimingConfig(budget_s=args.budget), **timer_kwargs)
    ct = timer.measure(phases)
    bench_ms = {n: ct[n].median_s * 1e3 for n in PHASES}
    numbers = {n: ct[n].calls_per_block for n in PHASES}
    # 2. CUDA events, blocks of the same size
    ev = time_events(torch, device, phases, numbers, args.blocks, flush)
    events_ms = {n: statistics.median(ev[n]) for n in PHASES}
    # 3. triton do_bench
    dobench_ms: dict[str, float] = {n: math.nan for n in PHASES}
    if do_bench is not None:
        for p in phases:
            state = p.prepare() if p.prepare is not None else None
            dobench_ms[p.name] = float(do_bench(lambda p=p, state=state: p.run(state),
                                                warmup=args.warmup_ms, rep=args.rep_ms,
                                                return_mode="median"))

    ratios = {
        "bench": ct.ratio("gradient", "forward").value,
        "events": statistics.median(g / f for g, f in zip(ev["gradient"], ev["forward"], strict=True)),
        "do_bench": dobench_ms["gradient"] / dobench_ms["forward"],
    }

    print(f"case mlp_regression {case}, {device} ({device_name}), torch {fw.version()} "
          f"(CUDA {settings['cuda_build']}), triton {triton_version or 'unavailable'}, "
          f"TF32 {'on' if args.allow_tf32 else 'off'}")
    if triton_missing:
        print(triton_missing)
    print(f"L2: {l2_note}")
    fwd = bench_ms["forward"]
    print(f"forward takes {fwd:.3f} ms per call"
          + ("" if fwd >= 1.0 else " -- BELOW 1 ms: launch overhead and the L2 policy may dominate; "
             "choose a larger case"))
    print(f"bench: {ct.rounds} rounds, calls per block "
          + ", ".join(f"{n} {numbers[n]}" for n in PHASES)
          + f"; events: {args.blocks} blocks per phase; do_bench: warmup {args.warmup_ms} ms, "
          f"rep {args.rep_ms} ms, median")
    print()
    head = (f"{'phase':<9} {'bench ms':>10} {'events ms':>10} {'do_bench ms':>12} "
            f"{'events vs bench':>16} {'do_bench vs bench':>18}")
    print(head)
    print("-" * len(head))
    ok = True
    rows: dict[str, Any] = {}
    for n in PHASES:
        de, dd = rel(events_ms[n], bench_ms[n]), rel(dobench_ms[n], bench_ms[n])
        ve, vd = verdict(de, args.tolerance), verdict(dd, args.tolerance)
        ok = ok and ve != "FAIL" and vd != "FAIL"
        print(f"{n:<9} {bench_ms[n]:>10.4f} {events_ms[n]:>10.4f} {num(dobench_ms[n], '.4f'):>12} "
              f"{num(de, '+.2%'):>10} {ve:<5} {num(dd, '+.2%'):>12} {vd:<5}".rstrip())
        rows[n] = {
            "bench_ms": bench_ms[n], "events_ms": events_ms[n], "do_bench_ms": dobench_ms[n],
            "events_vs_bench": de, "do_bench_vs_bench": dd, "events_verdict": ve, "do_bench_verdict": vd,
            "calls_per_block": numbers[n], "bench_samples_ms": [s * 1e3 for s in ct[n].samples_s],
            "events_samples_ms": ev[n],
        }
    print()
    print("R = T(gradient)/T(forward): "
          + ", ".join(f"{k} {num(v, '.3f')}" for k, v in ratios.items())
          + f"  (events vs bench {num(rel(ratios['events'], ratios['bench']), '+.2%')}, "
          f"do_bench vs bench {num(rel(ratios['do_bench'], ratios['bench']), '+.2%')}; "
          "not part of the verdict)")
    tol = f"{args.tolerance:.0%}"
    print(f"verdict: {'all agree within ' + tol if ok else 'DISAGREE: some time differs by more than ' + tol}"
          + (" (bench vs events only)" if do_bench is None else ""))

    code = 0 if ok else 1
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "case": params, "suite": "mlp_regression", "device": str(device), "device_name": device_name,
            "torch": fw.version(), "cuda_build": settings["cuda_build"], "triton": triton_version,
            "allow_tf32": args.allow_tf32, "l2": args.l2, "l2_note": l2_note, "budget_s": args.budget,
            "blocks": args.blocks, "warmup_ms": args.warmup_ms, "rep_ms": args.rep_ms,
            "tolerance": args.tolerance, "bench_rounds": ct.rounds, "phases": rows, "ratio": ratios,
            "agree": ok, "exit_code": code,
        }
        args.json.write_text(json.dumps(finite(doc), indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except Unusable as exc:
        print(f"crosscheck_gpu: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError, without importing torch
            first = str(exc).splitlines()[0] if str(exc) else ""
            print(f"crosscheck_gpu: out of GPU memory ({first}); choose a smaller case", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
