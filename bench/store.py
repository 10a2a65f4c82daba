"""The results store: the layout of a results root (a local folder or any fsspec URL) and its runs.

A run of machine M with id RUN is ``<root>/M/RUN.parquet``: one long table, one
row per (suite, case, framework, mode, device, phase) with raw samples and
statistics, carrying in its Parquet metadata the format version, the machine
fingerprint and the run settings. While the run goes on (or after it
crashed) its rows are in shards beside it, ``<root>/M/RUN/part-000001.parquet``,
..., each a complete small file of the same format with ``finished`` null;
``ResultsWriter.close`` compacts them into ``RUN.parquet`` and deletes them.
Only this module builds result paths (``run_path``, ``new_run``). Locally the
compacted file goes to a hidden temporary file that is synced, then linked
into place; object stores get one PUT. The first write is exclusive, so a run
never replaces another run's results.

Reading trusts nothing in a file: the metadata must be a JSON object of the
known shape, every column must hold its type, and an ``ok`` row whose times
or ratios are not plausible numbers (negative, zero, NaN, infinite, or beyond
``TIME_RANGE_S`` / ``RATIO_RANGE``) is left out with one warning per file;
any other number that is not finite or beyond ``VALUE_RANGE`` reads as missing (NaN).
Only regular files are read; hidden files (``.RUN.parquet.tmp``, what a killed
write leaves behind) and hidden folders are ignored.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import math
import os
import re
import secrets
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import MISSING, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import UserError
from bench.spec import PHASES, STATUSES, Record
from bench.storage import Location, is_url, results_arg  # noqa: F401 (results_arg: for callers)

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
_PARQUET_MAGIC = b"PAR1"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunExistsError(FileExistsError):
    """The results of a new run are already there (another run's): they are never overwritten."""


# A shard's name inside its run's folder: part-000001.parquet, part-000002.parquet, ...
SHARD_RE = re.compile(r"part-(\d{6,})\.parquet")
_SUFFIX = ".parquet"

# A results source as the commands pass it around: a local path, or a URL (``s3://...``).
Source = Path | str


def run_path(results: Source, machine: str, run_id: str) -> Source:
    """Where the run ``run_id`` of ``machine`` lives under the results root ``results``: its compacted
    file, ``<results>/<machine>/<run-id>.parquet`` (its shards, while it runs, are in the folder of that
    name without ``.parquet``)."""
    if isinstance(results, str) and is_url(results):
        return f"{results.rstrip('/')}/{machine}/{run_id}{_SUFFIX}"
    return Path(results) / machine / f"{run_id}{_SUFFIX}"


def new_run(results: Source, machine: str, run_id: str, metadata: dict[str, Any],
            storage_options: Mapping[str, Any] | None = None) -> ResultsWriter:
    """The writer of a new run under ``results`` (see ``ResultsWriter``)."""
    return ResultsWriter(run_path(results, machine, run_id), metadata, storage_options)


def run_exists(source: Source, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether a run is at ``source`` (a run file's name): compacted or as shards."""
    loc, path = _where(source, storage_options)
    return loc.exists(path) or bool(_shards(loc, path))


def stored_as(source: Source, storage_options: Mapping[str, Any] | None = None) -> str | None:
    """How the run named ``source`` (its compacted file's name) is stored now: ``"file"`` (it was
    compacted), ``"shards"`` (only the shards of a run that did not finish, in
    ``shard_folder(source)``: ``bench.load(source)`` and ``bench report`` read them), or None."""
    loc, path = _where(source, storage_options)
    if loc.is_file(path):
        return "file"
    return "shards" if _shards(loc, path) else None


def shard_folder(source: Source) -> Source:
    """The folder of a run's shards: its file's name without ``.parquet``."""
    if isinstance(source, str) and is_url(source):
        return source[: -len(_SUFFIX)] if source.endswith(_SUFFIX) else f"{source}.shards"
    path = Path(source)
    return path.with_suffix("") if path.suffix == _SUFFIX else path.with_name(f"{path.name}.shards")


def stem(source: Source) -> str:
    """The run id a run's name carries (``.../RUN.parquet`` -> ``RUN``)."""
    base = str(source).rstrip("/").rsplit("/", 1)[-1]
    return base[: -len(_SUFFIX)] if base.endswith(_SUFFIX) else base


def _where(source: Source, storage_options: Mapping[str, Any] | None = None) -> tuple[Location, str]:
    """The location of a source and its path in that location's file system."""
    loc = Location.of(source, storage_options)
    return loc, loc.root if not loc.local else os.fspath(source).removeprefix("file://")


def _shard_folder(path: str) -> str | None:
    return path[: -len(_SUFFIX)] if path.endswith(_SUFFIX) else None


def _shards(loc: Location, path: str) -> list[str]:
    """The shards of the run whose compacted file is ``path``, in write order."""
    folder = _shard_folder(path)
    if folder is None or not loc.is_dir(folder):
        return []
    found = [(int(m.group(1)), p) for p in loc.find(folder)
             if p.rsplit("/", 1)[0] == folder and (m := SHARD_RE.fullmatch(p.rsplit("/", 1)[-1]))]
    return [p for _, p in sorted(found)]


def _table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


class ResultsWriter:
    """Writes one run's records as they arrive, then compacts them into one file.

    ``path`` is the run's compacted file (a local path or a URL). Each
    ``append`` or ``merge`` writes one new small Parquet file, a shard, in the
    folder of that name without ``.parquet`` (``part-000001.parquet``, ...):
    a write costs what its case costs, however long the run, and nothing is
    rewritten in place (object stores cannot rename). A shard holds every row
    of the cases it carries; for each case readers take the rows of the last
    shard that has it. ``close`` writes the compacted file (locally: a hidden
    temporary file, synced, then linked or renamed into place) and deletes
    the shards. A run killed before ``close`` keeps its shards, readable, with
    ``finished`` null.

    Nothing is written before the first record, so a run that measures
    nothing leaves nothing behind that looks like a result. The first write is
    exclusive: if another run's file or shards are there (the same id) it
    raises ``RunExistsError`` and leaves them alone.
    """

    def __init__(self, path: Source, metadata: dict[str, Any],
                 storage_options: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.metadata = {**metadata, "format_version": FORMAT_VERSION, "started": now()}
        self.metadata.setdefault("finished", None)
        self.records: list[Record] = []
        self._loc, self._file = _where(path, storage_options)
        self._folder = _shard_folder(self._file) or f"{self._file}.shards"
        # Where each case's rows are in ``records`` (``merge`` replaces them in place).
        self._rows: dict[tuple, list[int]] = {}
        self._pending: dict[tuple, None] = {}  # cases to write in the next shard, in order
        self._shard_paths: list[str] = []
        self._compacted = False
        # One temporary name per writer: two writers in one folder never share it.
        name = self._file.rsplit("/", 1)[-1]
        self._tmp = Path(self._file).with_name(f".{name}.{secrets.token_hex(4)}.tmp")

    def _add(self, key: tuple, record: Record) -> None:
        self._rows.setdefault(key, []).append(len(self.records))
        self.records.append(record)

    def append(self, records: Iterable[Record]) -> None:
        """Add rows (one case's, usually) and write them as a new shard."""
        from bench import analysis

        for r in records:
            key = analysis.case_key(r)
            self._add(key, r)
            self._pending[key] = None
        self.flush()

    def merge(self, records: Iterable[Record]) -> None:
        """Fold a further process's rows of a case into the rows stored for it (``analysis.merge``)
        and write the merged rows as a new shard."""
        from bench import analysis

        new: dict[tuple, list[Record]] = {}
        for r in records:
            new.setdefault(analysis.case_key(r), []).append(r)
        for key, rows in new.items():
            at = self._rows.get(key)
            if not at:
                for r in rows:
                    self._add(key, r)
            else:
                merged = analysis.merge([self.records[i] for i in at], rows)
                for i, r in zip(at, merged, strict=True):
                    self.records[i] = r
            self._pending[key] = None
        self.flush()

    def flush(self) -> None:
        """Write the cases not yet written (all their rows) as the next shard."""
        if not self._pending:
            return
        rows = [self.records[i].to_dict() for key in self._pending for i in self._rows[key]]
        data = _table_bytes(self._table(rows))
        if not self._shard_paths and self._loc.exists(self._file):
            self._refuse()
        shard = f"{self._folder}/part-{len(self._shard_paths) + 1:06d}{_SUFFIX}"
        try:
            self._loc.write(shard, data, new=True)
        except FileExistsError:
            if not self._shard_paths:
                self._refuse()
            raise
        self._shard_paths.append(shard)
        self._pending.clear()  # only once written: a failed write is retried by the next one

    def _table(self, rows: list[dict[str, Any]]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=SCHEMA).replace_schema_metadata(
            {METADATA_KEY: json.dumps(self.metadata, default=str).encode()})

    def _refuse(self) -> None:
        raise RunExistsError(errno.EEXIST, "another run's results are already there; not overwritten",
                             str(self.path))

    def close(self, **final: Any) -> None:
        """Mark the run finished (with any last metadata), write the compacted file, delete the shards."""
        self.metadata.update(final, finished=now())
        if not self.records:
            return
        table = self._table([r.to_dict() for r in self.records])
        if self._loc.local:
            self._write_local(table)
        else:
            try:
                self._loc.write(self._file, _table_bytes(table), new=not self._compacted)
            except FileExistsError:
                self._refuse()
            self._compacted = True
        self._pending.clear()
        # The compacted file is complete: the shards are copies now. A crash before
        # they are gone leaves both, and readers take the compacted file.
        self._loc.delete(self._shard_paths)
        self._shard_paths = []
        with contextlib.suppress(OSError, ValueError):
            if self._loc.local:
                os.rmdir(self._folder)
            elif self._loc.is_dir(self._folder) and not self._loc.find(self._folder, suffix=""):
                self._loc.fs.rmdir(self._folder)

    def _write_local(self, table: pa.Table) -> None:
        """Today's local guarantees: a hidden temporary file, synced, then moved into place."""
        tmp = self._tmp
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self._publish(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)  # the shards stay as they were
            raise

    def _publish(self, tmp: Path) -> None:
        """Move the complete temporary file to the run's file: exclusively the first time, then by
        replacing."""
        target = Path(self._file)
        if self._compacted:
            os.replace(tmp, target)
            return
        try:
            os.link(tmp, target)  # atomic, and fails if the name is taken
        except FileExistsError:
            self._refuse()
        except OSError:
            # No hard links on this file system (some network and FAT ones):
            # reserve the name exclusively, then replace the empty reservation.
            try:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                self._refuse()
            os.replace(tmp, target)
        else:
            tmp.unlink()
        self._compacted = True

    @property
    def written(self) -> bool:
        """Whether this writer has written anything (a shard or its file), not: whether some file is
        at ``path``."""
        return bool(self._shard_paths) or self._compacted


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


@contextlib.contextmanager
def _parquet(loc: Location, path: str) -> Iterator[tuple[str, pq.ParquetFile]]:
    """The Parquet file at ``path`` opened once, with its name for messages: its footer is read
    once for the metadata, the schema and the column chunks to read. A local file is read where
    it is; an object's bytes come whole (one GET) or, when large, in ranges (``Location.reader``)."""
    name = loc.display(path)
    src = path if loc.local else loc.reader(path)
    try:
        try:
            pf = pq.ParquetFile(pa.BufferReader(src) if isinstance(src, pa.Buffer) else src)
        except Exception as exc:  # a foreign or damaged file can make the Parquet reader raise anything
            raise UserError(f"{name} is not a readable Parquet file ({_short(exc)}); "
                            "delete or move it") from exc
        with contextlib.closing(pf):
            yield name, pf
    finally:
        if not isinstance(src, str | pa.Buffer):
            src.close()


def _metadata_of(name: str, pf: pq.ParquetFile) -> dict[str, Any]:
    raw = pf.schema_arrow.metadata or {}
    if METADATA_KEY not in raw:
        raise UserError(f"{name} is not a bench results file (no bench metadata)")
    return _parse_metadata(name, raw[METADATA_KEY])


def read_metadata(path: Source, storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The bench metadata of one run (a results file, or the shards of a run that did not finish),
    its format version and shape checked."""
    loc, p = _where(path, storage_options)
    if not loc.is_file(p):
        shards = _shards(loc, p)
        if shards:
            p = shards[-1]
    with _parquet(loc, p) as (name, pf):
        return _metadata_of(name, pf)


def _short(exc: BaseException) -> str:
    """An exception as a short single line, for a one-line message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _checked_table(path: str, pf: pq.ParquetFile, read: frozenset[str] | None = None) -> pa.Table:
    """The file's table with bench's columns only (of those, only ``read`` when given), each of its
    type; foreign columns are dropped. Only the chosen columns' chunks are read from the file."""
    names = pf.schema_arrow.names
    missing = [c for c in KEY_COLUMNS if c not in names]
    if missing:
        raise UserError(f"{path} is not a bench results table (no column {', '.join(missing)}); "
                        "delete or move it")
    doubled = sorted(n for n, k in collections.Counter(names).items() if k > 1)
    if doubled:
        raise UserError(f"{path} has the column {doubled[0]} twice; delete or move it")
    known = [f for f in SCHEMA if f.name in names and (read is None or f.name in read)]
    try:
        # Threads cost more than they save on a shard of a few rows.
        table = pf.read(columns=[f.name for f in known], use_threads=pf.metadata.num_rows > 10_000)
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


def _valid_rows(df: Any, samples_ok: Any) -> Any:
    """Which rows can be believed: a known phase and status, and on ``ok`` rows times and ratios
    that are measurements. The median, the samples and the ratio must lie in ``TIME_RANGE_S`` /
    ``RATIO_RANGE``; the minimum and the CI bounds, when present, must be positive and not above
    the range (a wide CI may reach far below the median, never to zero). ``backward`` rows are a
    difference (gradient minus forward), which noise can make zero or negative: theirs need only
    be finite and not above the range in size. ``samples_ok``: per row, whether every sample is a
    time (``_samples_within``)."""
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
    good &= samples_ok
    return known & (~ok | good)


def _flat(table: pa.Table, name: str) -> tuple[Any, Any]:
    """The values of a list column, concatenated as floats (a null item as NaN), and the row each
    value belongs to; an absent column has none. Arrow does it in one pass, without a Python object
    per row (a million rows)."""
    import numpy as np
    import pyarrow.compute as pc

    if name not in table.column_names or table.num_rows == 0:
        return np.array([], dtype=float), np.array([], dtype=np.int64)
    lists = table.column(name).combine_chunks()
    values = pc.list_flatten(lists).cast(pa.float64()).to_numpy(zero_copy_only=False)
    rows = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)  # int32 or int64: no copy
    return values, rows


def _samples_within(values: Any, rows: Any, n: int, backward: Any, low: float, high: float) -> Any:
    """Per row of ``n``: every sample (``values``, of ``rows``, as ``_flat`` gives them) a time (a
    derived backward difference: finite and not above ``high``)."""
    import numpy as np

    ok = np.where(backward[rows], _in(np.abs(values), 0.0, high), _in(values, low, high))
    bad_rows = np.zeros(n, dtype=bool)
    bad_rows[rows[~ok]] = True
    return ~bad_rows


def _misfit_rounds(table: pa.Table, samples_per_row: Any) -> Any:
    """Per row: process rounds that are not counts of the samples (whole, positive, adding up to
    the number of samples); no process rounds at all fit (one process)."""
    import numpy as np

    n = table.num_rows
    values, rows = _flat(table, "process_rounds")
    counts = np.bincount(rows, minlength=n)
    sums = np.bincount(rows, weights=values, minlength=n)
    whole = np.ones(n, dtype=bool)
    whole[rows[~((values >= 1) & (values == np.floor(values)))]] = False
    return (counts > 0) & ~(whole & (sums == samples_per_row))


def _typed(df: Any, columns: list[Any]) -> None:
    """Give each of ``columns`` (``Record`` fields, not lists) its type in ``df``, in place: nulls
    and absent columns read as the field's default. Other measured quantities (FLOPs, bytes,
    fractions...) that are not finite, or whose size is beyond VALUE_RANGE, are not measurements:
    they read as missing (plots on log axes would overflow on them)."""
    import numpy as np

    times = {*TIME_COLUMNS, *RATIO_COLUMNS}
    for f in columns:
        default = f.default if f.default is not MISSING else None
        if f.type == "str":
            df[f.name] = df[f.name].fillna(default or "").astype(str) if f.name in df else (default or "")
        elif f.type == "float":
            values = df[f.name].to_numpy(float, copy=True) if f.name in df else np.full(len(df), math.nan)
            if f.name not in times:
                size = np.abs(values)
                with np.errstate(invalid="ignore"):
                    tiny = (size > 0) & (size < VALUE_RANGE[0])
                    wild = ~np.isfinite(size) | (size > VALUE_RANGE[1]) | tiny
                values[wild] = math.nan
            df[f.name] = values
        elif f.type == "int":
            df[f.name] = df[f.name].fillna(default).astype(np.int64) if f.name in df else default
        elif f.type == "bool":
            df[f.name] = df[f.name].fillna(default).astype(bool) if f.name in df else default


def _list_column(table: pa.Table, name: str) -> list[Any]:
    """A list column as one float array per row (a null item as NaN, an absent list as empty)."""
    import numpy as np

    empty = np.array([], dtype=float)
    if name not in table.column_names:
        return [empty] * table.num_rows
    return [empty if v is None else v if getattr(v, "dtype", None) == np.float64
            else np.asarray(v, dtype=float) for v in table.column(name).to_pandas()]


def _frame(path: str, table: pa.Table, wanted: frozenset[str] | None = None) -> tuple[Any, int]:
    """The rows as pandas and how many rows were left out as invalid (see ``_valid_rows``).

    The frame holds every column of ``Record`` (``wanted``: those, and the columns validation
    reads), present and typed: a column the file lacks (it predates the column) reads as its
    default. The raw lists become an array per row only when wanted: at a million rows that is
    most of the time and memory of a read, and validation needs them only in Arrow.
    """
    import numpy as np

    if table.num_rows == 0:
        raise UserError(f"{path} holds no rows; delete or move it")
    keep = [f for f in fields(Record) if wanted is None or f.name in wanted
            or (f.name in VALIDATION_COLUMNS and f.name not in _LISTS)]
    lists = [f.name for f in keep if f.type.startswith("tuple") and (wanted is None or f.name in wanted)]
    try:
        df = table.drop_columns([c for c in table.column_names if c in _LISTS]).to_pandas()
        for name in lists:
            df[name] = _list_column(table, name)
    except Exception as exc:
        raise UserError(f"{path} is not a readable Parquet file ({_short(exc)}); delete or move it") from exc
    _typed(df, [f for f in keep if not f.type.startswith("tuple")])
    n = len(df)
    backward = (df["phase"] == "backward").to_numpy()
    samples, sample_rows = _flat(table, "samples_s")
    good = _valid_rows(df, _samples_within(samples, sample_rows, n, backward, *TIME_RANGE_S))
    misfit = _misfit_rounds(table, np.bincount(sample_rows, minlength=n))
    if misfit.any():
        good &= ~misfit | (df["status"] != "ok").to_numpy()  # a row without its measurement keeps nothing
    if "process_rounds" in df:
        df["process_rounds"] = [(v[:0] if m else v).astype(np.int64)
                                for v, m in zip(df["process_rounds"], misfit, strict=True)]
    # The file's columns in its order, then those it lacks: the order a whole read always had.
    present = set(table.column_names)
    df = df[[f.name for f in keep if f.name in present] + [f.name for f in keep if f.name not in present]]
    bad = int((~good).sum())
    if bad == len(df):
        raise UserError(f"{path} holds no valid row (times or ratios that are not positive finite "
                        "numbers, or unknown phases or statuses); delete or move it")
    if bad:
        df = df[good].reset_index(drop=True)
    return df, bad


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
                         f"bench.spec.Record ({', '.join(COLUMNS)})")
    return names


def _read_set(wanted: frozenset[str] | None) -> frozenset[str] | None:
    """The columns to read from a file for ``wanted``: those and what validation needs."""
    return None if wanted is None else wanted | frozenset(VALIDATION_COLUMNS)


def _read_file(source: Source, storage_options: Mapping[str, Any] | None = None,
               wanted: frozenset[str] | None = None) -> tuple[dict[str, Any], Any, int]:
    """Metadata, rows and the count of invalid rows left out, of one run: its compacted file, or
    the shards of a run that did not finish (the compacted file wins when both are there).
    ``wanted``: the columns asked for (``check_columns``); only those and VALIDATION_COLUMNS are read."""
    loc, path = _where(source, storage_options)
    if loc.is_file(path):
        with _parquet(loc, path) as (name, pf):
            meta = _metadata_of(name, pf)
            table = _checked_table(name, pf, _read_set(wanted))
        df, bad = _frame(name, table, wanted)
        return meta, df, bad
    shards = _shards(loc, path)
    if not shards:
        raise UserError(f"no results at {loc.display(path)}: give a results file, a machine folder or a "
                        "results tree")
    return _read_shards(loc, shards, wanted)


def _read_shards(loc: Location, shards: list[str], wanted: frozenset[str] | None = None
                 ) -> tuple[dict[str, Any], Any, int]:
    """One run from its shards: for each case, the rows of the last shard that holds it."""
    import numpy as np

    meta: dict[str, Any] = {}
    tables = []
    for n, shard in enumerate(shards):
        with _parquet(loc, shard) as (name, pf):
            meta = _metadata_of(name, pf)  # every shard has the run's metadata; the last is the newest
            table = _checked_table(name, pf, _read_set(wanted))
        tables.append(table.append_column("__shard", pa.array(np.full(len(table), n, dtype=np.int64))))
    combined = pa.concat_tables(tables, promote_options="default")
    key = ["suite", "case", "framework", "mode", "device"]
    keys = combined.select([*key, "__shard"]).to_pandas()
    keys["__row"] = np.arange(len(keys))
    groups = keys.groupby(key, dropna=False)
    newest = (keys["__shard"] == groups["__shard"].transform("max")).to_numpy()
    # Each case where it first appeared: the rows read in the order the run wrote its cases.
    first = groups["__row"].transform("min").to_numpy()[newest]
    order = np.lexsort((keys["__row"].to_numpy()[newest], first))
    combined = combined.filter(pa.array(newest)).take(pa.array(order))
    folder = loc.display(shards[-1].rsplit("/", 1)[0])
    df, bad = _frame(folder, combined.drop_columns(["__shard"]), wanted)
    return meta, df, bad


def _regular(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _runs_in(paths: Iterable[str]) -> list[str]:
    """Run names (compacted files' paths) of the files found in a folder: shards name their run."""
    runs: dict[str, None] = {}
    for p in paths:
        folder, _, base = p.rpartition("/")
        runs[f"{folder}{_SUFFIX}" if SHARD_RE.fullmatch(base) and folder else p] = None
    return sorted(runs)


def files(path: Source, storage_options: Mapping[str, Any] | None = None) -> list[Source]:
    """The runs under ``path``: one results file, a machine folder, or a whole tree; local or a URL.

    A run is named by its compacted file (``<machine>/<run-id>.parquet``), which
    a run that has not finished does not have yet: its shards
    (``<machine>/<run-id>/part-*.parquet``) are read in its place. Only regular
    files count (a FIFO named ``x.parquet`` would block the reader forever);
    hidden files and folders, such as the ``.RUN.parquet.*.tmp`` a killed write
    leaves, are ignored.
    """
    if not str(path).strip():
        raise UserError("an empty results path: give a results file, a machine folder or a results tree")
    if isinstance(path, str) and is_url(path) and not path.startswith("file://"):
        loc, root = _where(path, storage_options)
        if loc.is_file(root):
            return [path]
        if loc.is_dir(root) and not _shards(loc, root):
            return [loc.display(r) for r in _runs_in(loc.find(root))]
        if _shards(loc, root):
            return [path]
        raise UserError(f"no results at {path}: give a results file, a machine folder or a results tree")
    p = Path(os.fspath(path).removeprefix("file://"))
    if p.is_dir():
        found = sorted(str(f) for f in p.rglob("*.parquet")
                       if not any(part.startswith(".") for part in f.relative_to(p).parts) and _regular(f))
        return [Path(r) for r in _runs_in(found)]
    if _regular(p):
        return [p]
    if p.exists():
        raise UserError(f"{p} is not a regular file or a folder (a FIFO, socket or device): "
                        "give a results file, a machine folder or a results tree")
    if _shards(Location.of(p), str(p)):
        return [p]
    raise UserError(f"no results at {p}: give a results file, a machine folder or a results tree")


def _key(path: Source) -> str:
    """One name per run however it is spelled (relative, absolute, through a link)."""
    if isinstance(path, str) and is_url(path):
        return path.rstrip("/")
    return os.path.realpath(path)


def expand(sources: Iterable[Source], storage_options: Mapping[str, Any] | None = None) -> list[Source]:
    """Every run under ``sources``, each once however often or however it is named."""
    found: dict[str, Source] = {}
    for src in sources:
        under = files(src, storage_options)
        if not under:
            raise UserError(f"no results files (*.parquet) under {src}: run `bench run` first")
        for f in under:
            found.setdefault(_key(f), f)
    if not found:
        raise UserError("no results given: name a run id, a results file or a folder")
    return list(found.values())


def _named_run(source: Source, storage_options: Mapping[str, Any] | None) -> bool:
    """Whether ``source`` names one run (a file, or a run's name with shards), not a folder."""
    loc, path = _where(source, storage_options)
    return loc.is_file(path) or (path.endswith(_SUFFIX) and not loc.is_dir(path) and bool(_shards(loc, path)))


def fleet_runs(results: Source, fleet: str, storage_options: Mapping[str, Any] | None = None
               ) -> list[Source]:
    """The runs under ``results`` that belong to the fleet run ``fleet`` (``bench run --cluster``)."""
    out = []
    for f in files(results, storage_options):
        try:
            meta = read_metadata(f, storage_options)
        except UserError:  # a broken file is not part of any fleet; readers say so when they read it
            continue
        if meta.get("fleet") == fleet:
            out.append(f)
    if not out:
        raise UserError(f"no run of fleet {fleet!r} under {results}")
    return out


def load(path: Source, storage_options: Mapping[str, Any] | None = None, fleet: str | None = None,
         columns: Iterable[str] | None = None):
    """A pandas DataFrame of one run, a machine folder or a whole results tree, local or at a URL
    (``s3://bucket/results``; credentials from the environment or ``storage_options``).
    ``fleet``: only the runs of that fleet run (``bench run --cluster``), across machines.

    Columns include ``suite, case, framework, mode, device, phase, median_s,
    status`` and the raw ``samples_s``; see ``bench.spec.Record`` for all.
    ``columns``: only these (in this order), which is faster and smaller: the
    raw samples are most of a run. The rows are the same either way: the
    columns validation needs are always read. An unknown name is a ValueError.
    A broken file in a folder is skipped with a message on stderr; invalid
    ``ok`` rows are left out with a warning (see the module's docstring).
    """
    import pandas as pd

    columns = check_columns(columns)
    found = fleet_runs(path, fleet, storage_options) if fleet else files(path, storage_options)
    if not found:
        raise UserError(f"no results files (*.parquet) under {path}: run `bench run` first")
    explicit = {_key(path)} if _named_run(path, storage_options) else set()
    frames, _ = _read_all(found, explicit=explicit, storage_options=storage_options,
                          columns=columns)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _run_of(meta: dict[str, Any], df: Any) -> str:
    """The run a file holds: its metadata's run id, else the run ids of its rows."""
    run_id = meta.get("run_id")
    return run_id if run_id else ",".join(sorted(set(df["run_id"])))


def _read_all(found: list[Source], explicit: set[str], storage_options: Mapping[str, Any] | None = None,
              columns: list[str] | None = None) -> tuple[list, list[dict[str, Any]]]:
    """Rows and metadata of each run, each run once. A broken file found inside a folder is
    skipped with a message on stderr, so one bad copy does not hide the rest; a broken file
    named explicitly (``explicit`` holds ``_key``s), or a folder with nothing readable, is an error.
    ``columns``: the frames hold only these, in this order (``check_columns``; None: all).
    """
    wanted = None if columns is None else frozenset(columns)
    frames, metas, problems, notes = [], [], [], []
    seen: dict[str, Source] = {}
    for f in found:
        try:
            meta, frame, bad = _read_file(f, storage_options, wanted)
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
        frames.append(frame if columns is None else frame[columns])
    if not frames:
        raise UserError(problems[0])
    for problem in problems:
        print(f"bench: skipping {problem}", file=sys.stderr)
    for note in notes:
        print(note, file=sys.stderr)
    return frames, metas


def _runs_under(results: Source) -> list[Source]:
    if isinstance(results, str) and is_url(results):
        loc = Location.of(results)
        return files(results) if loc.is_dir(loc.root) else []
    return files(results) if Path(results).is_dir() else []


def _mtime(f: Source) -> float:
    try:
        return os.stat(f).st_mtime if isinstance(f, Path) else 0.0
    except OSError:
        return 0.0  # a run still in shards


def resolve_runs(runs: list[str], results: Source) -> list[Source]:
    """The runs or folders that RUN arguments name (run ids, results files, folders, URLs), without
    duplicates. Run ids and the newest run (no RUN) are looked up under ``results``."""
    if not runs:
        found = _runs_under(results)
        if not found:
            raise UserError(f"no results under {results}: run `bench run` first, or name a results file")
        return [max(found, key=lambda f: (stem(f), _mtime(f)))]  # run ids start with the UTC time
    out: dict[str, Source] = {}
    for run in runs:
        if not run.strip():
            raise UserError("an empty run name: give a run id, a results file or a folder")
        path: Source = run if is_url(run) and not run.startswith("file://") else Path(
            run.removeprefix("file://"))
        if isinstance(path, str) or path.exists() or run_exists(path):
            if not files(path):
                raise UserError(f"no results files (*.parquet) under {path}")
            # A folder stays a folder: read_runs then skips a broken file in it.
            found = [path]
        elif "/" in run or run.endswith(_SUFFIX):
            raise UserError(f"no such results file or folder: {run}")
        else:
            known = _runs_under(results)
            found = [f for f in known if stem(f) == run] or [f for f in known if stem(f).startswith(run)]
            if not found:
                raise UserError(f"unknown run id {run!r}: no {run}.parquet under {results} "
                                f"(give a results file, or --results DIR)")
            if len({stem(f) for f in found}) > 1:
                raise UserError(f"run id {run!r} is ambiguous: {', '.join(sorted(stem(f) for f in found))}")
        for f in found:
            out.setdefault(_key(f), f)
    return list(out.values())


def read_runs(sources: Iterable[Source], storage_options: Mapping[str, Any] | None = None,
              columns: Iterable[str] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """The rows (one DataFrame) and the metadata of every run under ``sources``, each file and each
    run once (``bench report F $PWD/F`` reads F once). ``columns``: as ``load`` takes them."""
    import pandas as pd

    columns = check_columns(columns)
    sources = list(sources)
    found = expand(sources, storage_options)
    explicit = {_key(s) for s in sources if _named_run(s, storage_options)}
    frames, metadata = _read_all(found, explicit=explicit, storage_options=storage_options,
                                 columns=columns)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return df, metadata
