"""The book builds from clean, executing every chapter with warnings as errors, and the built
site works offline in a real browser (headless Chromium)."""
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from bierlib.book.execution import STALL

from .accessibility import UNDESCRIBED_IMAGES, axe_violations, failing
from .conftest import REPO

BUILD = REPO / "_build"
SCREENSHOTS = BUILD / "screenshots"


def toc_files() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for entry in toc["chapters"]]


@pytest.fixture(scope="module")
def build() -> str:
    """Build the book once from clean (no cache, no runs) and return the log."""
    shutil.rmtree(BUILD, ignore_errors=True)
    shutil.rmtree(REPO / "book" / "runs", ignore_errors=True)  # train for real
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", str(REPO), "-W", "-n", "--keep-going"],
                            cwd=REPO, capture_output=True, text=True)
    log = result.stdout + result.stderr
    (BUILD / "build.log").write_text(log)
    assert result.returncode == 0, f"jupyter-book build failed:\n{log[-20000:]}"
    return log


@pytest.mark.book
def test_no_cell_stalled_and_every_cell_was_timed(build):
    """The build executes through bierlib.book.execution: no cell waited for a reply the kernel
    had already sent (the silent stall), and every chapter's cells were timed."""
    import json

    stalls = [line for line in build.splitlines() if "stall:" in line]
    assert not stalls, "\n".join(stalls)
    times = json.loads((BUILD / "cell_times.json").read_text())
    chapters = {Path(name).name for name in toc_files() if (REPO / f"{name}.ipynb").is_file()}
    assert set(times["chapters"]) == chapters
    assert times["calibration_seconds"] > 0
    for name, chapter in times["chapters"].items():
        assert chapter["cells"] and all(c["reply_lag"] < STALL for c in chapter["cells"]), name


@pytest.mark.book
def test_book_builds_and_executes_every_chapter(build):
    for name in toc_files():
        page = BUILD / "html" / f"{name}.html"
        assert page.is_file(), f"{name} was not built"
        if (REPO / f"{name}.ipynb").is_file():  # an executed chapter: outputs and captioned figures
            html = page.read_text()
            assert "cell_output" in html, f"{name} has no outputs: it was not executed"
            figures = re.findall(r'<figure[^>]*>.*?<img.*?<figcaption', html, flags=re.S)
            assert figures, f"{name}: expected captioned figures, found none"
            assert "Traceback (most recent call last)" not in html


@pytest.mark.book
def test_pages_have_one_h1_reachable_exercises_and_described_figures(build):
    """One level-one heading per page; every exercise's title is a heading for assistive
    technology; every figure's alt text is its description, not a file name; every figure's
    series colours stay apart under simulated deuteranopia and protanopia."""
    import nbformat

    from bierlib.palette import MIN_DELTA_E

    from .colour_vision import too_close

    for name in toc_files():
        html = (BUILD / "html" / f"{name}.html").read_text()
        assert len(re.findall(r"<h1\b", html)) == 1, f"{name}: expected one <h1>"
        exercises = re.findall(r'<div class="exercise[^"]*admonition"[^>]*>\s*<p ([^>]*)>', html)
        assert all('role="heading"' in attrs for attrs in exercises), (name, exercises)
        for alt in re.findall(r'<img alt="([^"]*)" src="[^"]*_images/', html):
            assert len(alt.split()) >= 4 and not re.search(r"\.png|_images/", alt), (name, alt)
        executed = BUILD / "jupyter_execute" / f"{name}.ipynb"
        if not (REPO / f"{name}.ipynb").is_file():
            continue
        assert executed.is_file(), f"{executed} missing: where does myst-nb write notebooks?"
        written = sum(c.source.count("{exercise}") for c in nbformat.read(REPO / f"{name}.ipynb",
                                                                           4).cells)
        assert len(exercises) == written, f"{name}: {written} exercises, {len(exercises)} found"
        for cell in nbformat.read(executed, 4).cells:
            for output in cell.get("outputs", []):
                if "image/png" not in output.get("data", {}):
                    continue
                metadata = output.get("metadata", {})
                assert metadata.get("image/png", {}).get("alt"), f"{name}: a figure without alt"
                for colours in metadata.get("bierlib", {}).get("series_colours", []):
                    close = too_close(colours, MIN_DELTA_E)
                    assert not close, f"{name}: series colours too close: {close}"


def chromium():
    """Headless Chromium through Debian's chromium and chromium-driver. Without them the browser
    tests are skipped, with the reason in the summary, unless BIERLIB_REQUIRE_BROWSER=1 (as in
    CI, which installs them), where they fail."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        missing = ", ".join(name for name, path in (("chromium", binary), ("chromedriver", driver))
                            if not path)
        message = (f"the browser test needs Debian's chromium and chromium-driver (not on PATH: "
                   f"{missing}); install them with: apt-get install chromium chromium-driver")
        if os.environ.get("BIERLIB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message}; BIERLIB_REQUIRE_BROWSER=1 forbids skipping")
        pytest.skip(message)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 "--window-size=1280,1600", f"--user-data-dir={BUILD / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(build):
    browser = chromium()  # first: a skip leaves no server running
    handler = functools.partial(QuietHandler, directory=str(BUILD / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield browser, f"http://127.0.0.1:{server.server_port}"
    finally:
        browser.quit()
        server.shutdown()


WAIT_FOR_PAGE = """
const done = arguments[arguments.length - 1];
const mathjax = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
mathjax.then(() => setTimeout(done, 1500), () => done("MathJax failed"));
"""
BROKEN_IMAGES = ("return Array.from(document.images)"
                 ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")


@pytest.mark.book
@pytest.mark.parametrize("name", toc_files())
def test_page_works_offline_in_chromium(site, name):
    browser, base = site
    browser.get(f"{base}/{name}.html")
    assert browser.execute_async_script(WAIT_FOR_PAGE) is None, "MathJax did not finish typesetting"
    errors = [e["message"] for e in browser.get_log("browser")
              if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
    assert not errors, f"JavaScript or loading errors on {name}: {errors}"
    assert browser.execute_script(BROKEN_IMAGES) == []
    html = (BUILD / "html" / f"{name}.html").read_text()
    if re.search(r'class="math', html):
        assert browser.execute_script(
            "return document.querySelectorAll('mjx-container').length") > 0, "math is not typeset"
    if "application/vnd.jupyter.widget-view+json" in html:
        assert browser.execute_script(
            "return document.querySelectorAll('.jupyter-widgets').length") > 0, \
            "the widgets were not rendered"
    if (REPO / f"{name}.ipynb").is_file():
        links = browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href*=\"colab.research.google.com\"]'))"
            ".map(a => a.href)")
        assert links and all(link.endswith(f"/blob/main/{name}.ipynb") for link in links), links
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{Path(name).name}.png"))
    assert browser.execute_script(UNDESCRIBED_IMAGES) == [], "images without a description"
    violations = axe_violations(browser, BUILD / "axe" / f"{Path(name).name}.json")
    assert not failing(violations), f"axe-core on {name}:\n{failing(violations)}"
