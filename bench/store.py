"""The results store: one Parquet file per run, ``results/<machine>/<run-id>.parquet``.

Each file is one long table, one row per (suite, case, framework, mode,
device, phase) with raw samples and statistics, and carries in its Parquet
metadata the format version, the machine fingerprint and the run settings.
Files are rewritten whole after every case to a hidden temporary file that then
replaces the old one: a crash at any moment leaves the last complete file,
never a half-written one. The first write creates the file exclusively, so a
run never replaces another run's file.

Reading trusts nothing in a file: the metadata must be a JSON object of the
known shape, every column must hold its type, and an ``ok`` row whose times
or ratios are not plausible numbers (negative, zero, NaN, infinite, or beyond
``TIME_RANGE_S`` / ``RATIO_RANGE``) is left out with one warning per file;
any other number that is not finite or beyond ``VALUE_RANGE`` reads as missing (NaN).
Only regular files are read; hidden files (``.RUN.parquet.tmp``, what a killed
write leaves behind) and hidden folders are ignored.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import sys
from collections.abc import Iterable
from dataclasses import MISSING, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import UserError
from bench.spec import PHASES, STATUSES, Record

FORMAT_VERSION = 2
# Older versions this bench still reads. Version 1 lacked the memory, cache
# policy and GPU state columns: its rows read with those columns empty.
OLDER_VERSIONS = (1,)
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
SCHEMA = pa.schema([pa.field(f.name, _ARROW_TYPES[f.type]) for f in fields(Record)])

# Columns a file must have to be a bench results table (every version has them).
KEY_COLUMNS = ("run_id", "machine", "suite", "case", "framework", "mode", "device", "phase", "status")
# Seconds per call that can be a measurement: from a picosecond to about four
# months. A stored time outside this (or not a number) was not measured.
TIME_RANGE_S = (1e-12, 1e7)
# T(phase) / T(forward) that can be a measurement.
RATIO_RANGE = (1e-6, 1e6)
# The size of any other stored number that can be a measurement (FLOPs, bytes, rates, fractions);
# zero is a number too.
VALUE_RANGE = (1e-30, 1e30)
TIME_COLUMNS = ("median_s", "min_s", "ci_low_s", "ci_high_s")
RATIO_COLUMNS = ("ratio", "ratio_ci_low", "ratio_ci_high")
# Metadata deeper than this is not bench's (bench writes at most 4 levels);
# deeper JSON would also overflow the stack of whatever walks it later.
MAX_METADATA_DEPTH = 32
# The known metadata keys and the JSON types they may hold (None: absent).
_METADATA_TYPES: dict[str, type | tuple[type, ...]] = {
    "run_id": str, "machine": str, "started": str, "finished": str, "interrupted": bool,
    "fingerprint": dict, "settings": dict, "frameworks": dict, "quality": dict,
    "devices": list, "suites": list, "frameworks_requested": list, "imported_from": str,
}
_PARQUET_MAGIC = b"PAR1"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunExistsError(FileExistsError):
    """The results file of a new run is already there (another run's): it is never overwritten."""


class ResultsWriter:
    """Writes one run's records to ``path``, atomically, as they arrive.

    The file is created with the first record, so a run that measures
    nothing leaves nothing behind that looks like a result. That first write
    creates ``path`` exclusively: if a file is already there (another run with
    the same id) it raises ``RunExistsError`` and leaves that file alone.
    """

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        self.path = path
        self.metadata = {**metadata, "format_version": FORMAT_VERSION, "started": now()}
        self.metadata.setdefault("finished", None)
        self.records: list[Record] = []
        self._created = False
        # One temporary name per writer: two writers in one folder never share it.
        self._tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")

    def append(self, records: Iterable[Record]) -> None:
        self.records.extend(records)
        self.flush()

    def merge(self, records: Iterable[Record]) -> None:
        """Fold a further process's rows of a case into the rows stored for it (``analysis.merge``)."""
        from bench import analysis

        new: dict[tuple, list[Record]] = {}
        for r in records:
            new.setdefault(analysis.case_key(r), []).append(r)
        for key, rows in new.items():
            at = [i for i, r in enumerate(self.records) if analysis.case_key(r) == key]
            if not at:
                self.records.extend(rows)
                continue
            merged = analysis.merge([self.records[i] for i in at], rows)
            for i, r in zip(at, merged, strict=True):
                self.records[i] = r
        self.flush()

    def flush(self) -> None:
        if not self.records:
            return
        rows = [r.to_dict() for r in self.records]
        table = pa.Table.from_pylist(rows, schema=SCHEMA).replace_schema_metadata(
            {METADATA_KEY: json.dumps(self.metadata, default=str).encode()}
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self._publish(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)  # the last complete file stays as it was
            raise

    def _publish(self, tmp: Path) -> None:
        """Move the complete temporary file to ``path``: exclusively the first time, then by replacing."""
        if self._created:
            os.replace(tmp, self.path)
            return
        try:
            os.link(tmp, self.path)  # atomic, and fails if the name is taken
        except FileExistsError:
            self._refuse()
        except OSError:
            # No hard links on this file system (some network and FAT ones):
            # reserve the name exclusively, then replace the empty reservation.
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                self._refuse()
            os.replace(tmp, self.path)
        else:
            tmp.unlink()
        self._created = True

    def _refuse(self) -> None:
        raise RunExistsError(errno.EEXIST, "another run's results are already there; not overwritten",
                             str(self.path))

    def close(self, **final: Any) -> None:
        """Mark the run finished (with any last metadata) and write it."""
        self.metadata.update(final, finished=now())
        self.flush()

    @property
    def written(self) -> bool:
        """Whether this writer has written its file (not: whether some file is at ``path``)."""
        return self._created


# --- reading ---------------------------------------------------------------------------------


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


def _parse_metadata(path: Path, raw: bytes) -> dict[str, Any]:
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
    if version != FORMAT_VERSION and version not in OLDER_VERSIONS:
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


def read_metadata(path: Path) -> dict[str, Any]:
    """The bench metadata of one results file, its format version and shape checked."""
    try:
        raw = pq.read_schema(path).metadata or {}
    except Exception as exc:  # a foreign or damaged file can make the Parquet reader raise anything
        raise UserError(f"{path} is not a readable Parquet file ({_short(exc)}); delete or move it") from exc
    if METADATA_KEY not in raw:
        raise UserError(f"{path} is not a bench results file (no bench metadata)")
    return _parse_metadata(path, raw[METADATA_KEY])


def _short(exc: BaseException) -> str:
    """An exception as a short single line, for a one-line message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _checked_table(path: Path) -> pa.Table:
    """The file's table with bench's columns only, each of its type; foreign columns are dropped."""
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise UserError(f"{path} is not a readable Parquet file ({_short(exc)}); delete or move it") from exc
    names = schema.names
    missing = [c for c in KEY_COLUMNS if c not in names]
    if missing:
        raise UserError(f"{path} is not a bench results table (no column {', '.join(missing)}); "
                        "delete or move it")
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise UserError(f"{path} has the column {doubled[0]} twice; delete or move it")
    known = [f for f in SCHEMA if f.name in names]
    try:
        table = pq.read_table(path, columns=[f.name for f in known])
    except Exception as exc:
        raise UserError(f"{path} is not a readable Parquet file ({_short(exc)}); delete or move it") from exc
    columns = []
    for f in known:
        column = table.column(f.name)
        if column.type != f.type:
            try:
                column = column.cast(f.type)  # safe: int to float, not "fast" to float
            except Exception as exc:
                raise UserError(f"{path}: column {f.name} holds {column.type}, not {f.type}; "
                                "delete or move it") from exc
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(known))


def _in(values: Any, low: float, high: float) -> Any:
    """Element-wise: finite and within [low, high]."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & (v >= low) & (v <= high)


def _valid_rows(df: Any) -> Any:
    """Which rows can be believed: a known phase and status, and on ``ok`` rows times and ratios
    that are measurements. The median, the samples and the ratio must lie in ``TIME_RANGE_S`` /
    ``RATIO_RANGE``; the minimum and the CI bounds, when present, must be positive and not above
    the range (a wide CI may reach far below the median, never to zero). ``backward`` rows are a
    difference (gradient minus forward), which noise can make zero or negative: theirs need only
    be finite and not above the range in size."""
    import numpy as np

    lo_t, hi_t = TIME_RANGE_S
    lo_r, hi_r = RATIO_RANGE
    tiny = math.ulp(0.0)  # the smallest positive number: "> 0"
    known = df["phase"].isin(PHASES).to_numpy() & df["status"].isin(STATUSES).to_numpy()
    ok = (df["status"] == "ok").to_numpy()
    backward = (df["phase"] == "backward").to_numpy()

    def within(col: str, low: float, high: float, optional: bool) -> Any:
        v = df[col].to_numpy(float)
        good = np.where(backward, _in(np.abs(v), 0.0, high), _in(v, low, high))
        return good | np.isnan(v) if optional else good

    good = within("median_s", lo_t, hi_t, optional=False)
    for col in TIME_COLUMNS[1:]:
        good &= within(col, tiny, hi_t, optional=True)
    good &= within("ratio", lo_r, hi_r, optional=True)
    for col in RATIO_COLUMNS[1:]:
        good &= within(col, tiny, hi_r, optional=True)
    samples_ok = [
        bool(np.all(_in(np.abs(s), 0.0, hi_t) if b else _in(s, lo_t, hi_t))) if len(s) else True
        for s, b in zip(df["samples_s"], backward, strict=True)
    ]
    good &= np.asarray(samples_ok, dtype=bool)
    return known & (~ok | good)


def _frame(path: Path, table: pa.Table) -> tuple[Any, int]:
    """The rows as pandas, every column of ``Record`` present and typed, and how many
    rows were left out as invalid (see ``_valid_rows``)."""
    import numpy as np

    try:
        df = table.to_pandas()
    except Exception as exc:
        raise UserError(f"{path} is not a readable Parquet file ({_short(exc)}); delete or move it") from exc
    if df.empty:
        raise UserError(f"{path} holds no rows; delete or move it")
    # Columns added after the file was written read as their defaults, so a
    # table of old and new runs has one set of columns; nulls read the same.
    for f in fields(Record):
        default = f.default if f.default is not MISSING else None
        if f.type.startswith("tuple"):
            # Lists read as float arrays (a null item as NaN), an absent list as an empty one.
            values = df[f.name] if f.name in df else [None] * len(df)
            df[f.name] = [np.array([], dtype=float) if v is None else np.asarray(v, dtype=float)
                          for v in values]
        elif f.type == "str":
            df[f.name] = df[f.name].fillna(default or "").astype(str) if f.name in df else (default or "")
        elif f.type == "float":
            values = df[f.name].to_numpy(float) if f.name in df else np.full(len(df), math.nan)
            df[f.name] = values.astype(np.float64)
        elif f.type == "int":
            df[f.name] = df[f.name].fillna(default).astype(np.int64) if f.name in df else default
        elif f.type == "bool":
            df[f.name] = df[f.name].fillna(default).astype(bool) if f.name in df else default
    # Other measured quantities (FLOPs, bytes, fractions...) that are not finite, or whose size is
    # beyond VALUE_RANGE, are not measurements: they read as missing. Plots on log axes
    # would overflow on them.
    times = {*TIME_COLUMNS, *RATIO_COLUMNS}
    for f in fields(Record):
        if f.type == "float" and f.name not in times:
            size = np.abs(df[f.name].to_numpy(float))
            with np.errstate(invalid="ignore"):
                wild = ~np.isfinite(size) | (size > VALUE_RANGE[1]) | ((size > 0) & (size < VALUE_RANGE[0]))
            df.loc[wild, f.name] = math.nan
    good = _valid_rows(df)
    # process_rounds are counts of samples: whole, positive and adding up to the samples.
    rounds = []
    for i, (sizes, samples) in enumerate(zip(df["process_rounds"], df["samples_s"], strict=True)):
        fits = bool(np.all((sizes >= 1) & (sizes == np.floor(sizes)))) and float(sizes.sum()) == len(samples)
        if len(sizes) and not fits:
            good[i] &= df["status"].iat[i] != "ok"  # a row without its measurement keeps nothing to split
            sizes = sizes[:0]
        rounds.append(sizes.astype(np.int64))
    df["process_rounds"] = rounds
    bad = int((~good).sum())
    if bad == len(df):
        raise UserError(f"{path} holds no valid row (times or ratios that are not positive finite "
                        "numbers, or unknown phases or statuses); delete or move it")
    if bad:
        df = df[good].reset_index(drop=True)
    return df, bad


def _read_file(path: Path) -> tuple[dict[str, Any], Any, int]:
    """Metadata, rows and the count of invalid rows left out, of one results file."""
    meta = read_metadata(path)
    df, bad = _frame(path, _checked_table(path))
    return meta, df, bad


def _regular(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def files(path: Path | str) -> list[Path]:
    """Results files under ``path``: one file, a machine folder, or a whole tree.

    Only regular files count (a FIFO named ``x.parquet`` would block the reader
    forever); hidden files and folders, such as the ``.RUN.parquet.*.tmp`` a
    killed write leaves, are ignored.
    """
    p = Path(path)
    if not str(path).strip():
        raise UserError("an empty results path: give a results file, a machine folder or a results tree")
    if p.is_dir():
        return sorted(f for f in p.rglob("*.parquet")
                      if not any(part.startswith(".") for part in f.relative_to(p).parts) and _regular(f))
    if _regular(p):
        return [p]
    if p.exists():
        raise UserError(f"{p} is not a regular file or a folder (a FIFO, socket or device): "
                        "give a results file, a machine folder or a results tree")
    raise UserError(f"no results at {p}: give a results file, a machine folder or a results tree")


def _key(path: Path) -> str:
    """One name per file however it is spelled (relative, absolute, through a link)."""
    return os.path.realpath(path)


def expand(sources: Iterable[Path | str]) -> list[Path]:
    """Every results file under ``sources``, each once however often or however it is named."""
    found: dict[str, Path] = {}
    for src in sources:
        under = files(src)
        if not under:
            raise UserError(f"no results files (*.parquet) under {src}: run `bench run` first")
        for f in under:
            found.setdefault(_key(f), f)
    if not found:
        raise UserError("no results given: name a run id, a results file or a folder")
    return list(found.values())


def load(path: Path | str):
    """A pandas DataFrame of one run, a machine folder or a whole results tree.

    Columns include ``suite, case, framework, mode, device, phase, median_s,
    status`` and the raw ``samples_s``; see ``bench.spec.Record`` for all.
    A broken file in a folder is skipped with a message on stderr; invalid
    ``ok`` rows are left out with a warning (see the module's docstring).
    """
    import pandas as pd

    found = files(path)
    if not found:
        raise UserError(f"no results files (*.parquet) under {path}: run `bench run` first")
    explicit = {_key(Path(path))} if _regular(Path(path)) else set()
    frames, _ = _read_all(found, explicit=explicit)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _run_of(meta: dict[str, Any], df: Any) -> str:
    """The run a file holds: its metadata's run id, else the run ids of its rows."""
    run_id = meta.get("run_id")
    return run_id if run_id else ",".join(sorted(set(df["run_id"])))


def _read_all(found: list[Path], explicit: set[str]) -> tuple[list, list[dict[str, Any]]]:
    """Rows and metadata of each file, each run once. A broken file found inside a folder is
    skipped with a message on stderr, so one bad copy does not hide the rest; a broken file
    named explicitly (``explicit`` holds ``_key``s), or a folder with nothing readable, is an error.
    """
    frames, metas, problems, notes = [], [], [], []
    seen: dict[str, Path] = {}
    for f in found:
        try:
            meta, frame, bad = _read_file(f)
        except UserError as exc:
            if _key(f) in explicit:
                raise
            problems.append(str(exc))
            continue
        run = _run_of(meta, frame)
        if run in seen:  # a copy of a run already read would count its cases twice
            notes.append(f"bench: skipping {f}: run {run} is already read from {seen[run]}")
            continue
        seen[run] = f
        if bad:
            notes.append(f"bench: warning: {f}: left out {bad} of {bad + len(frame)} rows whose times or "
                         "ratios are not positive finite numbers (or whose phase or status is unknown)")
        metas.append(meta)
        frames.append(frame)
    if not frames:
        raise UserError(problems[0])
    for problem in problems:
        print(f"bench: skipping {problem}", file=sys.stderr)
    for note in notes:
        print(note, file=sys.stderr)
    return frames, metas


def _runs_under(results: Path) -> list[Path]:
    return files(results) if results.is_dir() else []


def resolve_runs(runs: list[str], results: Path) -> list[Path]:
    """The results files or folders that RUN arguments name (paths or run ids), without duplicates."""
    if not runs:
        found = _runs_under(results)
        if not found:
            raise UserError(f"no results under {results}: run `bench run` first, or name a results file")
        return [max(found, key=lambda f: (f.stem, f.stat().st_mtime))]  # run ids start with the UTC time
    out: dict[str, Path] = {}
    for run in runs:
        path = Path(run)
        if not run.strip():
            raise UserError("an empty run name: give a run id, a results file or a folder")
        if path.exists():
            if not files(path):
                raise UserError(f"no results files (*.parquet) under {path}")
            # A folder stays a folder: read_runs then skips a broken file in it.
            found = [path]
        elif "/" in run or run.endswith(".parquet"):
            raise UserError(f"no such results file or folder: {run}")
        else:
            known = _runs_under(results)
            found = [f for f in known if f.stem == run] or [f for f in known if f.stem.startswith(run)]
            if not found:
                raise UserError(f"unknown run id {run!r}: no {run}.parquet under {results} "
                                f"(give a results file, or --results DIR)")
            if len({f.stem for f in found}) > 1:
                raise UserError(f"run id {run!r} is ambiguous: {', '.join(sorted(f.stem for f in found))}")
        for f in found:
            out.setdefault(_key(f), f)
    return list(out.values())


def read_runs(sources: Iterable[Path | str]) -> tuple[Any, list[dict[str, Any]]]:
    """The rows (one DataFrame) and the metadata of every results file under ``sources``, each
    file and each run once (``bench report F $PWD/F`` reads F once)."""
    import pandas as pd

    sources = list(sources)
    found = expand(sources)
    explicit = {_key(Path(s)) for s in sources if _regular(Path(s))}
    frames, metadata = _read_all(found, explicit=explicit)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return df, metadata
