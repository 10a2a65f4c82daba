"""Where results live: a local folder or any fsspec URL (``s3://``, ``gs://``, ``memory://``...).

``Location`` is the one place that touches a file system. Local paths keep
the guarantees they always had (a write goes to a temporary file, is synced,
then atomically replaces the target); object stores have no atomic rename,
but a PUT of a whole object is atomic, so bench never rewrites an object in
place: it writes new ones (shards) and replaces an object only by a PUT.

Credentials and endpoints come from the usual places (``AWS_*`` variables,
``AWS_ENDPOINT_URL`` for a server that is not AWS, fsspec's configuration
such as ``FSSPEC_S3_ENDPOINT_URL``, or ``storage_options``), and are never
written into results or reports: a ``Location`` prints as its URL only.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from bench.core.errors import UserError

# Reading more than this from one results object is refused: a results file
# is a table of rows, and a 1M-row run is about 200 MB.
MAX_OBJECT_BYTES = 2 << 30
# Up to this size a results object is fetched whole in one GET; a larger one is read in ranges: the
# footer, then only the columns read (what a command asks for and what validation checks). Reading
# a run's metadata alone (fleet_runs, read_metadata) then costs its footer, not the whole object.
WHOLE_OBJECT_BYTES = 16 << 20

# What a write stores: the bytes, or a function that writes them to a binary file.
Data = bytes | Callable[[BinaryIO], None]


def is_url(text: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` (a file:// URL included), False for a plain path."""
    return "://" in str(text)


def results_arg(text: str) -> Path | str:
    """``--results``: a URL stays a string (its scheme decides the file system), else a local path."""
    if is_url(text) and not text.startswith("file://"):
        return text.rstrip("/") or text
    return Path(text.removeprefix("file://"))


