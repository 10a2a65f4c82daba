"""Where runs are under a results root: run files, shard folders, run ids and what names them.

A run of machine M with id RUN is ``<root>/M/RUN.parquet``; while it runs (or
after it crashed) its rows are in shards beside it,
``<root>/M/RUN/part-000001.parquet``, .... Only this module builds result
paths. Only regular files count; hidden files (what a killed write leaves)
and hidden folders are ignored.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.core import clock
from bench.core.errors import UserError
from bench.store.location import Location, is_url

# A shard's name inside its run's folder: part-000001.parquet, part-000002.parquet, ...
SHARD_RE = re.compile(r"part-(\d{6,})\.parquet")
_SUFFIX = ".parquet"


# A results source as the commands pass it around: a local path, or a URL (``s3://...``).
Source = Path | str


def new_run_id() -> str:
    """A new run's id: the time (UTC, to the second) and 64 random bits, so ids sort by start and two
    runs never share one."""
    return f"{clock.stamp()}-{secrets.token_hex(8)}"


def run_path(results: Source, machine: str, run_id: str) -> Source:
    """Where the run ``run_id`` of ``machine`` lives under the results root ``results``: its compacted
    file, ``<results>/<machine>/<run-id>.parquet`` (its shards, while it runs, are in the folder of that
    name without ``.parquet``)."""
    if isinstance(results, str) and is_url(results):
        return f"{results.rstrip('/')}/{machine}/{run_id}{_SUFFIX}"
    return Path(results) / machine / f"{run_id}{_SUFFIX}"


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
