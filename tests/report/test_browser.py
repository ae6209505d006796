"""A real browser opens the pages: Debian's headless Chromium loads report.html of a real run, and the
`compare --html` page, from file URLs with no network (the suite runs in a loopback-only namespace, and every
host name is mapped to nowhere), logs nothing to its console, draws every chart, and a screenshot has the
charts' colours in it (pixels, not only the file).

`make test` installs Chromium with apt where apt is available (scripts/install-browser); elsewhere these
tests skip and say so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.report.plotting import CLASS_COLORS, PALETTE

Image = pytest.importorskip("PIL.Image", reason="pillow (a test extra) reads the screenshots")
BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no chromium here: `make test` installs Debian's chromium-headless-shell with apt "
    "(scripts/install-browser) where apt is available",
)


def _browse(page: Path, shot: Path) -> tuple[str, str]:
    """(the DOM after the scripts ran, Chromium's log); the screenshot goes to `shot`."""
    assert BROWSER is not None
    headless = ["--headless=new"] if Path(BROWSER).name == "chromium" else []
    proc = subprocess.run(
        [
            BROWSER,
            *headless,
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1300,5000",
            "--virtual-time-budget=15000",
            f"--screenshot={shot}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _pixels_near(shot: Path, color: str, tolerance: int = 24) -> int:
    """How many pixels of the screenshot are (nearly) `color`."""
    target = _rgb(color)
    image = Image.open(shot).convert("RGB")
    counts = image.getcolors(maxcolors=1 << 24) or []
    return sum(
        n for n, rgb in counts if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True))
    )


def _check_page(page: Path, shot: Path, colors: dict[str, int]) -> None:
    html = page.read_text()
    charts = re.findall(r'<div id="(chart-\d+)"', html)
    assert charts
    dom, log = _browse(page, shot)
    console = [line for line in log.splitlines() if "CONSOLE" in line]
    assert console == [], console  # no error, no warning, nothing
    drawn = re.findall(r'<div id="(chart-\d+)" class="plotly-graph-div[^"]*js-plotly-plot', dom)
    assert sorted(drawn) == sorted(charts)  # plotly.js drew every chart: it was inline, nothing was fetched
    assert dom.count('class="main-svg"') >= len(charts)
    for color, least in colors.items():
        found = _pixels_near(shot, color)
        assert found >= least, f"{color}: {found} pixels in the screenshot, expected >= {least}"


def test_report_html_of_a_real_run_renders_offline(runs: dict[str, Path], tmp_path: Path) -> None:
    """Lines of the GET and PUT classes and the stage timeline's bars are on the screenshot."""
    _check_page(
        runs["a"] / "report.html",
        tmp_path / "report.png",
        {CLASS_COLORS["GET"]: 400, CLASS_COLORS["PUT"]: 400, PALETTE[1]: 2000},
    )


def test_compare_html_renders_offline(runs: dict[str, Path], tmp_path: Path) -> None:
    """Both runs' bars and overlaid lines (the palette's first two colours) are on the screenshot."""
    page = tmp_path / "compare.html"
    assert main(["compare", str(runs["a"]), str(runs["slow"]), "--html", str(page)]) == 0
    _check_page(page, tmp_path / "compare.png", {PALETTE[0]: 400, PALETTE[1]: 400})
