"""The cost of storing one finished case as the run grows (called by store_scale.py, or alone).

    python scripts/store_scale_write.py [--rows 100,10000,50000]

A run is grown case by case in batches, and at each size one more case (5 rows)
is appended and timed: with a shard per case the cost stays flat.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's bench, installed or not

from bench import store  # noqa: E402
from bench.core.records import PHASES, Record  # noqa: E402


def case_rows(i: int) -> list[Record]:
    return [Record(run_id="r", machine="m", suite="s", case=f"batch={i}", params="{}", framework="torch",
                   framework_version="1", mode="eager", device="cpu", phase=p, status="ok", median_s=1e-3,
                   samples_s=(1e-3,) * 20, rounds=20) for p in PHASES]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="100,10000,50000")
    args = ap.parse_args(argv)
    sizes = sorted(int(float(x)) for x in args.rows.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        writer = store.new_run(Path(tmp), "m", "20261126T000000Z-0000000000000000", {"run_id": "r"})
        n = 0
        for size in sizes:
            batch: list[Record] = []
            while n * len(PHASES) + len(batch) < size - len(PHASES):
                batch += case_rows(n * 1000 + len(batch))
            if batch:
                writer.append(batch)
                n += len(batch) // len(PHASES)
            start = time.perf_counter()
            writer.append(case_rows(10**9 + size))
            n += 1
            print(f"    write one case at {size:>6} rows: {1e3 * (time.perf_counter() - start):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
