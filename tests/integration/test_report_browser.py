"""The report in a real browser: headless Chromium must run every script without error and draw every plot.

A unit test can only check the HTML text; a page whose plotly call throws, or whose JSON plotly
rejects, looks fine there and shows blank boxes to a reader. Here Chromium loads the file offline
(no network is needed: plotly.js is inline), the page's own error collector writes any script
error into ``#report-errors``, and the dumped DOM must hold plotly's SVG (``main-svg``) inside every
plot div. A control page with a planted error and an undrawn plot must fail the same checks.

Needs the Debian package: ``apt-get install -y chromium`` (skipped with that message otherwise).
Set ``PARETODISTILL_SCREENSHOT=path.png`` to keep the screenshot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402

pytestmark = pytest.mark.integration

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed; on Debian/Ubuntu: apt-get install -y chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",  # software WebGL for parcoords
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--virtual-time-budget=10000",
]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["nice", "-n", "15", CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180,
    )


class PageState(HTMLParser):
    """From a dumped DOM: plot divs and whether plotly drew SVG in them, the error box, the load flag."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []  # (tag, id of the plot div it opens)
        self.plots: dict[str, bool] = {}
        self.open_plots: list[str] = []
        self.errors: list[str] = []
        self.in_errors = 0
        self.loaded = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "body":
            self.loaded = attrs.get("data-report-loaded") == "1"
        for plot in self.open_plots:
            if "main-svg" in classes:
                self.plots[plot] = True
        if tag in VOID:
            return
        plot = None
        if "plotly-graph-div" in classes:
            plot = attrs.get("id")
            self.plots[plot] = False
            self.open_plots.append(plot)
        if attrs.get("id") == "report-errors":
            self.in_errors = 1
        elif self.in_errors:
            self.in_errors += 1
        self.stack.append((tag, plot))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        while self.stack:  # tolerate unbalanced markup inside SVG
            open_tag, plot = self.stack.pop()
            if plot is not None:
                self.open_plots.remove(plot)
            if self.in_errors:
                self.in_errors -= 1
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self.in_errors and data.strip():
            self.errors.append(data.strip())


def page_state(profile: Path, page: Path) -> PageState:
    result = chromium(profile, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-3000:]
    state = PageState()
    state.feed(result.stdout)
    return state


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from paretodistill.report.html import build_report, write_analysis

    directory = fx.demo_study(tmp_path_factory.mktemp("study"))
    write_analysis(fx.demo_analysis(), directory / "analysis" / "made-up")
    return build_report(directory, directory / "report.html")


@needs_chromium
def test_every_plot_draws_without_script_errors(report, tmp_path):
    state = page_state(tmp_path / "profile", report)
    assert state.loaded, "the page's load handler never ran"
    assert state.errors == []
    assert len(state.plots) == 10  # 2 frontiers, 2 importances, 2 parallel coordinates, curves, hypervolume, flash/regular, topics
    assert [plot for plot, drawn in state.plots.items() if not drawn] == []


@needs_chromium
def test_the_checks_catch_a_broken_page(report, tmp_path):
    page = report.read_text()
    first_plot = page.index("Plotly.newPlot(")
    broken = page[:first_plot] + "(function () {})(" + page[first_plot + len("Plotly.newPlot("):]
    broken = broken.replace("</body>", "<script>window.notAFunction();</script></body>")
    (tmp_path / "broken.html").write_text(broken)
    state = page_state(tmp_path / "profile", tmp_path / "broken.html")
    assert any("notAFunction" in error for error in state.errors)
    assert sum(not drawn for drawn in state.plots.values()) == 1


@needs_chromium
def test_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    result = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,3000", report.as_uri())
    assert result.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if os.environ.get("PARETODISTILL_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["PARETODISTILL_SCREENSHOT"])


REAL_STUDY = os.environ.get("PARETODISTILL_REPORT_STUDY")


@needs_chromium
@pytest.mark.skipif(not REAL_STUDY, reason="set PARETODISTILL_REPORT_STUDY=<study dir> to check the report of a real search")
def test_report_of_a_real_study(tmp_path):
    """The same checks on the report of a real search (its study folder, e.g. after `paretodistill search`)."""
    from paretodistill.report.html import build_report

    page = build_report(Path(REAL_STUDY), tmp_path / "report.html")
    state = page_state(tmp_path / "profile", page)
    assert state.loaded and state.errors == []
    assert len(state.plots) >= 8, sorted(state.plots)
    assert [plot for plot, drawn in state.plots.items() if not drawn] == []
