"""Results in other formats: CSV, Markdown, and pytest-benchmark's JSON.

The pytest-benchmark file is what ``pytest --benchmark-json`` writes, so that
``pytest-benchmark compare`` reads bench runs beside pytest's own; its
statistics are computed by pytest-benchmark's own ``Stats`` from bench's raw
per-round samples.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from bench.errors import UserError

# The columns a person wants in a flat table (the raw samples stay in Parquet).
TABLE_COLUMNS = [
    "machine", "run_id", "suite", "case", "framework", "mode", "device", "phase", "status",
    "median_s", "ci_low_s", "ci_high_s", "iqr_s", "min_s", "rounds", "first_call_s", "ratio",
    "ratio_ci_low", "ratio_ci_high", "theory_ratio", "flops", "flops_per_s", "equiv_error",
    "threads", "reason",
]


def table(df):
    """The flat table of a results DataFrame (columns that exist, in a fixed order)."""
    return df[[c for c in TABLE_COLUMNS if c in df.columns]]


def to_csv(df) -> str:
    return table(df).to_csv(index=False)


def to_markdown(df) -> str:
    from bench.report.data import markdown_table

    return markdown_table(table(df))


def to_pytest_benchmark(df, metadata: list[dict[str, Any]]) -> str:
    """A pytest-benchmark JSON document with one benchmark per measured row."""
    try:
        from pytest_benchmark import __version__ as pb_version
        from pytest_benchmark.stats import Stats
    except ImportError:
        raise UserError("the pytest-benchmark format needs pytest-benchmark: "
                        "pip install pytest-benchmark") from None
    fp = (metadata[0].get("fingerprint") if metadata else None) or {}
    benchmarks = []
    for r in df[(df.status == "ok") & (df.phase != "backward")].itertuples():
        stats = Stats()
        for s in r.samples_s:
            stats.update(float(s))
        name = f"{r.suite}[{r.case}-{r.framework}-{r.mode}-{r.device}-{r.phase}]"
        benchmarks.append({
            "group": f"{r.suite}:{r.phase}",
            "name": name,
            "fullname": f"bench::{name}",
            "params": {"case": r.case, "framework": r.framework, "mode": r.mode,
                       "device": r.device, "phase": r.phase},
            "param": f"{r.case}-{r.framework}-{r.mode}-{r.device}-{r.phase}",
            "extra_info": {"machine": r.machine, "run_id": r.run_id, "ratio": float(r.ratio),
                           "calls_per_block": int(r.calls_per_block)},
            "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5,
                        "max_time": 0, "min_time": 0, "warmup": True},
            "stats": {**stats.as_dict(), "iterations": int(r.calls_per_block) or 1,
                      "data": [float(s) for s in r.samples_s]},
        })
    doc = {
        "machine_info": {
            "node": str(metadata[0].get("machine", "")) if metadata else "",
            "processor": fp.get("cpu", ""), "machine": fp.get("arch", ""),
            "python_implementation": "CPython", "python_version": fp.get("python", ""),
            "python_compiler": "", "release": "", "system": fp.get("os", ""),
            "cpu": {"brand_raw": fp.get("cpu", "")},
        },
        "commit_info": {},
        "benchmarks": benchmarks,
        "datetime": datetime.now(timezone.utc).isoformat(),
        "version": pb_version,
    }
    return json.dumps(doc, indent=2)


def from_pytest_benchmark(doc: dict[str, Any], run_id: str, machine: str) -> tuple[list, list[str]]:
    """bench records from a pytest-benchmark JSON document, and the names it could not place.

    A benchmark is placed when it says which suite, case, framework, mode,
    device and phase it timed: those written by ``bench export`` or by
    ``pytest suites/ --benchmark-only``. Raw samples come from ``stats.data``
    when the file has them (``--benchmark-save-data``).
    """
    import math

    from bench.spec import PHASES, Record

    records, skipped = [], []
    stamp = str(doc.get("datetime", ""))
    for b in doc.get("benchmarks", []):
        suite, _, phase = str(b.get("group", "")).partition(":")
        info = {**(b.get("extra_info") or {}), **(b.get("params") or {})}
        if phase not in PHASES or not {"case", "framework"} <= set(info):
            skipped.append(str(b.get("name", "?")))
            continue
        st = b.get("stats") or {}
        samples = tuple(float(x) for x in st.get("data") or ())
        records.append(Record(
            run_id=run_id, machine=machine, suite=suite, case=str(info["case"]),
            params=json.dumps({"case": info["case"]}), framework=str(info["framework"]),
            framework_version="", mode=str(info.get("mode", "")), device=str(info.get("device", "cpu")),
            phase=phase, status="ok", reason="imported from pytest-benchmark",
            median_s=float(st.get("median", math.nan)), iqr_s=float(st.get("iqr", math.nan)),
            min_s=float(st.get("min", math.nan)), rounds=int(st.get("rounds", 0)),
            calls_per_block=int(st.get("iterations", 1)), samples_s=samples, timestamp=stamp,
        ))
    return records, skipped
