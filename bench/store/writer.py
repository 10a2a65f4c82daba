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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.core import clock
from bench.core.records import CaseKey, Record
from bench.store.layout import _SUFFIX, Source, _shard_folder, _where, run_path
from bench.store.schema import FORMAT_VERSION, METADATA_KEY, SCHEMA


class RunExistsError(FileExistsError):
    """The results of a new run are already there (another run's): they are never overwritten."""


def new_run(results: Source, machine: str, run_id: str, metadata: dict[str, Any],
            storage_options: Mapping[str, Any] | None = None) -> ResultsWriter:
    """The writer of a new run under ``results`` (see ``ResultsWriter``)."""
    return ResultsWriter(run_path(results, machine, run_id), metadata, storage_options)


def _table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


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
        self.metadata = {**metadata, "format_version": FORMAT_VERSION, "started": clock.now()}
        self.metadata.setdefault("finished", None)
        self._records: list[Record] = []
        self._loc, self._file = _where(path, storage_options)
        self._folder = _shard_folder(self._file) or f"{self._file}.shards"
        # Where each case's rows are in ``_records`` (``merge`` replaces them in place).
        self._rows: dict[CaseKey, list[int]] = {}
        self._pending: dict[CaseKey, None] = {}  # cases to write in the next shard, in order
        self._shard_paths: list[str] = []
        self._compacted = False

    @property
    def records(self) -> tuple[Record, ...]:
        """The run's rows so far, in the order their cases came (a process's rows merged in)."""
        return tuple(self._records)

    def _add(self, key: CaseKey, record: Record) -> None:
        self._rows.setdefault(key, []).append(len(self._records))
        self._records.append(record)

    def append(self, records: Iterable[Record]) -> None:
        """Add rows (one case's, usually) and write them as a new shard."""

        for r in records:
            key = CaseKey.of(r)
            self._add(key, r)
            self._pending[key] = None
        self.flush()

    def merge(self, records: Iterable[Record]) -> None:
        """Fold a further process's rows of a case into the rows stored for it (``row_stats.merge``)
        and write the merged rows as a new shard."""
        from bench.stats import row_stats

        new: dict[CaseKey, list[Record]] = {}
        for r in records:
            new.setdefault(CaseKey.of(r), []).append(r)
        for key, rows in new.items():
            at = self._rows.get(key)
            if not at:
                for r in rows:
                    self._add(key, r)
            else:
                merged = row_stats.merge([self._records[i] for i in at], rows)
                for i, r in zip(at, merged, strict=True):
                    self._records[i] = r
            self._pending[key] = None
        self.flush()

    def flush(self) -> None:
        """Write the cases not yet written (all their rows) as the next shard."""
        if not self._pending:
            return
        rows = [self._records[i].to_dict() for key in self._pending for i in self._rows[key]]
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

    def close(self, records: Sequence[Record] | None = None, **final: Any) -> None:
        """Mark the run finished (with any last metadata), write the compacted file, delete the shards.

        ``records``: the run's final rows, in place of those written so far (the same cases with
        statistics pooled over the run, and rows held back until now).
        """
        self.metadata.update(final, finished=clock.now())
        if records is not None:
            self._records = list(records)
        if not self._records:
            return
        table = self._table([r.to_dict() for r in self._records])
        try:
            # The first compaction is exclusive: a file there is another run's.
            self._loc.write(self._file, lambda fh: pq.write_table(table, fh), new=not self._compacted)
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

    @property
    def written(self) -> bool:
        """Whether this writer has written anything (a shard or its file), not: whether some file is
        at ``path``."""
        return bool(self._shard_paths) or self._compacted
