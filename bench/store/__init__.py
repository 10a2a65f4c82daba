"""The results store: where runs live, their format and its versions, writing and reading them.

A run of machine M with id RUN is ``<root>/M/RUN.parquet`` under a results
root, a local folder or any fsspec URL (``location``): one long table, one
row per (suite, case, framework, mode, device, dtype, phase) with raw samples
and statistics, its Parquet metadata holding the format version, the machine
fingerprint and the run settings (``schema``). While a run goes on its rows
are in shards beside it (``layout``), written one case at a time
(``writer``); ``reader`` reads runs back and trusts nothing in a file.

The names below are the store's public API; the modules hold the rest.
"""

from __future__ import annotations

from bench.store.layout import (
    Source,
    expand,
    files,
    resolve_runs,
    run_exists,
    run_path,
    shard_folder,
    stem,
    stored_as,
)
from bench.store.location import Location, is_url, results_arg
from bench.store.reader import fleet_runs, load, read_metadata, read_runs
from bench.store.schema import COLUMNS, FORMAT_VERSION, check_columns
from bench.store.writer import ResultsWriter, RunExistsError, new_run

__all__ = [
    "COLUMNS", "FORMAT_VERSION", "Location", "ResultsWriter", "RunExistsError", "Source", "check_columns",
    "expand", "files", "fleet_runs", "is_url", "load", "new_run", "read_metadata", "read_runs",
    "resolve_runs", "results_arg", "run_exists", "run_path", "shard_folder", "stem", "stored_as",
]
