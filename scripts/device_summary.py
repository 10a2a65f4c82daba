"""The figures of a device check, from its results and cross-check files.

    python scripts/device_summary.py RESULTS OUTDIR [WIDE_CASE]

Writes OUTDIR/summary.txt (and prints it): R per framework and mode with
its 95 % CI for every GPU case; the three-way timing agreement from the
cross-checks (OUTDIR/crosscheck*.json); the wide MLP gradient's fraction of
the device's measured float32 matmul peak; M = peak(gradient)/peak(forward)
and the saved bytes on the depth sweep beside their theory; the cases during
which the GPU throttled; and every row that did not measure, with its reason.
``scripts/device_check.sh`` runs it; it reads what is there and says what
is missing, so a partial check still gets a summary.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import bench
from bench.core.device import is_gpu

MiB = 2**20
SWEEP = "batch=4096,width=1024,"  # scripts/device_check.sh's depth sweep


def fmt(x: float, spec: str = ".2f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def ratios(df: Any) -> list[str]:
    grad = df[(df.phase == "gradient") & (df.status == "ok")]
    lines = ["R = T(gradient) / T(forward), per case, with its 95 % CI (theory: FLOPs)"]
    for (fw, mode), g in grad.groupby(["framework", "mode"], sort=True):
        lines.append(f"  {fw} ({mode}): median R {fmt(g.ratio.median())} over {len(g)} cases")
        for r in g.sort_values(["suite", "flops"]).itertuples():
            lines.append(f"    {r.suite:<22} {r.case:<36} R {fmt(r.ratio)} "
                         f"[{fmt(r.ratio_ci_low)}, {fmt(r.ratio_ci_high)}]  theory {fmt(r.theory_ratio)}"
                         f"  l2 {r.l2}")
    return lines


def crosschecks(out: Path) -> list[str]:
    lines = ["Timing cross-check (torch, mlp_regression): bench vs CUDA events vs triton do_bench"]
    files = sorted(out.glob("crosscheck*.json"))
    if not files:
        return [*lines, "  no cross-check file (the step failed or did not run)"]
    for f in files:
        doc = json.loads(f.read_text())
        case = ",".join(f"{k}={v}" for k, v in doc["case"].items())
        lines.append(f"  {f.name}: {case}, L2 {doc['l2']}, {doc['device_name']}")
        for name, p in doc["phases"].items():
            ev, db = (p[k] * 100 if p[k] is not None else None
                      for k in ("events_vs_bench", "do_bench_vs_bench"))
            lines.append(
                f"    {name:<9} bench {fmt(p['bench_ms'], '.3f')} ms, events {fmt(p['events_ms'], '.3f')} ms"
                f" ({fmt(ev, '+.2f')} %), do_bench {fmt(p['do_bench_ms'], '.3f')} ms ({fmt(db, '+.2f')} %)"
            )
        r = doc["ratio"]
        lines.append(f"    R: bench {fmt(r['bench'], '.3f')}, events {fmt(r['events'], '.3f')}, "
                     f"do_bench {fmt(r['do_bench'], '.3f')}; agree within "
                     f"{doc['tolerance']:.0%}: {doc['agree']}")
    return lines


def fraction_of_peak(df: Any, wide: str) -> list[str]:
    lines = [f"Fraction of the device's float32 matmul peak ({wide}, TF32 off)"]
    rows = df[(df.case == wide) & (df.status == "ok") & df.phase.isin(["forward", "gradient", "step"])]
    if rows.empty:
        return [*lines, "  the wide case did not measure"]
    for r in rows.sort_values(["framework", "phase"]).itertuples():
        frac = r.flops_per_s / r.peak_flops_per_s if r.peak_flops_per_s > 0 else math.nan
        lines.append(f"  {r.framework:<6} {r.phase:<9} {fmt(r.flops_per_s / 1e12)} of "
                     f"{fmt(r.peak_flops_per_s / 1e12)} TFLOP/s = {fmt(100 * frac, '.1f')} %  "
                     f"({fmt(r.median_s * 1e3, '.3f')} ms)")
    return lines


def memory(df: Any) -> list[str]:
    lines = [f"Memory on the depth sweep ({SWEEP}depth=...): M = peak(gradient)/peak(forward)"]
    sweep = df.case.str.startswith(SWEEP)
    grad = df[(df.phase == "gradient") & (df.status == "ok") & sweep]
    if grad.empty:
        return [*lines, "  the depth sweep did not measure"]
    for r in grad.sort_values(["framework", "flops"]).itertuples():
        fwd = df[(df.case == r.case) & (df.framework == r.framework) & (df["mode"] == r.mode)
                 & (df.phase == "forward") & (df.run_id == r.run_id)]
        fpeak = fwd.peak_bytes.iloc[0] if len(fwd) else math.nan
        lines.append(
            f"  {r.framework:<6} {r.case:<28} M {fmt(r.memory_ratio)} (theory {fmt(r.theory_memory_ratio)}); "
            f"peak fwd {fmt(fpeak / MiB, '.1f')} MiB, grad {fmt(r.peak_bytes / MiB, '.1f')} MiB; saved "
            f"{fmt(r.saved_bytes / MiB, '.1f')} MiB = "
            f"{fmt(r.saved_bytes / r.theory_saved_bytes, '.3f')} x theory"
        )
    return lines


def throttling(df: Any) -> list[str]:
    gpu = df[df.device.map(is_gpu)]
    hit = gpu[gpu.throttled.fillna("") != ""].drop_duplicates(["run_id", "framework", "mode", "case"])
    lines = [f"Throttling (NVML): {len(hit)} of "
             f"{len(gpu.drop_duplicates(['run_id', 'framework', 'mode', 'case']))} GPU cases"]
    lines += [f"  {r.framework} {r.case}: {r.throttled}" for r in hit.itertuples()]
    states = [json.loads(s) for s in gpu.gpu_state.fillna("") if s]
    if states:
        after = [s.get("after", {}) for s in states]
        clocks = [a["sm_clock_mhz"] for a in after if "sm_clock_mhz" in a]
        temps = [a["temperature_c"] for a in after if "temperature_c" in a]
        if clocks:
            lines.append(f"  SM clock after each case: {min(clocks)}-{max(clocks)} MHz; "
                         f"temperature {min(temps, default=math.nan)}-{max(temps, default=math.nan)} C")
    else:
        lines.append("  no NVML state recorded")
    return lines


def not_measured(df: Any) -> list[str]:
    bad = df[~df.status.isin(["ok", "skipped"])]
    skipped = df[df.status == "skipped"].drop_duplicates(["framework", "mode", "phase", "reason"])
    lines = [f"Rows not measured: {len(bad)} failed/error/crashed"]
    lines += [f"  {r.framework} ({r.mode}) {r.suite} {r.case} {r.phase}: {r.status}: {r.reason}"
              for r in bad.itertuples()]
    lines += [f"  skipped: {r.framework} ({r.mode}) {r.phase}: {r.reason}" for r in skipped.itertuples()]
    return lines


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    results, out = Path(argv[0]), Path(argv[1])
    wide = argv[2] if len(argv) == 3 else "batch=8192,width=4096,depth=4"
    try:
        df = bench.load(results)
    except bench.UserError as exc:
        print(f"device_summary: {exc}", file=sys.stderr)
        df = None
    sections = [crosschecks(out)]
    if df is not None:
        env = df.drop_duplicates(["framework", "device_name", "framework_version"])
        sections.insert(0, ["Devices: " + "; ".join(
            f"{r.framework} {r.framework_version} on {r.device} ({r.device_name})"
            for r in env.itertuples())])
        sections += [ratios(df), fraction_of_peak(df, wide), memory(df), throttling(df), not_measured(df)]
    text = "\n\n".join("\n".join(s) for s in sections) + "\n"
    (out / "summary.txt").write_text(text)
    print(text)
    return 0 if df is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