@dataclass(frozen=True)
class Location:
    """A results root: a file system and a path in it."""

    url: str  # as the user gave it, without credentials (fsspec URLs carry none)
    fs: Any = field(repr=False, compare=False)
    root: str  # the path inside ``fs``, without a trailing slash
    local: bool

    @classmethod
    def of(cls, where: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> Location:
        """The location of a local path or an fsspec URL; a UserError when the scheme is unknown."""
        text = os.fspath(where)
        if not is_url(text) or text.startswith("file://"):
            from fsspec.implementations.local import LocalFileSystem

            path = text.removeprefix("file://")
            return cls(path, LocalFileSystem(), str(Path(path).absolute()), True)
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(text, **dict(storage_options or {}))
        except (ImportError, ValueError) as exc:
            scheme = text.split("://", 1)[0]
            hint = " (pip install s3fs)" if scheme in ("s3", "s3a") else (
                " (pip install gcsfs)" if scheme in ("gs", "gcs") else "")
            raise UserError(f"cannot open {text}: {exc}{hint}") from None
        return cls(text.rstrip("/"), fs, root.rstrip("/"), False)

    def __str__(self) -> str:
        return self.url

    def path(self, *parts: str) -> str:
        """A path under the root (for this location's file system)."""
        return "/".join([self.root, *parts]) if parts else self.root

    def display(self, path: str) -> str:
        """How to show ``path`` to a person: a local path, or the URL it has."""
        if self.local:
            return path
        rest = path[len(self.root):].lstrip("/") if path.startswith(self.root) else path
        return f"{self.url}/{rest}" if rest else self.url

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def is_file(self, path: str) -> bool:
        """A regular file (a FIFO or a device is not: reading one could block or never end)."""
        if self.local:
            try:
                return stat.S_ISREG(os.stat(path).st_mode)
            except OSError:
                return False
        try:
            return bool(self.fs.isfile(path))
        except (OSError, ValueError):
            return False

    def is_dir(self, path: str) -> bool:
        try:
            return bool(self.fs.isdir(path))
        except (OSError, ValueError):
            return False

    def find(self, path: str, suffix: str = ".parquet") -> list[str]:
        """Regular files under ``path`` whose names end in ``suffix``, sorted; hidden names skipped.

        Hidden files are what an interrupted write leaves (``.RUN.parquet.tmp``).
        """
        try:
            found = self.fs.find(path, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for name, info in found.items():
            base = name.rsplit("/", 1)[-1]
            if base.startswith(".") or not base.endswith(suffix):
                continue
            if any(part.startswith(".") for part in name[len(path):].split("/")):
                continue
            if info.get("type", "file") != "file" or (self.local and not self.is_file(name)):
                continue
            out.append(name)
        return sorted(out)

    def read_bytes(self, path: str, limit: int = MAX_OBJECT_BYTES) -> bytes:
        """The whole object, refused beyond ``limit`` bytes (a UserError)."""
        if not self.is_file(path):
            raise UserError(f"{self.display(path)} is not a regular file")
        size = self.fs.size(path)
        if size is not None and size > limit:
            raise UserError(f"{self.display(path)} is {size / 2**20:.0f} MiB, more than a results "
                            f"file can be ({limit / 2**20:.0f} MiB); is it the right file?")
        with self.fs.open(path, "rb") as fh:
            data = bytes(fh.read(limit + 1))
        if len(data) > limit:
            raise UserError(f"{self.display(path)} is larger than a results file can be")
        return data

    def reader(self, path: str, whole_below: int | None = None) -> Any:
        """What pyarrow reads the object at ``path`` from: up to ``whole_below`` bytes
        (WHOLE_OBJECT_BYTES), its bytes (one GET: a shard, a small run); a larger object, a file
        object that fetches only the byte ranges read (the Parquet footer, then the chunks of the
        columns asked for), which the caller closes. Beyond MAX_OBJECT_BYTES, refused as
        ``read_bytes`` refuses it. One metadata request first, for the type and size."""
        try:
            info = self.fs.info(path)
        except (OSError, ValueError):
            info = {}
        if info.get("type") != "file":
            raise UserError(f"{self.display(path)} is not a regular file")
        size = info.get("size")
        if size is not None and size > MAX_OBJECT_BYTES:
            raise UserError(f"{self.display(path)} is {size / 2**20:.0f} MiB, more than a results "
                            f"file can be ({MAX_OBJECT_BYTES / 2**20:.0f} MiB); is it the right file?")
        if size is None or size <= (WHOLE_OBJECT_BYTES if whole_below is None else whole_below):
            import pyarrow as pa

            data = self.fs.cat_file(path) if size is not None else self.read_bytes(path)
            return pa.py_buffer(data)
        # No read-ahead cache: pyarrow asks for exactly the ranges it needs.
        return self.fs.open(path, "rb", cache_type="none", size=size)

    def write(self, path: str, data: Data, *, new: bool = False) -> None:
        """Store ``data`` (bytes, or a function that writes them to a file) at ``path`` whole or not
        at all: locally ``write_file``; on an object store one PUT, which is atomic. ``new``: refuse
        to replace an existing object (FileExistsError)."""
        if self.local:
            write_file(Path(path), data, new=new)
            return
        if new and self.fs.exists(path):
            raise FileExistsError(path)
        if callable(data):
            buffer = io.BytesIO()
            data(buffer)
            data = buffer.getvalue()
        self.fs.pipe_file(path, data)

    def delete(self, paths: list[str]) -> None:
        """Remove objects; missing ones are fine."""
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(p)


def write_file(target: Path, data: Data, *, new: bool = False) -> None:
    """The one atomic write of a local file: ``data`` into a hidden temporary file beside ``target``,
    synced, then renamed over it (atomic on POSIX), or removed if anything fails, so a crash or a full
    disk leaves the old file or the new one, never half of one. ``data`` is bytes, or a function that
    writes them to a binary file (a Parquet table streams there without a copy in memory).
    ``new``: the target must not exist (FileExistsError), checked atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if new and target.exists():
        raise FileExistsError(str(target))
    # One temporary name per write: two writers of one folder never share it.
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if new:
            _link_new(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(target: Path, text: str) -> None:
    """``text`` as UTF-8 into ``target``: through it when it is a device or a pipe (``-o /dev/stdout``),
    which must not be replaced by a regular file; else atomically (``write_file``)."""
    try:
        mode: int | None = target.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    write_file(target, text.encode("utf-8"))


def _link_new(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target`` only if ``target`` does not exist (FileExistsError if it does)."""
    try:
        os.link(tmp, target)  # atomic, and fails if the target appeared meanwhile: never overwrite
    except FileExistsError:
        raise
    except OSError:
        # No hard links on this file system (some network and FAT ones):
        # reserve the name exclusively, then replace the empty reservation.
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.replace(tmp, target)
        return
    tmp.unlink()
