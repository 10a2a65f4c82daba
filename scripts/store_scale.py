"""How bench's store, report and compare scale with the number of rows.

    python scripts/store_scale.py [--rows 10000,100000] [--keep DIR] [--skip report,compare]

For each size it writes a synthetic results run with that many rows (unique
cases: suites x cases x frameworks x 5 phases, 20 samples per row), then times
and measures the peak memory (of the child process) of:

- ``bench.load`` of the run, whole and with the columns ``bench report`` and ``bench compare`` read
  (``columns=``: every column but the raw samples, and compare's keys, samples and memory);
- ``bench report`` of the run (and the HTML page's size);
- ``bench compare`` of the run against a copy of itself (the command, printing, and apart from it
  ``compare-api``: ``bench.stats.change.compare``, ``compare_ratios`` and ``summary`` on the loaded rows);
- writing one more case to a run of that size (``ResultsWriter.append``).

Each command runs in its own process (``/usr/bin/time``-style: wall time from
here, peak RSS of that child alone from ``os.wait4``). The load average is
printed before each size: what else ran beside the measurement.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's bench, installed or not

from bench import store  # noqa: E402
from bench.core.records import PHASES  # noqa: E402
from bench.store import schema  # noqa: E402

FRAMEWORKS = (("torch", "eager"), ("jax", "jit"), ("tensorflow", "function"))
# The columns the commands read (issue #12): the report every column but the raw lists it never
# shows; compare the keys, the run, the status and what compare.compare, compare_ratios and pooled use.
REPORT_COLUMNS = [f.name for f in schema.SCHEMA if f.name not in ("samples_s", "process_rounds")]
COMPARE_COLUMNS = ["run_id", "suite", "case", "framework", "mode", "device", "phase", "dtype", "status",
                   "median_s", "samples_s", "quality", "peak_bytes", "memory_ratio", "saved_bytes"]


def synthetic_table(rows: int, run_id: str, machine: str, seed: int = 0) -> pa.Table:
    """``rows`` result rows with unique (suite, case, framework, phase) and plausible numbers."""
    rng = np.random.default_rng(seed)
    per_case = len(FRAMEWORKS) * len(PHASES)
    cases = -(-rows // per_case)
    n = cases * per_case
    case_idx = np.repeat(np.arange(cases), per_case)
    fw_idx = np.tile(np.repeat(np.arange(len(FRAMEWORKS)), len(PHASES)), cases)
    phase_idx = np.tile(np.arange(len(PHASES)), cases * len(FRAMEWORKS))
    suite = np.array([f"suite_{i % 10}" for i in range(cases)])[case_idx]
    case = np.array([f"batch={64 * (1 + i // 10)},width={128 + i % 10}" for i in range(cases)])[case_idx]
    fwd = 1e-4 * np.exp(rng.normal(0, 1, cases))[case_idx]
    phase_factor = np.array([1.0, 2.6, 1.6, 1.5, 2.7])[phase_idx]
    median = fwd * phase_factor * np.exp(rng.normal(0, 0.02, n))
    samples = median[:, None] * np.exp(rng.normal(0, 0.03, (n, 20)))
    ratio = median / fwd
    cols: dict[str, object] = {
        "run_id": [run_id] * n, "machine": [machine] * n, "suite": suite, "case": case,
        "params": ["{}"] * n,
        "framework": np.array([f for f, _ in FRAMEWORKS])[fw_idx], "framework_version": ["1"] * n,
        "mode": np.array([m for _, m in FRAMEWORKS])[fw_idx], "device": ["cpu"] * n,
        "phase": np.array(PHASES)[phase_idx], "status": ["ok"] * n,
        "median_s": median, "iqr_s": median * 0.04, "min_s": median * 0.95,
        "ci_low_s": median * 0.98, "ci_high_s": median * 1.02, "rounds": [20] * n,
        "calls_per_block": [10] * n, "samples_s": list(samples), "process_rounds": [[20]] * n,
        "ratio": ratio, "ratio_ci_low": ratio * 0.98, "ratio_ci_high": ratio * 1.02,
        "flops": median * 1e10, "flops_per_s": [1e10] * n, "theory_ratio": phase_factor,
        "quality": ["good"] * n, "threads": [2] * n, "dtype": ["float32"] * n, "l2": ["warm"] * n,
    }
    arrays = []
    for field in schema.SCHEMA:
        if field.name in cols:
            arrays.append(pa.array(cols[field.name], type=field.type))
        else:
            arrays.append(pa.nulls(n, type=field.type))
    table = pa.Table.from_arrays(arrays, schema=schema.SCHEMA)
    meta = {"run_id": run_id, "machine": machine, "format_version": store.FORMAT_VERSION,
            "started": "2026-11-26T00:00:00+00:00", "finished": "2026-11-26T01:00:00+00:00",
            "settings": {"threads": 2}, "fingerprint": {"cpu": "synthetic"}}
    return table.slice(0, rows).replace_schema_metadata({schema.METADATA_KEY: json.dumps(meta).encode()})


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GB) of this child alone, and its last output line.

    ``os.wait4`` gives the rusage of the one child waited for; ``RUSAGE_CHILDREN`` would give the
    largest of every child so far, so a command smaller than an earlier one would show its peak.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    last = (stdout.strip().splitlines() or stderr.strip().splitlines() or [""])[-1]
    if proc.returncode not in (0, 1):
        last = f"exit {proc.returncode}: {stderr.strip()[-300:]}"
    return wall, usage.ru_maxrss / 2**20, last


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="10000,100000,1000000", help="comma-separated sizes")
    ap.add_argument("--keep", type=Path, help="write the runs under DIR instead of a temporary folder")
    ap.add_argument("--skip", default="", help="comma-separated: load, report, compare, compare-api, write")
    args = ap.parse_args(argv)
    sizes = [int(float(x)) for x in args.rows.split(",") if x]
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        base = args.keep or Path(tmp)
        for rows in sizes:
            a = base / f"a{rows}" / "m" / f"20261126T000000Z-{rows:08x}.parquet"
            b = base / f"b{rows}" / "m" / f"20261126T000001Z-{rows:08x}.parquet"
            for path, rid in ((a, a.stem), (b, b.stem)):
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(synthetic_table(rows, rid, "m"), path)
            print(f"{rows:>9} rows ({a.stat().st_size / 2**20:.0f} MiB on disk), load average "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            py = sys.executable
            if "load" not in skip:
                # A checkout from before columns= (to measure the "before") reads whole only.
                selective = "columns" in inspect.signature(store.load).parameters
                for label, cols in (("", None), (" (report's)", REPORT_COLUMNS),
                                    (" (compare's)", COMPARE_COLUMNS))[:3 if selective else 1]:
                    how = f", columns={cols!r}" if cols else ""
                    w, m, _ = timed([py, "-c", f"import bench; print(len(bench.load({str(a)!r}{how})))"])
                    print(f"    bench.load{label:12s} {w:7.1f} s  {m:5.2f} GB")
            if "report" not in skip:
                html = base / f"r{rows}.html"
                w, m, last = timed([py, "-m", "bench", "report", str(a), "-o", str(html)])
                size = html.stat().st_size / 2**20 if html.exists() else float("nan")
                print(f"    bench report    {w:7.1f} s  {m:5.2f} GB  page {size:.1f} MiB  {last[:60]}")
            if "compare" not in skip:
                w, m, last = timed([py, "-m", "bench", "compare", str(a), str(b)])
                print(f"    bench compare   {w:7.1f} s  {m:5.2f} GB  {last[:60]}")
            if "compare-api" not in skip:
                code = ("import time, bench; from bench.stats import change; a = bench.load({a!r}); "
                        "b = bench.load({b!r}); t = time.monotonic(); table, _ = change.compare(a, b); "
                        "change.compare_ratios(a, b); change.summary(table); "
                        "print(f'{{len(table)}} rows compared in {{time.monotonic() - t:.1f}} s')")
                w, m, last = timed([py, "-c", code.format(a=str(a), b=str(b))])
                print(f"    compare (API)   {w:7.1f} s  {m:5.2f} GB  {last[:60]}")
    if "write" not in skip:
        print("writing one case as the run grows (scripts/store_scale_write.py):")
        done = subprocess.run([sys.executable, str(Path(__file__).with_name("store_scale_write.py"))],
                              cwd=ROOT, capture_output=True, text=True)
        print(done.stdout.rstrip() or done.stderr.strip()[-300:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
