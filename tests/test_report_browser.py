"""The report page in a real browser: headless Chromium renders the figures, runs the
page's script without console errors, sorts a table and fits a narrow screen.

Needs Debian's chromium (`apt-get install chromium`; .ci/run installs it); skipped without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import write_results

from bench import report
from bench.report.figures import FIGURES

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
    assert dom.count('<svg class="figure"') == len(FIGURES)
    assert "Gradients cost" in dom
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


def test_the_page_fits_a_narrow_screen(html, tmp_path):
    """On a phone-sized window nothing but the wide tables (in their own scroll boxes) overflows."""
    page = tmp_path / "narrow.html"
    page.write_text(with_script(html, """
        var svg = document.querySelector("svg.figure");
        document.body.setAttribute("data-fit", [window.innerWidth, document.documentElement.scrollWidth,
            Math.ceil(svg.getBoundingClientRect().right)].join(" "));
    """), encoding="utf-8")
    proc = chromium(page, tmp_path / "profile", "--dump-dom", window="390,844")
    assert console_messages(proc.stderr) == []
    window, page_width, svg_right = map(int, re.search(r'data-fit="([^"]*)"', proc.stdout).group(1).split())
    assert window < 800  # headless Chromium's smallest window is 500 px wide
    assert page_width <= window and svg_right <= window, (window, page_width, svg_right)
