"""The report page in a real browser: headless Chromium renders the figures, runs the
page's script without console errors, sorts a table, and lays the page out at a phone's,
a laptop's and a desktop's width (R on screen, nothing clipped, no sideways scrolling), with
screenshots saved to $BENCH_SCREENS or a temporary folder that the test prints.

Needs Debian's chromium (`apt-get install chromium`; .ci/run installs it); skipped without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import drawn_figures, write_results

from bench.present import report
from bench.present.report.figures import FIGURES
from bench.store.writer import ResultsWriter

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="chromium is not installed (apt-get install chromium)"),
]


def chromium(page: Path, profile: Path, *args: str, window: str = "1200,4000") -> subprocess.CompletedProcess:
    """Run headless Chromium on a local file, offline, logging the page's console to stderr."""
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", "--v=0", f"--window-size={window}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def console_messages(stderr: str) -> list[str]:
    """What the page wrote to its console or threw (Chromium logs them as CONSOLE lines)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def with_script(html: str, script: str) -> str:
    """The page with a script run after the page's own (it sees the finished DOM)."""
    return html.replace("</body>", f"<script>{script}</script>\n</body>")


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> str:
    df, metadata = report.read([write_results(tmp_path_factory.mktemp("results"))])
    return report.render(df, metadata)


