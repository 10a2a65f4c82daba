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

import importlib
from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it. They load on first use (PEP 562): the command
# line imports bench.store.location to parse --results, and must not pay for pyarrow then.
_PUBLIC = {
    **dict.fromkeys(("Source", "expand", "files", "new_run_id", "resolve_runs", "run_exists", "run_path",
                     "shard_folder", "stem", "stored_as"), "layout"),
    **dict.fromkeys(("Location", "is_url", "results_arg"), "location"),
    **dict.fromkeys(("fleet_runs", "load", "read_metadata", "read_runs"), "reader"),
    **dict.fromkeys(("COLUMNS", "FORMAT_VERSION", "check_columns"), "schema"),
    **dict.fromkeys(("ResultsWriter", "RunExistsError", "new_run"), "writer"),
}
__all__ = [
    "COLUMNS", "FORMAT_VERSION", "Location", "ResultsWriter", "RunExistsError", "Source", "check_columns",
    "expand", "files", "fleet_runs", "is_url", "load", "new_run", "new_run_id", "read_metadata", "read_runs",
    "resolve_runs", "results_arg", "run_exists", "run_path", "shard_folder", "stem", "stored_as",
]

if TYPE_CHECKING:
    from bench.store.layout import (
        Source,
        expand,
        files,
        new_run_id,
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


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'bench.store' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bench.store.{module}"), name)
