"""Writes one run: a shard per finished case while it runs, one compacted file at the end.

Locally the compacted file goes to a hidden temporary file that is synced,
then linked into place; object stores get one PUT (``location``). The first
write is exclusive, so a run never replaces another run's results.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.core.records import Record
from bench.store.layout import _SUFFIX, Source, _shard_folder, _where, run_path
from bench.store.schema import FORMAT_VERSION, METADATA_KEY, SCHEMA


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunExistsError(FileExistsError):
    """The results of a new run are already there (another run's): they are never overwritten."""


def new_run(results: Source, machine: str, run_id: str, metadata: dict[str, Any],
            storage_options: Mapping[str, Any] | None = None) -> ResultsWriter:
    """The writer of a new run under ``results`` (see ``ResultsWriter``)."""
    return ResultsWriter(run_path(results, machine, run_id), metadata, storage_options)


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
        from bench.stats import row_stats

        for r in records:
            key = row_stats.case_key(r)
            self._add(key, r)
            self._pending[key] = None
        self.flush()

    def merge(self, records: Iterable[Record]) -> None:
        """Fold a further process's rows of a case into the rows stored for it (``row_stats.merge``)
        and write the merged rows as a new shard."""
        from bench.stats import row_stats

        new: dict[tuple, list[Record]] = {}
        for r in records:
            new.setdefault(row_stats.case_key(r), []).append(r)
        for key, rows in new.items():
            at = self._rows.get(key)
            if not at:
                for r in rows:
                    self._add(key, r)
            else:
                merged = row_stats.merge([self.records[i] for i in at], rows)
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
