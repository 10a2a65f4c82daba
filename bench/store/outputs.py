"""Where bench writes: checked before anything runs, written so that a failure leaves no half file.

Every command that writes (``bench import --results``, ``bench export -o``)
asks here first, so that a mistake (a file where a folder belongs, a folder
where a file belongs, an empty name, a results file as the output) is one
line and exit 2 before any work, not a traceback after it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from bench.core.errors import UserError


def folder(path: Path, option: str) -> Path:
    """``path`` as a folder that exists or can be made: the nearest existing ancestor a writable folder."""
    if not str(path).strip():
        raise UserError(f"{option} '': give a folder")
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file, not a folder: give a folder (it is made if missing)")
    nearest = path
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        raise UserError(f"{option} {path}: {nearest} is a file, not a folder")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: {nearest} is not writable")
    return path


def location(url: str, option: str = "--results") -> None:
    """UserError unless an object can be written and deleted under the URL ``url``: a probe object is
    written, then deleted. No such bucket, no credentials or no network is one line naming the URL."""
    import secrets

    from bench.store.location import Location

    loc = Location.of(url)
    probe = loc.path(f".bench-probe-{secrets.token_hex(8)}")
    try:
        loc.write(probe, b"")
        loc.delete([probe])
    except UserError:
        raise
    except Exception as exc:  # s3fs, botocore, gcsfs...: whatever they raise, the message says why
        # The URL names no credentials (fsspec URLs carry none); storage options are never shown.
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(f"{option}: cannot write under {url} ({type(exc).__name__}: {why}): check the "
                        f"bucket, the credentials (AWS_* variables) and the endpoint, or choose another "
                        f"{option}") from None


def output_file(text: str, option: str, protect: Iterable[Path] = ()) -> Path:
    """The file an option names, checked: a name, not a folder, not a results file, in a usable folder.

    ``protect``: files that must not be overwritten (the inputs being read).
    """
    if not text.strip():
        raise UserError(f"{option} '': give a file name")
    path = Path(text)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder: give a file name in it")
    if path.suffix == ".parquet" or any(_same(path, p) for p in protect):
        raise UserError(f"{option} {path} is a results file: bench never overwrites results; "
                        "give another file name")
    if str(path.parent) not in ("", "."):
        parent = path.parent
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{option} {path}: {parent} is not a folder")
        folder(parent, option)
    return path


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (through a temporary file in its folder).

    A device or a pipe (``/dev/stdout``, ``/dev/null``) is written through,
    never replaced by a regular file.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = None
    try:
        if mode is not None and not stat.S_ISREG(mode):
            with open(path, "w") as fh:
                fh.write(text)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror or exc})") from exc


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and os.path.samefile(a, b)
    except OSError:
        return False
