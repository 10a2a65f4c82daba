"""bench.present.tables: one set of rows and column specs, fitted to a terminal or written for scripts."""

from __future__ import annotations

import io
import json
import math
import re

from rich.console import Console

from bench.core import fmt
from bench.present import tables

Col = tables.Column


def sheet(notes: tuple[str, ...] = ()) -> tables.Sheet:
    rows = tuple({"case": f"batch={b},width=512", "framework": fw, "t": 1.234e-3 * b, "R": 2.5 + i / 10,
                  "lo": 2.4, "hi": 2.7 + i, "status": "unreliable" if i % 3 == 0 else "ok", "n": i}
                 for i, (b, fw) in enumerate((b, fw) for b in (64, 16384) for fw in ("torch", "tensorflow")))
    header, shown = tables.case_header(r["case"] for r in rows)
    cols = (Col("case", header, text=lambda r: shown(r["case"]), stack=lambda r: r["case"], fold_header=True),
            Col("framework", "framework"),
            Col("t", "forward ms", short="fwd ms", text=lambda r: fmt.ms(r["t"]), right=True, drop=2),
            Col("R", "R [95% CI]", short="R [CI]", text=lambda r: fmt.ratio(r["R"], r["lo"], r["hi"]),
                right=True),
            Col("status", "status", style=lambda r: "red" if r["status"] != "ok" else ""))
    return tables.Sheet("cases", "demo: forward vs gradient", cols, rows, notes)


def printed(block, width: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(tables.renderable(block))
    return buf.getvalue()


def test_wide_enough_shows_every_column_on_one_header_line():
    text = printed(sheet(), 120)
    assert re.search(r"^batch, width +framework +forward ms +R \[95% CI\] +status$", text, re.MULTILINE), text
    assert "64,512" in text and "16384,512" in text


def test_narrower_stacks_the_case_then_drops_but_never_an_essential_column():
    s = sheet()
    widths = {w: tables.fit(s, w) for w in (120, 60, 45, 41)}
    assert widths[120].stacked is None and not widths[120].brief
    for w, layout in widths.items():
        assert {"framework", "R", "status"} <= {c.key for c in layout.columns}, w
    assert widths[60].stacked is None and widths[60].brief
    assert widths[41].stacked is not None and "t" not in {c.key for c in widths[41].columns}
    text = printed(s, 41)
    assert all(len(line) <= 41 for line in text.splitlines()), text
    assert "batch=16384,width=512" in text  # the stacked case, whole, above its rows
    for r in s.rows:  # each row: its framework, R and status whole on one line
        assert any(r["framework"] in ln and fmt.ratio(r["R"], r["lo"], r["hi"]) in ln and r["status"] in ln
                   for ln in text.splitlines()), (r, text)


def test_even_too_narrow_loses_no_character():
    s = sheet()
    text = printed(s, 24)
    assert all(len(line) <= 24 for line in text.splitlines()), text
    tokens = text.split()
    for r in s.rows:  # folded over lines at its spaces, each piece whole
        assert all(t in tokens for t in fmt.ratio(r["R"], r["lo"], r["hi"]).split()), text


def test_notes_and_titles_wrap_at_word_boundaries():
    note = "[1] torch 64,512: R CI half-width 31 % because the machine was busy " * 2
    text = printed(sheet((note.strip(),)), 50)
    lines = text.splitlines()
    assert all(len(line) <= 50 for line in lines)
    assert set(note.split()) <= set(text.split())  # no word cut in two


def test_a_wrapping_column_shares_what_is_left():
    rows = ({"fact": "machine.processor", "base": "Intel(R) Xeon(R) Platinum 8480C",
             "new": "AMD EPYC 9654 96-Core"},)
    cols = (Col("fact", "fact"), Col("base", "base", wrap=True), Col("new", "new", wrap=True))
    s = tables.Sheet("d", "", cols, rows)
    text = printed(s, 60)
    assert all(len(line) <= 60 for line in text.splitlines())
    assert "machine.processor" in text and "Platinum" in text and "96-Core" in text


def test_plain_is_aligned_every_column_and_no_box_characters():
    text = tables.plain([tables.Line("a sentence"), sheet()])
    assert not set(text) & set("─│┃━┏┗╭╰|")
    lines = text.splitlines()
    assert lines[0] == "a sentence" and "forward ms" in text and "R [95% CI]" in text
    head = next(ln for ln in lines if ln.startswith("batch, width"))
    rows = [ln for ln in lines if ln[:1].isdigit()]
    assert len(rows) == 4
    # Right-aligned columns end where their header ends.
    end = head.index("R [95% CI]") + len("R [95% CI]")
    assert all(ln[end - 1] == "]" for ln in rows), text


def test_markdown_is_a_pipe_table_with_escaped_data():
    s = tables.Sheet("x", "t|1", (Col("a", "a|b"), Col("n", "n", right=True)), ({"a": "x|y", "n": 3},))
    text = tables.markdown([s])
    assert "**t\\|1**" in text
    assert "| a\\|b | n |" in text and "|---|---:|" in text and "| x\\|y | 3 |" in text


def test_json_carries_numbers_as_numbers_and_nan_as_null():
    import numpy as np

    s = tables.Sheet("cases", "t", (Col("R", "R"),),
                     ({"R": 2.5, "low": math.nan, "n": np.int64(3), "x": np.float64(1.5), "name": "a[/]"},),
                     fields=("R", "low", "n", "x", "name"))
    doc = json.loads(tables.to_json([s, s, tables.Line("", name="calls", value={"faster": np.int64(2)})]))
    assert doc["cases"] == [{"R": 2.5, "low": None, "n": 3, "x": 1.5, "name": "a[/]"}] * 2
    assert doc["calls"] == {"faster": 2}
    assert tables.plain([tables.Line("", name="calls", value=1)]).strip() == ""  # JSON-only lines


def test_emit_writes_each_format_as_is():
    buf = io.StringIO()
    console = Console(file=buf, width=40, color_system=None)
    tables.emit([sheet()], "json", console)
    assert len(json.loads(buf.getvalue())["cases"]) == 4
