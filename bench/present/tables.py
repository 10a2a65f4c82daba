"""Tables for people and for scripts: rows of values and column specs, printed four ways.

``table`` (the default) is a title, a header over a rule and aligned columns,
fitted to the terminal: when the columns do not fit, the headers and the
labels get shorter, then the stacking column (a case) leaves the table for
a line above its rows, then the least useful columns go, highest ``drop``
first; a column with ``drop=0`` (framework, R, status, verdict) always stays
and its cells stay whole. ``plain`` is every column, aligned, without box
characters or colours (for logs and ``grep``); ``markdown`` is a pipe table
per sheet; ``json`` is one document whose rows carry numbers as numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from bench.core.cases import parse_id

FORMATS = ("table", "plain", "markdown", "json")
GAP = 2  # spaces between two columns
WRAP_MIN = 16  # the narrowest a wrapping column (free text) gets

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    """How one column shows a row: its header, its text, and what it gives up when space is short."""

    key: str  # the row's value shown by default
    header: str
    text: Callable[[Row], str] | None = None  # the cell (default: the row's value at ``key``)
    short: str = ""  # the header when space is short
    brief: Callable[[Row], str] | None = None  # the cell when space is short
    style: Callable[[Row], str] | None = None
    right: bool = False
    drop: int = 0  # 0: always shown; otherwise dropped when space is short, highest first
    stack: Callable[[Row], str] | None = None  # may become a line above its rows, reading this
    wrap: bool = False  # free text: may wrap over lines at word boundaries
    fold_header: bool = False  # the header may wrap at its spaces (a list of names)

    def cell(self, row: Row, brief: bool = False) -> str:
        """The cell's text on one line."""
        f = self.brief if brief and self.brief else self.text
        value = f(row) if f else row.get(self.key, "")
        return " ".join(str(value).split("\n")) if value is not None else ""


