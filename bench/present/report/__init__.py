"""``bench report``: one self-contained HTML page from stored results.

``render(df, metadata)`` returns the page as text; ``write(sources, out)`` reads
results files (run files, machine folders or trees) and writes the page. The
page loads nothing from the network: figures are inline SVG, the tables are
downloadable from data: URIs, and every value from a results file is escaped.

``write`` never replaces what it reads or a results file, writes a regular
file atomically (a hidden temporary file renamed over it, removed if the write
fails), writes through a character device or FIFO (``-o /dev/stdout``), and
refuses folders and other special files.

matplotlib and jinja2 are imported here only, never by ``import bench``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["check_output", "read", "render", "write"]

_PARQUET_MAGIC = b"PAR1"
# Columns the report does not read: no table, figure or download of the page shows the raw samples
# or their process rounds, and as an array per row they are most of a large run's time and memory.
NOT_READ = ("samples_s", "process_rounds")


def read(sources: Iterable[Path | str]) -> tuple[Any, list[dict[str, Any]]]:
    """The rows and the metadata of every results file under ``sources`` (see ``store.read_runs``)."""
    from bench import store

    return store.read_runs(sources, columns=[c for c in store.COLUMNS if c not in NOT_READ])


def render(df: Any, metadata: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
           title: str | None = None) -> str:
    """The report page for the rows ``df`` (as ``bench.load`` returns) and their runs' metadata."""
    from bench.present.report import data, figures, page

    if isinstance(metadata, Mapping):
        metadata = [metadata]
    metas = [dict(m) for m in (metadata or [])]
    d = data.build(df, metas)
    if title is None:
        ids = sorted(df["run_id"].astype(str).unique())
        title = f"bench report: {ids[0]}" if len(ids) == 1 else f"bench report: {len(ids)} runs"
    return page.render_page(d, figures.build(d), title)


def check_output(out_path: Path | str, inputs: Iterable[Path] = ()) -> Path:
    """Where the page for ``out_path`` goes, or a ``UserError`` saying why not there.

    A regular file is replaced where its links lead (the links stay links); a
    character device or FIFO is returned as named, to be written through.

    Refused: an empty name, a ``.parquet`` name, any of ``inputs``, an existing
    results (Parquet) file, a folder, a block device or socket, a path under a file.
    """
    from bench.core.errors import UserError

    if not str(out_path).strip():
        raise UserError("the report's file name is empty: give -o FILE.html")
    out = Path(out_path)
    if out.suffix.lower() == ".parquet":
        raise UserError(f"{out} is a results file name: the report is HTML, give -o FILE.html")
    target = Path(os.path.realpath(out))
    if target in {Path(os.path.realpath(p)) for p in inputs}:
        raise UserError(f"{out} is one of the results files being read: give another -o FILE.html")
    try:
        st = os.stat(out)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {exc.strerror or exc}") from exc
    if st is None:
        folder = target.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise UserError(f"cannot write the report to {out}: {folder} is a file, not a folder")
        return target
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{out} is a folder: give a file name, such as {out / 'report.html'}")
    if stat.S_ISREG(st.st_mode):
        try:
            with open(target, "rb") as fh:
                head = fh.read(len(_PARQUET_MAGIC))
        except OSError:
            head = b""
        if head == _PARQUET_MAGIC:
            raise UserError(f"{out} is a Parquet (results) file: it is not overwritten; give -o FILE.html")
        return target
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        # Written through as named: /dev/stdout links to a pipe that has no path to resolve to.
        return out
    raise UserError(f"{out} is a special file (block device or socket): give -o FILE.html")


def write(sources: Path | str | Iterable[Path | str], out_path: Path | str) -> Path:
    """Read the results under ``sources``, render the page and write it to ``out_path``.

    ``out_path`` is checked (``check_output``) before anything is read.
    """
    from bench import store
    from bench.core.errors import UserError
    from bench.store.location import write_text

    if isinstance(sources, str | Path):
        sources = [sources]
    sources = list(sources)
    # Only local inputs can be the output's file (-o is always local).
    target = check_output(out_path, [p for p in store.expand(sources) if isinstance(p, Path)])
    df, metadata = read(sources)
    html = render(df, metadata)
    try:
        write_text(target, html)  # check_output let only a regular file, a device or a FIFO through
    except OSError as exc:
        raise UserError(f"cannot write the report to {out_path}: {exc.strerror or exc}") from exc
    return Path(out_path)
