"""``bench report``: one self-contained HTML page from stored results.

``render(df, metadata)`` returns the page as text; ``write(sources, out)`` reads
results files (run files, machine folders or trees) and writes the page. The
page loads nothing from the network: figures are inline SVG, the tables are
downloadable from data: URIs, and every value from a results file is escaped.

matplotlib and jinja2 are imported here only, never by ``import bench``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["read", "render", "write"]


def read(sources: Iterable[Path | str]) -> tuple[Any, list[dict[str, Any]]]:
    """The rows and the metadata of every results file under ``sources`` (see ``store.read_runs``)."""
    from bench import store

    return store.read_runs(sources)


def render(df: Any, metadata: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
           title: str | None = None) -> str:
    """The report page for the rows ``df`` (as ``bench.load`` returns) and their runs' metadata."""
    from bench.report import data, figures, page

    if isinstance(metadata, Mapping):
        metadata = [metadata]
    metas = [dict(m) for m in (metadata or [])]
    d = data.build(df, metas)
    if title is None:
        ids = sorted(df["run_id"].astype(str).unique())
        title = f"bench report: {ids[0]}" if len(ids) == 1 else f"bench report: {len(ids)} runs"
    return page.render_page(d, figures.build(d), title)


def write(sources: Path | str | Iterable[Path | str], out_path: Path | str) -> Path:
    """Read the results under ``sources``, render the page and write it to ``out_path``."""
    from bench.errors import UserError

    if isinstance(sources, str | Path):
        sources = [sources]
    df, metadata = read(sources)
    html = render(df, metadata)
    out = Path(out_path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {exc.strerror or exc}") from exc
    return out
