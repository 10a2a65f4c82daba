"""Where bench writes: checked before anything runs, written so that a failure leaves no half file.

Every command that writes (``bench import --results``, ``bench export -o``)
asks here first, so that a mistake (a file where a folder belongs, a folder
where a file belongs, an empty name, a results file as the output) is one
line and exit 2 before any work, not a traceback after it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bench.core.errors import UserError
from bench.store.location import Location, is_url
from bench.store.location import write_text as write_text_atomically


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


def results_root(results: Path | str, machine: str | None = None, option: str = "--results") -> None:
    """UserError unless a run can be written under ``results`` (in ``machine``'s folder): a URL is
    checked by writing and deleting a probe object under it, a folder by creating a probe file in it
    (the folders made for the check are removed: a run that measures nothing leaves nothing behind)."""
    if isinstance(results, str) and is_url(results):
        location(results, option)
        return
    _probe_folder(Path(results) / machine if machine else Path(results), option)


def _probe_folder(folder: Path, option: str) -> None:
    """UserError unless a file can be created in ``folder``; folders made for the check are removed."""
    made: list[Path] = []
    try:
        for p in reversed((folder, *folder.parents)):
            if p.is_dir():
                continue
            if p.exists() or p.is_symlink():
                raise UserError(f"{option}: {p} is not a folder: choose a folder with {option}")
            p.mkdir()
            made.append(p)
        fd, probe = tempfile.mkstemp(prefix=".bench-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise UserError(f"{option}: cannot write in {folder} ({why}): choose a writable folder with "
                        f"{option}") from None
    finally:
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()


def location(url: str, option: str = "--results") -> None:
    """UserError unless an object can be written and deleted under the URL ``url``: a probe object is
    written, then deleted. No such bucket, no credentials or no network is one line naming the URL."""
    import secrets

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
    """Write ``text`` to ``path`` whole or not at all (``location.write_text``); a device or a pipe
    (``/dev/stdout``, ``/dev/null``) is written through. A failure is one line (UserError)."""
    try:
        write_text_atomically(path, text)
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror or exc})") from exc


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and os.path.samefile(a, b)
    except OSError:
        return False
