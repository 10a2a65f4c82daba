"""mkdocs hook: the results table reference, generated from the schema code.

docs/schema.md holds the prose around a marker line; at build time this hook
replaces the marker with ``bench.store.schema.markdown_reference()`` (every
column with its Arrow type, the format version it came in and its meaning,
then the format versions). The code is the one source of truth, so the page
cannot drift from what ``bench.load`` reads and writes.
"""

from __future__ import annotations

import html

MARKER = "<!-- bench:schema -->"
PAGE = "schema.md"


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        if page.file.src_uri == PAGE:
            # A page that lost its marker would publish without its table, silently.
            from mkdocs.exceptions import PluginError

            raise PluginError(f"{PAGE} has no {MARKER} line: the column table would be missing")
        return markdown
    # Imported here, not at the top: mkdocs loads hooks before it knows whether a page needs one,
    # and a build that never reaches this page should not need bench importable.
    from bench.store.schema import markdown_reference

    return markdown.replace(MARKER, _escape_types(markdown_reference()))


def _escape_types(table: str) -> str:
    """Arrow types such as ``list<float64>`` would read as HTML tags: escape them in the type cells."""
    lines = []
    for line in table.splitlines():
        cells = line.split(" | ")
        if line.startswith("| `") and len(cells) >= 4:
            cells[1] = html.escape(cells[1])
            line = " | ".join(cells)
        lines.append(line)
    return "\n".join(lines) + "\n"
