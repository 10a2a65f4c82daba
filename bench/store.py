"""The results store: one Parquet file per run, ``results/<machine>/<run-id>.parquet``.

Each file is one long table, one row per (suite, case, framework, mode,
device, phase) with raw samples and statistics, and carries in its Parquet
metadata the format version, the machine fingerprint and the run settings.
Files are rewritten whole after every case to a temporary file that then
replaces the old one: a crash at any moment leaves the last complete file,
never a half-written one.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import MISSING, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import UserError
from bench.spec import Record

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


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultsWriter:
    """Writes one run's records to ``path``, atomically, as they arrive.

    The file is created with the first record, so a run that measures
    nothing leaves nothing behind that looks like a result.
    """

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        self.path = path
        self.metadata = {**metadata, "format_version": FORMAT_VERSION, "started": now()}
        self.metadata.setdefault("finished", None)
        self.records: list[Record] = []

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
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # the last complete file stays as it was
            raise

    def close(self, **final: Any) -> None:
        """Mark the run finished (with any last metadata) and write it."""
        self.metadata.update(final, finished=now())
        self.flush()

    @property
    def written(self) -> bool:
        return self.path.exists()


def read_metadata(path: Path) -> dict[str, Any]:
    """The bench metadata of one results file, its format version checked."""
    try:
        raw = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{path} is not a readable Parquet file ({exc}); delete or move it") from exc
    if METADATA_KEY not in raw:
        raise UserError(f"{path} is not a bench results file (no bench metadata)")
    try:
        meta = json.loads(raw[METADATA_KEY])
    except ValueError as exc:
        raise UserError(f"{path} has corrupt bench metadata ({exc}); delete or move it") from exc
    version = meta.get("format_version")
    if version != FORMAT_VERSION and version not in OLDER_VERSIONS:
        hint = "upgrade bench" if isinstance(version, int) and version > FORMAT_VERSION else "re-run it"
        raise UserError(
            f"{path} has results format version {version}, this bench reads version "
            f"{FORMAT_VERSION}: {hint} to read it"
        )
    return meta


def _read_file(path: Path):
    read_metadata(path)
    try:
        df = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{path} is not a readable Parquet file ({exc}); delete or move it") from exc
    # Columns added after the file was written read as their defaults, so a
    # table of old and new runs has one set of columns.
    for f in fields(Record):
        if f.name not in df.columns:
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            df[f.name] = [default] * len(df) if isinstance(default, tuple) else default
    return df


def files(path: Path | str) -> list[Path]:
    """Results files under ``path``: one file, a machine folder, or a whole tree."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(f for f in p.rglob("*.parquet") if not f.name.startswith("."))
    raise UserError(f"no results at {p}: give a results file, a machine folder or a results tree")


def load(path: Path | str):
    """A pandas DataFrame of one run, a machine folder or a whole results tree.

    Columns include ``suite, case, framework, mode, device, phase, median_s,
    status`` and the raw ``samples_s``; see ``bench.spec.Record`` for all.
    """
    import pandas as pd

    found = files(path)
    if not found:
        raise UserError(f"no results files (*.parquet) under {path}: run `bench run` first")
    frames, _ = _read_all(found, explicit={Path(path)})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _read_all(found: list[Path], explicit: set[Path]) -> tuple[list, list[dict[str, Any]]]:
    """Rows and metadata of each file. A broken file found inside a folder is
    skipped with a message on stderr, so one bad copy does not hide the rest;
    a broken file named explicitly, or a folder with nothing readable, is an error.
    """
    frames, metas, problems = [], [], []
    for f in found:
        try:
            meta, frame = read_metadata(f), _read_file(f)
        except UserError as exc:
            if f in explicit:
                raise
            problems.append(str(exc))
            continue
        metas.append(meta)
        frames.append(frame)
    if not frames:
        raise UserError(problems[0])
    for problem in problems:
        print(f"bench: skipping {problem}", file=sys.stderr)
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
    out: list[Path] = []
    for run in runs:
        path = Path(run)
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
        out.extend(f for f in found if f not in out)
    return out


def read_runs(sources: Iterable[Path | str]) -> tuple[Any, list[dict[str, Any]]]:
    """The rows (one DataFrame) and the metadata of every results file under ``sources``."""
    import pandas as pd

    found: list[Path] = []
    for src in sources:
        under = files(src)
        if not under:
            raise UserError(f"no results files (*.parquet) under {src}: run `bench run` first")
        found.extend(f for f in under if f not in found)
    if not found:
        raise UserError("no results given: name a run id, a results file or a folder")
    frames, metadata = _read_all(found, explicit={Path(s) for s in sources if Path(s).is_file()})
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return df, metadata
