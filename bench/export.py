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
    "ratio_ci_low", "ratio_ci_high", "theory_ratio", "flops", "flops_per_s", "peak_flops_per_s",
    "saved_bytes", "peak_bytes", "memory_ratio", "theory_saved_bytes", "theory_peak_bytes",
    "theory_memory_ratio", "memory_method", "l2", "throttled", "interference", "quality", "quality_reason",
    "equiv_error", "threads", "reason",
]
# Record columns a pytest-benchmark file carries in each benchmark's extra_info
# (pytest-benchmark has no place of its own for them), and ``bench import``
# restores: numbers (left out when NaN, which JSON lacks) and texts.
EXTRA_NUMBERS = ("ratio", "ratio_ci_low", "ratio_ci_high", "theory_ratio", "flops", "flops_per_s",
                 "peak_flops_per_s", "saved_bytes", "peak_bytes", "memory_ratio", "theory_saved_bytes",
                 "theory_peak_bytes", "theory_memory_ratio", "interference", "interference_max", "steal",
                 "drift")
EXTRA_TEXTS = ("memory_method", "l2", "throttled", "gpu_state", "quality", "quality_reason")


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
            "extra_info": {"machine": r.machine, "run_id": r.run_id,
                           "calls_per_block": int(r.calls_per_block), **_extra(r)},
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


def _extra(row) -> dict[str, Any]:
    """The EXTRA_NUMBERS that are finite and the EXTRA_TEXTS that are set, of one row (a namedtuple)."""
    import math

    out: dict[str, Any] = {}
    for col in EXTRA_NUMBERS:
        value = getattr(row, col, math.nan)
        if value is not None and math.isfinite(float(value)):
            out[col] = float(value)
    for col in EXTRA_TEXTS:
        value = getattr(row, col, "")
        if isinstance(value, str) and value:
            out[col] = value
    return out


def _restored(extra: dict[str, Any]) -> dict[str, Any]:
    """Record fields from a benchmark's extra_info: what ``_extra`` wrote, checked for type."""
    out: dict[str, Any] = {}
    for col in EXTRA_NUMBERS:
        value = extra.get(col)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[col] = float(value)
    for col in EXTRA_TEXTS:
        if isinstance(extra.get(col), str):
            out[col] = extra[col]
    return out


def from_pytest_benchmark(doc: dict[str, Any], run_id: str, machine: str) -> tuple[list, list[str]]:
    """bench records from a pytest-benchmark JSON document, and the names it could not place.

    A benchmark is placed when it says which suite, case, framework, mode,
    device and phase it timed: those written by ``bench export`` or by
    ``pytest suites/ --benchmark-only``. Raw samples come from ``stats.data``
    when the file has them (``--benchmark-save-data``); R, FLOPs, memory, the
    cache policy and throttling from ``extra_info`` when ``bench export`` put them there.
    """
    import math

    from bench.spec import PHASES, Record

    records, skipped = [], []
    stamp = str(doc.get("datetime", ""))
    for b in doc.get("benchmarks", []):
        suite, _, phase = str(b.get("group", "")).partition(":")
        extra = b.get("extra_info") if isinstance(b.get("extra_info"), dict) else {}
        info = {**extra, **(b.get("params") or {})}
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
            **_restored(extra),
        ))
    return records, skipped
