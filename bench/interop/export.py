"""Results in other formats: CSV, Markdown, and pytest-benchmark's JSON.

The pytest-benchmark file is what ``pytest --benchmark-json`` writes, so that
``pytest-benchmark compare`` reads bench runs beside pytest's own; its
statistics are computed by pytest-benchmark's own ``Stats`` from bench's raw
per-round samples. ``bench.interop.importer`` reads such files back.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench.core import clock
from bench.core.errors import UserError
from bench.core.records import CASE_KEY
from bench.present.tables import inert

# The columns a person wants in a flat table (the raw samples stay in Parquet).
TABLE_COLUMNS = [
    "machine", "run_id", "suite", "case", "framework", "mode", "device", "dtype", "phase", "status",
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
# The columns to_markdown reads.
MARKDOWN_COLUMNS = ("machine", "run_id", "suite", "case", "framework", "mode", "device", "dtype", "phase",
                    "status", "reason", "median_s", "ratio", "ratio_ci_low", "ratio_ci_high", "theory_ratio",
                    "memory_ratio", "theory_memory_ratio", "quality")
# The columns to_pytest_benchmark reads: the raw samples, and what extra_info carries.
PYTEST_BENCHMARK_COLUMNS = ("machine", "run_id", "suite", "case", "framework", "mode", "device", "phase",
                            "status", "samples_s", "calls_per_block", *EXTRA_NUMBERS, *EXTRA_TEXTS, "threads")
# What `bench export --format F` reads from the store (store.read_runs(columns=...)).
COLUMNS = {"csv": tuple(TABLE_COLUMNS), "markdown": MARKDOWN_COLUMNS,
           "pytest-benchmark": PYTEST_BENCHMARK_COLUMNS}


def table(df):
    """The flat table of a results DataFrame (columns that exist, in a fixed order)."""
    return df[[c for c in TABLE_COLUMNS if c in df.columns]]


def to_csv(df) -> str:
    return inert(table(df)).to_csv(index=False)


def to_markdown(df) -> str:
    """A table for people: one line per case, times in ms, R with its CI, and how far to trust it.

    The CSV keeps every column; this is the table to paste into an issue or a
    pull request. Machine and run columns appear only when there are several.
    """
    import pandas as pd

    from bench.core import fmt
    from bench.present.tables import markdown_table

    keys = ["machine", "run_id", *CASE_KEY]
    lines = []
    for key, g in df.groupby(keys, sort=False, dropna=False):
        by = {r["phase"]: r for _, r in g.iterrows()}
        f, gr = by.get("forward"), by.get("gradient")
        if f is None or gr is None:
            continue
        row = dict(zip(keys, key, strict=True))
        measured = gr["status"] == "ok"
        lines.append({
            **{k: row[k] for k in ("machine", "run_id")},
            "suite": row["suite"], "case": row["case"], "framework": f"{row['framework']} {row['mode']}",
            "device": row["device"],
            "forward ms": fmt.ms(float(f["median_s"])) if f["status"] == "ok" else "-",
            "gradient ms": fmt.ms(float(gr["median_s"])) if measured else "-",
            "R [95% CI]": fmt.ratio(float(gr["ratio"]), float(gr["ratio_ci_low"]), float(gr["ratio_ci_high"]))
            if measured else "-",
            "theory": fmt.ratio(float(gr["theory_ratio"])),
            # Memory: M = peak bytes of the gradient over the forward's, with its theory.
            "M (theory)": _memory(gr),
            "status": (gr["quality"] or "ok") if measured else f"{gr['status']}: {gr['reason']}",
        })
    out = pd.DataFrame(lines)
    for col in ("machine", "run_id"):
        if col in out and out[col].nunique() <= 1:
            out = out.drop(columns=col)
    if "M (theory)" in out and (out["M (theory)"] == "-").all():
        out = out.drop(columns="M (theory)")
    return markdown_table(out) if len(out) else "(no case has both a forward and a gradient row)\n"


def _memory(gradient) -> str:
    """M (the gradient's peak bytes over the forward's) with its theory, or "-"."""
    from bench.core import fmt

    m = float(gradient.get("memory_ratio", math.nan))
    if not math.isfinite(m):
        return "-"
    return f"{fmt.ratio(m)} ({fmt.ratio(float(gradient.get('theory_memory_ratio', math.nan)))})"


def exportable(df):
    """The rows a pytest-benchmark file can hold, and how many measured rows it cannot.

    pytest-benchmark's statistics need the raw samples: a measured row
    without them (an imported median) or with a sample that is not a
    positive time is left out, and counted.
    """
    import pandas as pd

    measured = df[(df.status == "ok") & (df.phase != "backward")]
    keep = pd.Series([_positive_times(s) for s in measured.samples_s], index=measured.index, dtype=bool)
    return measured[keep], int((~keep).sum())


def _positive_times(samples: Any) -> bool:
    try:
        values = [float(s) for s in samples]
    except (TypeError, ValueError):
        return False
    return bool(values) and all(math.isfinite(v) and v > 0 for v in values)


def to_pytest_benchmark(df, metadata: list[dict[str, Any]]) -> str:
    """A pytest-benchmark JSON document with one benchmark per measured row with samples (``exportable``)."""
    try:
        from pytest_benchmark import __version__ as pb_version
        from pytest_benchmark.stats import Stats
    except ImportError:
        raise UserError("the pytest-benchmark format needs pytest-benchmark: "
                        "pip install pytest-benchmark") from None
    first = next((m for m in metadata if isinstance(m, dict)), {})
    fp = first.get("fingerprint")
    if not isinstance(fp, dict):
        fp = {}
    benchmarks = []
    for r in exportable(df)[0].itertuples():
        stats = Stats()
        for s in r.samples_s:
            stats.update(float(s))
        calls = _whole(r.calls_per_block)
        name = f"{r.suite}[{r.case}-{r.framework}-{r.mode}-{r.device}-{r.phase}]"
        benchmarks.append({
            "group": f"{r.suite}:{r.phase}",
            "name": name,
            "fullname": f"bench::{name}",
            "params": {"case": r.case, "framework": r.framework, "mode": r.mode,
                       "device": r.device, "phase": r.phase},
            "param": f"{r.case}-{r.framework}-{r.mode}-{r.device}-{r.phase}",
            "extra_info": {"machine": r.machine, "run_id": r.run_id, "calls_per_block": calls, **_extra(r)},
            "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5,
                        "max_time": 0, "min_time": 0, "warmup": True},
            "stats": {**stats.as_dict(), "iterations": calls, "data": [float(s) for s in r.samples_s]},
        })
    doc = {
        "machine_info": {
            "node": str(first.get("machine", "")),
            "processor": str(fp.get("cpu", "")), "machine": str(fp.get("arch", "")),
            "python_implementation": "CPython", "python_version": str(fp.get("python", "")),
            "python_compiler": "", "release": "", "system": str(fp.get("os", "")),
            "cpu": {"brand_raw": str(fp.get("cpu", ""))},
        },
        "commit_info": {},
        "benchmarks": benchmarks,
        "datetime": clock.now(),
        "version": pb_version,
    }
    try:
        return json.dumps(doc, indent=2, allow_nan=False)
    except ValueError as exc:  # JSON has no NaN: samples at the edge of float overflowed a statistic
        raise UserError(f"a statistic of these samples is not finite ({exc}): "
                        "use --format csv") from None


def _whole(x: Any) -> int:
    """Calls per block as pytest-benchmark's iterations: a whole number of at least 1."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return 1
    return int(value) if math.isfinite(value) and 1 <= value < 2**53 else 1


def _extra(row: Any) -> dict[str, Any]:
    """The EXTRA_NUMBERS that are finite and the EXTRA_TEXTS that are set, of one row (a namedtuple)."""
    out: dict[str, Any] = {}
    for col in EXTRA_NUMBERS:
        try:
            value = float(getattr(row, col, math.nan))
        except (TypeError, ValueError):  # a hand-edited file may hold text: it is no number to carry
            continue
        if math.isfinite(value):
            out[col] = value
    for col in EXTRA_TEXTS:
        text = getattr(row, col, "")
        if isinstance(text, str) and text:
            out[col] = text
    try:
        threads = float(getattr(row, "threads", 0))
    except (TypeError, ValueError):
        threads = 0.0
    if math.isfinite(threads) and threads.is_integer() and 1 <= threads <= 2**40:
        out["threads"] = int(threads)  # where pytest suites/ writes it too
    return out
