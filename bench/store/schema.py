"""The results format: its columns and types, its version, and the metadata every run carries.

Every stored file carries ``format_version``; a file of an unknown version is
refused with a message that says what to do. Reading checks the metadata's
shape (a JSON object of the known keys and types, not too deep) and every
column's type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import pyarrow as pa

from bench.core.cases import Case
from bench.core.errors import UserError
from bench.core.records import ROW_KEY, Record

FORMAT_VERSION = 3


@dataclass(frozen=True)
class Version:
    """One version of the results format: the columns every file of it has, and what changed."""

    number: int
    date: str
    required: tuple[str, ...]
    # Columns that came in while this version was current, without a version change (a mistake
    # version 3 ended): some files of the version have them, some do not.
    optional: tuple[str, ...]
    changes: str


_V1 = ("run_id", "machine", "suite", "case", "params", "framework", "framework_version", "mode", "device",
       "phase", "status", "reason", "device_name", "median_s", "iqr_s", "min_s", "ci_low_s", "ci_high_s",
       "rounds", "calls_per_block", "samples_s", "first_call_s", "ratio", "ratio_ci_low", "ratio_ci_high",
       "flops", "theory_ratio", "equiv_error", "equiv_tol", "threads", "allow_tf32", "dtype", "timestamp")
_V1_LATE = ("loss_curve", "flops_per_s", "load_avg")
_V2 = ("saved_bytes", "peak_bytes", "memory_ratio", "theory_saved_bytes", "theory_peak_bytes",
       "theory_memory_ratio", "memory_method", "peak_flops_per_s", "l2", "gpu_state", "throttled")
_V2_LATE = ("interference", "interference_max", "steal", "drift", "recalibrations", "quality",
            "quality_reason", "process_rounds", "precision_target")
VERSIONS = {
    1: Version(1, "2026-11-25", _V1, _V1_LATE, "the first results format"),
    2: Version(2, "2026-11-26", (*_V1, *_V1_LATE, *_V2), _V2_LATE,
               "memory (saved and peak bytes, M and their theory), the matmul peak, the cache policy and "
               "the GPU state"),
    3: Version(3, "2026-12-07", (*_V1, *_V1_LATE, *_V2, *_V2_LATE), (),
               "every column required; imported rows' params hold the case's parameters, not "
               "{\"case\": id}"),
}

# What each column holds: the results schema's documentation (docs/schema.md is made
# from it, and a test keeps it complete).
COLUMN_DOCS = {
    "run_id": "the run: UTC start time and 16 random hex digits, e.g. `20261125T215354Z-f68b0c1e2d3a4b5c`",
    "machine": "the machine's results folder: a slug of the CPU model and a hash of the hardware, or "
               "`--machine NAME`",
    "suite": "the suite (model family), e.g. `mlp_regression`",
    "case": "the case id, its parameters as `name=value` joined by commas: `batch=256,width=512,depth=4`",
    "params": "the case's parameters as a JSON object (`{}` for an imported case whose id names none)",
    "framework": "`torch`, `tensorflow` or `jax`",
    "framework_version": "the framework's version, e.g. `2.13.0`",
    "mode": "how the framework ran the model: torch `eager` or `compile`; tensorflow `eager`, "
            "`function` or `xla`; jax `jit`",
    "device": "`cpu` or `cuda:N`",
    "phase": "what was timed: `forward`, `gradient`, `backward` (gradient minus forward, per round), "
             "`backward_split` (the backward pass alone) or `step` (gradient and optimizer update)",
    "status": "`ok` timed; `failed` the equivalence check failed, not timed; `error` the case raised; "
              "`skipped` not possible here; `crashed` the worker died or hung",
    "reason": "why, for any status but `ok`",
    "device_name": "the device's name as the framework reports it (the GPU's model)",
    "median_s": "seconds per call: the median over rounds (all processes)",
    "iqr_s": "the interquartile range of the rounds, in seconds",
    "min_s": "the fastest round, in seconds per call",
    "ci_low_s": "the low end of the median's 95 % interval (over processes when there are several)",
    "ci_high_s": "the high end of the median's 95 % interval",
    "rounds": "paired rounds timed",
    "calls_per_block": "calls per timed block (0 on derived `backward` rows)",
    "samples_s": "every round's seconds per call, in order",
    "process_rounds": "the rounds each worker process contributed to `samples_s`, in order (empty: one "
                      "process)",
    "first_call_s": "the first call alone, tracing and compilation included",
    "ratio": "T(phase) / T(forward), paired by round: **R** on `gradient` rows, R - 1 on `backward` rows, "
             "1 on `forward` rows",
    "ratio_ci_low": "the low end of `ratio`'s 95 % interval",
    "ratio_ci_high": "the high end of `ratio`'s 95 % interval",
    "flops": "analytic FLOPs of one call of this phase (matrix products; `step` adds the update's)",
    "flops_per_s": "achieved FLOP/s: `flops / median_s`",
    "theory_ratio": "`flops` over the forward pass's FLOPs: the FLOP prediction of `ratio`",
    "equiv_error": "the largest relative error of the loss and gradients against the float64 reference",
    "equiv_tol": "the tolerance that error was held to",
    "saved_bytes": "bytes the framework keeps from the forward pass for the backward pass (the same on "
                   "every row of a case)",
    "peak_bytes": "extra bytes at the peak of one call of this phase, beyond what was resident before it",
    "memory_ratio": "`peak_bytes` over the forward pass's: **M** on `gradient` rows",
    "theory_saved_bytes": "the suite's `memory(params)`: bytes saved for the backward pass",
    "theory_peak_bytes": "the suite's `memory(params)`: the peak of this phase",
    "theory_memory_ratio": "the theory of `memory_ratio`",
    "memory_method": "how this framework's memory was measured on this device, or why not",
    "peak_flops_per_s": "the device's float32 matmul rate, measured in this framework when its worker "
                        "started",
    "l2": "the cache policy of the timed blocks: `warm` or `flush`",
    "gpu_state": "GPU rows: NVML clocks, power, temperature and throttle counters before and after the "
                 "case (JSON)",
    "throttled": "the clock slowdowns seen during the case, or `\"\"`",
    "loss_curve": "`step` rows: the loss before each of the first optimizer steps",
    "load_avg": "the machine's 1-minute load average when the case started",
    "interference": "CPU other processes took during the timed rounds, in CPUs, over all rounds together",
    "interference_max": "the most CPU other processes took in any 1 s stretch of the rounds",
    "steal": "steal time during the rounds (a busy virtual-machine host), in CPUs, median over rounds",
    "drift": "the median per-call time over the calibrated one (1: the machine stayed the same)",
    "recalibrations": "how often the phase was calibrated again because it drifted more than 2x",
    "quality": "how far to trust the row: `good`, `noisy` or `unreliable` (`\"\"` when not measured)",
    "quality_reason": "why the row is noisy or unreliable",
    "precision_target": "the relative half-width `--precision` asked of R's interval (NaN: none asked)",
    "threads": "CPU threads every framework was given",
    "allow_tf32": "whether GPUs could use TF32 for float32 matrix products",
    "dtype": "the floating-point type of the data and parameters",
    "timestamp": "when the row was made (UTC, ISO 8601)",
}

METADATA_KEY = b"bench"

# Record's annotations are strings (postponed evaluation); map them to Arrow.
_ARROW_TYPES = {
    "str": pa.string(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "tuple[float, ...]": pa.list_(pa.float64()),
    "tuple[int, ...]": pa.list_(pa.int64()),
}

SCHEMA = pa.schema([pa.field(f.name, _ARROW_TYPES[str(f.type)]) for f in fields(Record)])

# Columns a file must have to be a bench results table (every version has them).
KEY_COLUMNS = ("run_id", "machine", *ROW_KEY, "status")
TIME_COLUMNS = ("median_s", "min_s", "ci_low_s", "ci_high_s")
RATIO_COLUMNS = ("ratio", "ratio_ci_low", "ratio_ci_high")

# Every column of a results table (``Record``'s fields), in order.
COLUMNS = tuple(f.name for f in fields(Record))

# The columns every read takes, whatever ``columns=`` asks for: what names a row and its run, and
# what validation checks (times, ratios, the raw samples and their process rounds). A read with
# ``columns=`` keeps the same rows as a whole read.
VALIDATION_COLUMNS = (*KEY_COLUMNS, *TIME_COLUMNS, *RATIO_COLUMNS, "samples_s", "process_rounds")

# Columns of one list of numbers per row.
_LISTS = frozenset(f.name for f in fields(Record) if f.type.startswith("tuple"))

# Metadata deeper than this is not bench's (bench writes at most 4 levels);
# deeper JSON would also overflow the stack of whatever walks it later.
MAX_METADATA_DEPTH = 32


# The known metadata keys and the JSON types they may hold (None: absent).
_METADATA_TYPES: dict[str, type | tuple[type, ...]] = {
    "run_id": str, "machine": str, "started": str, "finished": str, "interrupted": bool,
    "fingerprint": dict, "settings": dict, "frameworks": dict, "quality": dict,
    "devices": list, "suites": list, "frameworks_requested": list, "imported_from": str,
    "fleet": str,  # the fleet run (bench run --cluster) this run belongs to
}


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            if d > MAX_METADATA_DEPTH:
                break
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _parse_metadata(path: str, raw: bytes) -> dict[str, Any]:
    """The metadata JSON checked for shape: an object, not too deep, known keys of their types."""
    try:
        meta = json.loads(raw)
    except RecursionError as exc:
        raise UserError(f"{path} has corrupt bench metadata (nested too deeply); delete or move it") from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise UserError(f"{path} has corrupt bench metadata ({exc}); delete or move it") from exc
    if not isinstance(meta, dict):
        raise UserError(f"{path} has corrupt bench metadata (a JSON {type(meta).__name__}, not an object); "
                        "delete or move it")
    if _depth(meta) > MAX_METADATA_DEPTH:
        raise UserError(f"{path} has corrupt bench metadata (nested deeper than {MAX_METADATA_DEPTH} "
                        "levels); delete or move it")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(f"{path} has no valid results format version (format_version is "
                        f"{json.dumps(version)[:40]}, not a whole number): it is not a bench results "
                        "file, or a damaged one")
    if version not in VERSIONS:
        hint = "upgrade bench" if version > FORMAT_VERSION else "re-run it"
        raise UserError(
            f"{path} has results format version {version}, this bench reads version "
            f"{FORMAT_VERSION}: {hint} to read it"
        )
    for key, kind in _METADATA_TYPES.items():
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise UserError(f"{path} has corrupt bench metadata ({key} is a JSON "
                            f"{type(value).__name__}); delete or move it")
    # A container that is null reads as absent, so readers see one shape.
    return {k: v for k, v in meta.items()
            if not (v is None and _METADATA_TYPES.get(k) in (dict, list))}


def check_columns(columns: Iterable[str] | None) -> list[str] | None:
    """The column names a reader asked for (``columns=``), checked, in order, each once; None means
    every column.

    A programmer's mistake is a ValueError (or TypeError) naming what is wrong, not a UserError:
    no results file can fix it.
    """
    if columns is None:
        return None
    if isinstance(columns, str | bytes):
        raise TypeError(f"columns= takes a list of column names, not one string: columns=[{columns!r}]")
    names = list(dict.fromkeys(columns))
    unknown = [c for c in names if not isinstance(c, str) or c not in COLUMNS]
    if unknown:
        import difflib

        near = [m for c in unknown if isinstance(c, str) for m in difflib.get_close_matches(c, COLUMNS, 1)]
        hint = f" (did you mean {', '.join(map(repr, near))}?)" if near else ""
        raise ValueError(f"unknown column{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(c) for c in unknown)}{hint}: bench's columns are those of "
                         f"bench.core.records.Record ({', '.join(COLUMNS)})")
    return names


def markdown_reference() -> str:
    """The schema as Markdown: every column with its type, the version it came in and its meaning,
    then the versions of the format (docs/schema.md is built from this)."""
    arrow = {f.name: str(f.type).replace("list<item: ", "list<").replace("double", "float64")
             for f in SCHEMA}
    since: dict[str, int] = {}
    for v in sorted(VERSIONS.values(), key=lambda v: v.number):
        for c in (*v.required, *v.optional):
            since.setdefault(c, v.number)
    lines = ["| column | type | since | meaning |", "|---|---|---|---|"]
    lines += [f"| `{c}` | {arrow[c]} | {since[c]} | {COLUMN_DOCS[c]} |" for c in COLUMNS]
    lines += ["", f"The current format is version {FORMAT_VERSION}.", "",
              "| version | date | what changed |", "|---|---|---|"]
    for v in sorted(VERSIONS.values(), key=lambda v: -v.number):
        late = f" (later files of version {v.number} also have {', '.join(f'`{c}`' for c in v.optional)})" \
            if v.optional else ""
        lines.append(f"| {v.number} | {v.date} | {v.changes}{late} |")
    return "\n".join(lines) + "\n"


def check_version_columns(path: str, names: Sequence[str], version: int) -> None:
    """A UserError unless a file of ``version`` has every column that version requires: a missing
    one no longer reads as its default, it says the file is damaged."""
    missing = [c for c in VERSIONS[version].required if c not in names]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise UserError(f"{path} is damaged: results format version {version} has the column "
                        f"{missing[0]}, this file lacks it{more}; delete or move it")


def upgrade(table: pa.Table, version: int, wanted: frozenset[str] | None = None) -> pa.Table:
    """Rows read from a file of format ``version`` as the current version holds them: each step
    turns a version into the next (asv's ``update_to_N``). ``wanted``: the columns a reader asked
    for (None: all); a step adds only those."""
    for step in range(version, FORMAT_VERSION):
        table = _UPGRADES[step](table, wanted)
    return table


def _add_absent(table: pa.Table, names: Iterable[str], wanted: frozenset[str] | None) -> pa.Table:
    """``table`` with each of ``names`` it lacks as a column of nulls (read as the column's default)."""
    for name in names:
        if name not in table.column_names and (wanted is None or name in wanted):
            table = table.append_column(SCHEMA.field(name), pa.nulls(table.num_rows, SCHEMA.field(name).type))
    return table


def _to_2(table: pa.Table, wanted: frozenset[str] | None) -> pa.Table:
    """Version 1 to 2: the memory, peak, cache-policy and GPU-state columns, empty (not measured)."""
    return _add_absent(table, (*_V1_LATE, *_V2), wanted)


def _to_3(table: pa.Table, wanted: frozenset[str] | None) -> pa.Table:
    """Version 2 to 3: the columns later version-2 files have, empty where absent; and the params of
    imported rows, which held ``{"case": id}``, hold the parameters the case id names."""
    table = _add_absent(table, _V2_LATE, wanted)
    if "params" not in table.column_names or "case" not in table.column_names:
        return table
    params = table.column("params").to_pylist()
    cases = table.column("case").to_pylist()
    suites = table.column("suite").to_pylist()
    fixed = [Case.from_id(suite or "", case or "").params_json
             if p is not None and p == json.dumps({"case": case}) else p
             for p, case, suite in zip(params, cases, suites, strict=True)]
    if fixed == params:
        return table
    at = table.column_names.index("params")
    return table.set_column(at, table.field(at), pa.array(fixed, pa.string()))


_UPGRADES = {1: _to_2, 2: _to_3}
