"""Reads runs back: one run, a machine folder or a whole results tree, local or at a URL, as pandas.

Reading trusts nothing in a file: the metadata must be a JSON object of the
known shape (``schema``), every column its version has must be there and hold
its type, and an ``ok`` row whose times or ratios are not plausible numbers
(negative, zero, NaN, infinite, or beyond ``TIME_RANGE_S`` / ``RATIO_RANGE``)
is left out with one warning per file; any other number that is not finite or
beyond ``VALUE_RANGE`` reads as missing (NaN). Rows of an older format version
are upgraded as they are read (``schema.upgrade``). A run that never finished
is read from its shards, each case from the last shard that holds it. Only
regular files are read (``layout``); only the columns asked for
(``columns=``) and those validation needs are read from a file.
"""

from __future__ import annotations

import collections
import contextlib
import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import MISSING, fields
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.core.errors import UserError
from bench.core.records import CASE_KEY, PHASES, RATIO_RANGE, STATUSES, TIME_RANGE_S, VALUE_RANGE, Record
from bench.store.layout import Source, _key, _named_run, _shards, _where, expand, files
from bench.store.location import Location
from bench.store.schema import (
    _LISTS,
    KEY_COLUMNS,
    METADATA_KEY,
    RATIO_COLUMNS,
    SCHEMA,
    TIME_COLUMNS,
    VALIDATION_COLUMNS,
    _parse_metadata,
    check_columns,
    check_version_columns,
    upgrade,
)

_PARQUET_MAGIC = b"PAR1"


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


def _checked_table(path: str, pf: pq.ParquetFile, version: int, read: frozenset[str] | None = None
                   ) -> pa.Table:
    """The file's table with bench's columns only (of those, only ``read`` when given), each of its
    type, as the current format version holds them (``schema.upgrade``); foreign columns are dropped.
    Only the chosen columns' chunks are read from the file."""
    names = pf.schema_arrow.names
    missing = [c for c in KEY_COLUMNS if c not in names]
    if missing:
        raise UserError(f"{path} is not a bench results table (no column {', '.join(missing)}); "
                        "delete or move it")
    doubled = sorted(n for n, k in collections.Counter(names).items() if k > 1)
    if doubled:
        raise UserError(f"{path} has the column {doubled[0]} twice; delete or move it")
    check_version_columns(path, names, version)
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
    return upgrade(pa.Table.from_arrays(columns, schema=pa.schema(known)), version, read)


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
            table = _checked_table(name, pf, meta["format_version"], _read_set(wanted))
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
            table = _checked_table(name, pf, meta["format_version"], _read_set(wanted))
        tables.append(table.append_column("__shard", pa.array(np.full(len(table), n, dtype=np.int64))))
    combined = pa.concat_tables(tables, promote_options="default")
    key = list(CASE_KEY)
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
         columns: Iterable[str] | None = None) -> Any:
    """A pandas DataFrame of one run, a machine folder or a whole results tree, local or at a URL
    (``s3://bucket/results``; credentials from the environment or ``storage_options``).
    ``fleet``: only the runs of that fleet run (``bench run --cluster``), across machines.

    Columns include ``suite, case, framework, mode, device, phase, median_s,
    status`` and the raw ``samples_s``; see ``bench.core.records.Record`` for all.
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
              columns: list[str] | None = None) -> tuple[list[Any], list[dict[str, Any]]]:
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
