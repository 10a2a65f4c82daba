"""Time `bench report` on a synthetic run of about N rows (default 500).

    python scripts/time_report.py            # prints the rows, the read and render times
    python scripts/time_report.py --rows 2000 --out /tmp/big.html

The run is made of hand-built ``bench.core.records.Record``s (no framework is
imported): 5 suites, torch, tensorflow and jax, on cpu and cuda:0, with as many
cases per suite as it takes to reach the number of rows, written with
``bench.store.writer.ResultsWriter`` like a real run, then read back and rendered.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.core.records import Record
from bench.store.writer import ResultsWriter

SUITES = ("attention_regression", "conv_regression", "custom", "linear_regression", "mlp_regression")
FRAMEWORKS = (("torch", "eager"), ("tensorflow", "function"), ("jax", "jit"))
DEVICES = ("cpu", "cuda:0")
PHASES = ("forward", "gradient", "backward", "backward_split", "step")


def synthetic_records(rows: int, run_id: str = "20260101T000000Z-0000", machine: str = "synthetic",
                      seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    per_case = len(FRAMEWORKS) * len(DEVICES) * len(PHASES)
    n_cases = max(1, math.ceil(rows / (per_case * len(SUITES))))
    out: list[Record] = []
    for si, suite in enumerate(SUITES):
        for c in range(n_cases):
            batch, width = 32 * 2 ** (c % 6), 64 * 2 ** (c // 6 % 4)
            case = f"batch={batch},width={width},depth={2 + si % 3}"
            fwd_flops = 2.0 * batch * width * width * (2 + si % 3)
            theory = 3 - 1 / (2 + si % 3)
            for fi, (fw, mode) in enumerate(FRAMEWORKS):
                for device in DEVICES:
                    speed = (2e10 if device == "cpu" else 5e11) * (1 + 0.3 * fi)
                    overhead = 2e-5 if device == "cpu" else 6e-5
                    t_f = overhead + fwd_flops / speed
                    r = theory * rng.uniform(0.8, 1.3) + overhead / t_f
                    times = {"forward": t_f, "gradient": t_f * r, "backward": t_f * (r - 1),
                             "backward_split": t_f * (r - 1) * 1.05, "step": t_f * r * 1.02}
                    flops = {"forward": fwd_flops, "gradient": fwd_flops * theory,
                             "backward": fwd_flops * (theory - 1), "backward_split": fwd_flops * (theory - 1),
                             "step": fwd_flops * theory + 4 * width * width}
                    curve = tuple(1.5 * 0.98 ** np.arange(20) * (1 + 1e-7 * fi))
                    for phase in PHASES:
                        t = times[phase]
                        base = dict(run_id=run_id, machine=machine, suite=suite, case=case,
                                    params=f'{{"batch": {batch}, "width": {width}}}', framework=fw,
                                    framework_version="1.0", mode=mode, device=device, phase=phase)
                        if fw == "tensorflow" and phase == "backward_split":
                            out.append(Record(**base, status="skipped", reason="tf.function traces "
                                              "forward and backward into one graph"))
                            continue
                        samples = tuple(t * rng.lognormal(0, 0.05, 50))
                        ratio = t / t_f
                        out.append(Record(
                            **base, status="ok", median_s=t, iqr_s=t * 0.05, min_s=t * 0.9,
                            ci_low_s=t * 0.98, ci_high_s=t * 1.02, rounds=50, calls_per_block=10,
                            samples_s=samples, first_call_s=t * 50 + (0.2 if mode != "eager" else 0.0),
                            ratio=ratio, ratio_ci_low=ratio * 0.95, ratio_ci_high=ratio * 1.05,
                            flops=flops[phase], flops_per_s=flops[phase] / t,
                            theory_ratio=flops[phase] / fwd_flops, equiv_error=1e-7, equiv_tol=1e-5,
                            loss_curve=curve if phase == "step" else (), threads=2,
                            device_name="cpu" if device == "cpu" else "NVIDIA H100"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500, help="about this many rows (default 500)")
    parser.add_argument("--out", type=Path, default=None, help="also write the page here")
    args = parser.parse_args(argv)

    from bench.present import report

    records = synthetic_records(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic" / "20260101T000000Z-0000.parquet"
        writer = ResultsWriter(path, {"run_id": "20260101T000000Z-0000", "machine": "synthetic",
                                      "fingerprint": {"cpu": "synthetic"}, "settings": {"threads": 2},
                                      "devices": list(DEVICES)})
        writer.append(records)
        writer.close(interrupted=False)
        t0 = time.perf_counter()
        df, metadata = report.read([path])
        t1 = time.perf_counter()
        html = report.render(df, metadata)
        t2 = time.perf_counter()
    if args.out:
        args.out.write_text(html, encoding="utf-8")
    print(f"rows: {len(df)}; read: {t1 - t0:.2f} s; render: {t2 - t1:.2f} s; page: {len(html) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