def test_console_errors_are_detected(tmp_path):
    """The check below would see an error: a page that throws is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><p>x</p><script>notDefined();</script>")
    proc = chromium(bad, tmp_path / "profile", "--dump-dom")
    assert any("notDefined" in m for m in console_messages(proc.stderr)), proc.stderr


def test_figures_render_without_console_errors(html, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    proc = chromium(page, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr
    assert console_messages(proc.stderr) == []
    dom = proc.stdout
    assert drawn_figures(dom) == len(FIGURES)
    assert "the gradient costs" in dom
    # the sorter ran: every sortable heading got a tab stop
    assert re.search(r'<th scope="col" tabindex="0" title="sort by this column">', dom)

    png = tmp_path / "report.png"
    shot = chromium(page, tmp_path / "profile", f"--screenshot={png}")
    assert shot.returncode == 0, shot.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_a_table_sorts_by_a_clicked_column(html, tmp_path):
    page = tmp_path / "sorted.html"
    page.write_text(with_script(html, """
        var table = document.querySelector("table.sortable");
        var th = Array.prototype.find.call(table.tHead.rows[0].cells,
                                           function (c) { return c.textContent.indexOf("R [") === 0; });
        th.click(); th.click();  /* ascending, then descending */
        document.body.setAttribute("data-order", Array.prototype.map.call(table.tBodies[0].rows,
            function (r) { return r.cells[th.cellIndex].getAttribute("data-v"); }).join(" "));
    """), encoding="utf-8")
    proc = chromium(page, tmp_path / "profile", "--dump-dom")
    assert console_messages(proc.stderr) == []
    order = re.search(r'data-order="([^"]*)"', proc.stdout).group(1).split()
    values = [float(v) for v in order]
    assert len(values) >= 2 and values == sorted(values, reverse=True)


# --- layout at a phone's, a laptop's and a desktop's width -----------------------------------
# Headless Chromium's window is at least 500 px wide, so the page is loaded in an iframe of the
# width under test inside a harness page; a script added to the report measures its layout
# after it loaded and posts the findings to the harness, whose DOM --dump-dom prints.

WIDTHS = (420, 1000, 1400)
FIRST_SCREEN = 900  # px: what a reader sees before scrolling

MEASURE = r"""
window.addEventListener("load", function () {
  var W = window.innerWidth, problems = [], smallest = 1e9;
  function outside(r, box) {
    return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 ||
                           r.bottom > box.bottom + 1);
  }
  /* The R column of every per-case table is on screen without scrolling the page or its box. */
  var rCols = 0;
  document.querySelectorAll("table.cases").forEach(function (t, i) {
    var box = t.closest(".scroll").getBoundingClientRect();
    t.querySelectorAll("th.R").forEach(function (th) {
      var r = th.getBoundingClientRect();
      rCols += 1;
      if (r.right > Math.min(W, box.right) + 0.5 || r.left < 0) {
        problems.push("R column off screen: table " + i + " '" + th.textContent + "' ends at " +
                      Math.round(r.right) + " of " + W);
      }
    });
  });
  /* No legend or other text of a figure is clipped at its SVG's edge, and text stays >= 9 px. */
  document.querySelectorAll("svg.figure").forEach(function (svg) {
    var box = svg.getBoundingClientRect(), k = box.width / svg.viewBox.baseVal.width;
    svg.querySelectorAll("g[id*='legend']").forEach(function (g) {
      if (outside(g.getBoundingClientRect(), box)) { problems.push("legend clipped in " + svg.id); }
    });
    svg.querySelectorAll("text").forEach(function (t) {
      if (outside(t.getBoundingClientRect(), box)) { problems.push("text clipped: " + t.textContent); }
      smallest = Math.min(smallest, parseFloat(getComputedStyle(t).fontSize) * k);
    });
  });
  /* The HTML legends stay inside their figure. */
  document.querySelectorAll("ul.legend li").forEach(function (li) {
    var fig = li.closest("figure").getBoundingClientRect();
    if (outside(li.getBoundingClientRect(), fig)) {
      problems.push("legend entry outside: " + li.textContent);
    }
  });
  var scroll = document.documentElement.scrollWidth;
  if (scroll > W) { problems.push("the page scrolls sideways: " + scroll + " > " + W); }
  parent.postMessage(JSON.stringify({width: W, scroll: scroll, height: document.documentElement.scrollHeight,
                                     rCols: rCols, smallest: smallest, problems: problems}), "*");
});
"""


def harness(folder: Path, page: str, width: int, height: int) -> Path:
    """A page that shows ``page`` in an iframe ``width`` px wide and keeps what it posts."""
    path = folder / f"harness-{width}x{height}.html"
    path.write_text(
        '<!doctype html><html><body style="margin:0">'
        '<script>window.addEventListener("message", function (e) {'
        ' document.body.setAttribute("data-check", e.data); });</script>'
        f'<iframe src="{page}" style="border:0;display:block;width:{width}px;height:{height}px"></iframe>'
        "</body></html>", encoding="utf-8")
    return path


def measure(html: str, folder: Path, width: int) -> dict:
    import json

    page = folder / "page.html"
    page.write_text(with_script(html, MEASURE), encoding="utf-8")
    proc = chromium(harness(folder, page.name, width, FIRST_SCREEN), folder / "profile", "--dump-dom",
                    "--virtual-time-budget=5000", window=f"{max(width, 500)},{FIRST_SCREEN}")
    assert console_messages(proc.stderr) == [], proc.stderr
    found = re.search(r'data-check="([^"]*)"', proc.stdout)
    assert found, proc.stdout[-2000:]
    import html as htmllib

    return json.loads(htmllib.unescape(found.group(1)))


def screenshot(folder: Path, out: Path, width: int, height: int) -> None:
    """A PNG of the page at ``width`` px, ``height`` px tall (cut from the harness's window)."""
    from PIL import Image

    shot = folder / "shot.png"
    proc = chromium(harness(folder, "page.html", width, height), folder / "profile", f"--screenshot={shot}",
                    "--virtual-time-budget=5000", window=f"{max(width, 500)},{height}")
    assert proc.returncode == 0, proc.stderr
    with Image.open(shot) as img:
        img.crop((0, 0, width, height)).save(out)


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    """Where the screenshots go: $BENCH_SCREENS, else a temporary folder (printed)."""
    import os

    folder = Path(os.environ.get("BENCH_SCREENS") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def two_machines_html(tmp_path_factory) -> str:
    from test_report_layout import OTHER_RUN, machine_records, write_run

    root = tmp_path_factory.mktemp("two")
    paths = [write_run(root, machine_records("laptop")),
             write_run(root, machine_records("server", OTHER_RUN, 1.5))]
    df, metadata = report.read(paths)
    return report.render(df, metadata)


@pytest.fixture(scope="module")
def memory_html(tmp_path_factory) -> str:
    """A run with memory measured: the memory figures and their long titles are on the page."""
    from test_report_memory import RUN_ID, memory_records

    path = tmp_path_factory.mktemp("mem") / "box" / f"{RUN_ID}.parquet"
    writer = ResultsWriter(path, {"run_id": RUN_ID, "machine": "box", "settings": {"threads": 2}})
    writer.append(memory_records())
    writer.close(interrupted=False)
    return report.render(*report.read([path]))


@pytest.mark.parametrize("which", ["single", "memory", "two-machines"])
@pytest.mark.parametrize("width", WIDTHS)
def test_r_legends_and_the_page_fit_the_screen(html, memory_html, two_machines_html, screens, tmp_path,
                                               which, width):
    """At 420, 1000 and 1400 px: every per-case table's R column is on screen without scrolling,
    no figure text or legend is clipped and none is below 9 px, and the page never scrolls sideways."""
    page = {"single": html, "memory": memory_html, "two-machines": two_machines_html}[which]
    found = measure(page, tmp_path, width)
    # The screenshots first: they show what a failed check found.
    screenshot(tmp_path, screens / f"{which}-{width}-first-screen.png", width, FIRST_SCREEN)
    screenshot(tmp_path, screens / f"{which}-{width}-full.png", width, min(found["height"], 16000))
    assert found["width"] == width
    # One R column per suite's table; on two machines also one per machine in each table of the
    # machines panel (two suites) and its table of median R.
    assert found["rCols"] == {"single": 2, "memory": 1, "two-machines": 2 + 2 * 2 + 2}[which]
    assert found["problems"] == [], found["problems"][:20]
    assert found["smallest"] >= 9, found["smallest"]


def test_the_layout_check_sees_an_r_column_off_screen(tmp_path):
    """The check above can fail: a per-case table wider than a phone, outside a scroll box's view."""
    wide = ('<!doctype html><meta name="viewport" content="width=device-width, initial-scale=1"><body>'
            '<div class="scroll" style="overflow-x:auto"><table class="cases"><tr>'
            '<th style="min-width:600px">case</th><th class="R">R</th></tr></table></div></body>')
    found = measure(wide, tmp_path, 420)
    assert any(p.startswith("R column off screen") for p in found["problems"]), found