@dataclass(frozen=True)
class Sheet:
    """One table: ``name`` is its key in JSON, ``notes`` are printed under it."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()  # the keys of a row that JSON carries (default: all)


@dataclass(frozen=True)
class Line:
    """A sentence between tables; in JSON under ``name`` as ``value`` (left out without a name)."""

    text: str
    style: str = ""
    name: str = ""
    value: Any = None


@dataclass(frozen=True)
class Layout:
    """What a sheet shows at a width: its columns, their headers and widths, the columns shown
    brief (by key), and the column that became a line above its rows (if any)."""

    columns: tuple[Column, ...]
    headers: tuple[str, ...]
    widths: tuple[int, ...]
    brief: frozenset[str] = frozenset()
    stacked: Column | None = None
    dropped: tuple[str, ...] = field(default=())


Block = Sheet | Line


def _steps(sheet: Sheet) -> Iterator[tuple[bool, frozenset[str], Column | None, float]]:
    """(fold, brief columns, stacked column, drop level) from the whole table to the narrowest one:
    headers folded, then brief labels one column at a time (the widest saving first), then the
    stacked column, then the droppable columns, highest ``drop`` first."""
    stack = next((c for c in sheet.columns if c.stack is not None), None)
    yield False, frozenset(), None, math.inf
    if any(c.fold_header for c in sheet.columns):
        yield True, frozenset(), None, math.inf
    briefs = _briefs(sheet)
    for i in range(1, len(briefs) + 1):
        yield True, frozenset(c.key for c in briefs[:i]), None, math.inf
    every = frozenset(c.key for c in briefs)
    if stack is not None:
        yield True, every, stack, math.inf
    for level in sorted({c.drop for c in sheet.columns if c.drop}, reverse=True):
        yield True, every, stack, level


def _briefs(sheet: Sheet) -> list[Column]:
    """The columns with a shorter header or shorter cells, the one that saves the most width first."""
    def saving(c: Column) -> int:
        full = _natural(c, c.header, [c.cell(r) for r in sheet.rows], True)[0]
        return full - _natural(c, c.short or c.header, [c.cell(r, True) for r in sheet.rows], True)[0]

    return sorted((c for c in sheet.columns if c.short or c.brief), key=saving, reverse=True)


def _natural(col: Column, header: str, cells: Sequence[str], fold: bool) -> tuple[int, int]:
    """(natural, narrowest) width of a column: wrapping columns may shrink to a word or WRAP_MIN,
    a folding header (with ``fold``) to its longest word."""
    widest = max((cell_len(c) for c in cells), default=0)
    fold = fold and col.fold_header and bool(header.split())
    head = max(map(cell_len, header.split())) if fold else cell_len(header)
    natural = max(widest, head)
    if not col.wrap:
        return natural, natural
    word = max((cell_len(w) for c in cells for w in c.split()), default=0)
    return natural, min(natural, max(head, min(word, WRAP_MIN), WRAP_MIN))


def _fit_wraps(columns: Sequence[Column], sizes: Sequence[tuple[int, int]], width: int) -> list[int] | None:
    """Widths within ``width`` (wrapping columns shrunk as needed), or None when they cannot fit."""
    widths = [n for n, _ in sizes]
    total = sum(widths) + GAP * (len(widths) - 1)
    if total <= width:
        return widths
    if sum(lo for _, lo in sizes) + GAP * (len(widths) - 1) > width:
        return None
    # Take the excess off the widest wrapping columns first.
    excess = total - width
    while excess > 0:
        i = max((j for j, c in enumerate(columns) if c.wrap and widths[j] > sizes[j][1]),
                key=lambda j: widths[j])
        widths[i] -= 1
        excess -= 1
    return widths


def fit(sheet: Sheet, width: int | None) -> Layout:
    """The fullest layout of ``sheet`` within ``width`` columns (None: no limit, every column)."""
    chosen: Layout | None = None
    for fold, brief, stacked, level in _steps(sheet):
        cols = [c for c in sheet.columns if c is not stacked and not (c.drop and c.drop >= level)]
        headers = [(c.short or c.header) if c.key in brief else c.header for c in cols]
        sizes = [_natural(c, h, [c.cell(r, c.key in brief) for r in sheet.rows], fold)
                 for c, h in zip(cols, headers, strict=True)]
        dropped = tuple(c.header for c in sheet.columns if c not in cols and c is not stacked)
        widths = _fit_wraps(cols, sizes, width) if width is not None else [n for n, _ in sizes]
        chosen = Layout(tuple(cols), tuple(headers), tuple(widths or [lo for _, lo in sizes]), brief,
                        stacked, dropped)
        if widths is not None:
            return chosen
    assert chosen is not None and width is not None
    return _squeezed(chosen, width)


def _squeezed(layout: Layout, width: int) -> Layout:
    """The narrowest layout still too wide: its widest columns fold over lines (no character is lost)."""
    widths = list(layout.widths)
    excess = sum(widths) + GAP * (len(widths) - 1) - width
    while excess > 0 and max(widths) > 4:
        widths[widths.index(max(widths))] -= 1
        excess -= 1
    return Layout(layout.columns, layout.headers, tuple(widths), layout.brief, layout.stacked,
                  layout.dropped)


def _wrapped(text: str, width: int, console: Console) -> list[str]:
    """``text`` over lines of at most ``width`` cells, broken at spaces (folded where a word is longer)."""
    if cell_len(text) <= width:
        return [text]
    return [line.plain.rstrip() for line in Text(text).wrap(console, width, overflow="fold")] or [""]


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * max(0, width - cell_len(text))
    return space + text if right else text + space


def grouped(sheet: Sheet, stacked: Column | None) -> list[tuple[str | None, list[Row]]]:
    """The rows in groups of one stacked value (in the order each value first appears)."""
    if stacked is None:
        return [(None, list(sheet.rows))]
    groups: dict[str, list[Row]] = {}
    for r in sheet.rows:
        assert stacked.stack is not None
        groups.setdefault(stacked.stack(r), []).append(r)
    return list(groups.items())


def lines(sheet: Sheet, layout: Layout, console: Console, width: int | None = None, styled: bool = True,
          rule: bool = True) -> list[Text]:
    """The sheet as lines of text in ``layout``: title, header, a rule, rows (grouped when stacked), notes.

    The title, the stacked values and the notes wrap at word boundaries within ``width`` (None: never).
    """
    total = sum(layout.widths) + GAP * (len(layout.widths) - 1)
    room = max(width, total) if width is not None else 10**6
    out = [Text(t, style="table.title" if styled else "") for t in _wrapped(sheet.title, room, console)
           ] if sheet.title else []
    heads = [_wrapped(h, w, console) for h, w in zip(layout.headers, layout.widths, strict=True)]
    for i in range(max(map(len, heads), default=0)):
        cells = [(h[i] if i < len(h) else "", c.right, w) for h, c, w in zip(heads, layout.columns,
                                                                            layout.widths, strict=True)]
        out.append(Text((" " * GAP).join(_pad(t, w, right) for t, right, w in cells).rstrip(),
                        style="bold" if styled else ""))
    if rule:
        out.append(Text("─" * total, style="dim" if styled else ""))
    for group, rows in grouped(sheet, layout.stacked):
        if group is not None:
            out.extend(Text(g, style="bold" if styled else "") for g in _wrapped(group, room, console))
        for r in rows:
            out.extend(_row_lines(r, layout, console, styled))
    for note in sheet.notes:
        out.extend(Text(n, style="dim" if styled else "") for n in _wrapped(note, room, console))
    return out


def _row_lines(row: Row, layout: Layout, console: Console, styled: bool) -> list[Text]:
    cells = [_wrapped(c.cell(row, c.key in layout.brief), w, console)
             for c, w in zip(layout.columns, layout.widths, strict=True)]
    styles = [(c.style(row) if c.style and styled else "") for c in layout.columns]
    out = []
    for i in range(max(map(len, cells))):
        line = Text()
        for j, (c, w) in enumerate(zip(layout.columns, layout.widths, strict=True)):
            text = cells[j][i] if i < len(cells[j]) else ""
            pad = " " * max(0, w - cell_len(text))
            if j:
                line.append(" " * GAP)
            line.append(pad if c.right else "")
            line.append(text, style=styles[j] or "")
            line.append("" if c.right else pad)
        line.rstrip()
        out.append(line)
    return out


class View:
    """A sheet as a rich renderable, laid out at the width it is printed in."""

    def __init__(self, sheet: Sheet) -> None:
        self.sheet = sheet

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for line in lines(self.sheet, fit(self.sheet, width), console, width):
            line.no_wrap, line.overflow = True, "fold"
            yield line


def shown(block: Block) -> bool:
    """Whether a block is printed in the text formats (a Line without text is for JSON only)."""
    return isinstance(block, Sheet) or bool(block.text)


def renderable(block: Block) -> View | Text:
    """A block in the ``table`` format, for rich (sentences wrap at word boundaries)."""
    return View(block) if isinstance(block, Sheet) else Text(block.text, style=block.style)


def plain(blocks: Iterable[Block]) -> str:
    """Every column of every sheet, aligned with spaces, no box characters, no colour."""
    console = Console(width=10_000, color_system=None)
    parts = []
    for b in filter(shown, blocks):
        if isinstance(b, Line):
            parts.append(b.text)
            continue
        text = "\n".join(t.plain for t in lines(b, fit(b, None), console, styled=False, rule=False))
        parts.append(text + "\n")
    return "\n".join(parts).rstrip("\n") + "\n"


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(blocks: Iterable[Block]) -> str:
    """Each sheet as a Markdown pipe table under its title (every column), each sentence a paragraph."""
    parts = []
    for b in filter(shown, blocks):
        if isinstance(b, Line):
            parts.append(_md(b.text))
            continue
        head = [f"**{_md(b.title)}**", ""] if b.title else []
        table = ["| " + " | ".join(_md(c.header) for c in b.columns) + " |",
                 "|" + "|".join("---:" if c.right else "---" for c in b.columns) + "|"]
        table += ["| " + " | ".join(_md(c.cell(r)) for c in b.columns) + " |" for r in b.rows]
        parts.append("\n".join([*head, *table, *([""] + [_md(n) for n in b.notes] if b.notes else [])]))
    return "\n\n".join(parts) + "\n"


def _frame_cell(x: Any) -> str:
    if isinstance(x, float):
        return "" if not math.isfinite(x) else f"{x:.6g}"
    return str(x).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(table: Any) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (pandas' to_markdown needs tabulate)."""
    from pandas.api.types import is_numeric_dtype

    cols = [str(c) for c in table.columns]
    numeric = [is_numeric_dtype(table[c]) for c in table.columns]
    lines = ["| " + " | ".join(_frame_cell(c) for c in cols) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_frame_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


# A spreadsheet runs a cell that starts with one of these as a formula (CSV
# injection): such texts get a leading apostrophe, which shows them as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(df: Any) -> Any:
    """A copy of the DataFrame ``df`` whose texts a spreadsheet shows rather than runs (for CSV only).

    Numbers stay numbers: only text cells starting with ``= + - @`` (or a tab
    or carriage return) are prefixed with ``'``, as OWASP advises.
    """
    from pandas.api.types import is_numeric_dtype

    out = df.copy()
    for col in out.columns:
        if not is_numeric_dtype(out[col]):  # object, or pandas' string types (from Arrow)
            out[col] = out[col].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v)
    return out


def _json_value(x: Any) -> Any:
    """Numbers as numbers (NaN and infinities as null), NumPy scalars as Python ones."""
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        try:
            x = x.item()
        except (ValueError, TypeError):
            x = x.tolist() if hasattr(x, "tolist") else str(x)
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (list, tuple)):
        return [_json_value(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _json_value(v) for k, v in x.items()}
    if x is None or isinstance(x, (bool, int, str)):
        return x
    return str(x)


def document(blocks: Iterable[Block]) -> dict[str, Any]:
    """The blocks as one JSON-ready document: each sheet's rows under its name (sheets of one name
    are one list), each named line's value under its name."""
    doc: dict[str, Any] = {}
    for b in blocks:
        if isinstance(b, Sheet):
            keys = b.fields
            rows = [{k: _json_value(r.get(k)) for k in (keys or r.keys())} for r in b.rows]
            doc.setdefault(b.name, []).extend(rows)
        elif b.name:
            doc[b.name] = _json_value(b.text if b.value is None else b.value)
    return doc


def to_json(blocks: Iterable[Block]) -> str:
    """``document`` as JSON text (``json.loads`` reads it back; no NaN)."""
    return json.dumps(document(blocks), indent=1, allow_nan=False) + "\n"


def emit(blocks: Sequence[Block], form: str, console: Console) -> None:
    """Print ``blocks`` on ``console`` in the format ``form`` (one of FORMATS)."""
    if form == "table":
        for b in filter(shown, blocks):
            console.print(renderable(b))
        return
    text = {"plain": plain, "markdown": markdown, "json": to_json}[form](blocks)
    # Written as it is: no markup, no highlighting, no wrapping (a script reads it).
    console.print(Text(text.rstrip("\n")), soft_wrap=True, highlight=False, markup=False)


def case_header(cases: Iterable[str]) -> tuple[str, Callable[[str], str]]:
    """The case column's header and cell: the parameter names over their values (``64,512,2`` under
    ``batch, width, depth``) when every case names the same parameters, else ``case`` over the ids."""
    names = {tuple(k for k, _ in parse_id(c)) for c in cases}
    if len(names) == 1 and (only := names.pop()):
        return ", ".join(only), lambda case: ",".join(v for _, v in parse_id(case))
    return "case", lambda case: case
