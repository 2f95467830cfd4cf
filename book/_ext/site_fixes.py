"""Fixes for Jupyter Book 1.x pages, found by the browser test (tests/test_book.py).

* sphinx-thebe and sphinx-togglebutton add their inline configuration scripts twice
  under jupyter-book 1.0.4; the second ``const THEBE_JS_URL`` is a SyntaxError on
  every page. Duplicate script entries are dropped from each page.
* pydata-sphinx-theme logs "Got invalid theme mode" on a first visit because
  sphinx-book-theme leaves the page's ``default_mode`` empty; it is set to ``auto``
  (follow the reader's system).
* the ipywidgets HTML manager typesets with the MathJax 2 API (``MathJax.Hub.Queue``),
  a TypeError under MathJax 3; ``static/mathjax2-compat.js``, loaded right after
  MathJax, routes it to MathJax 3.
* chapters are executed by :func:`bierlib.book.execution.execute` instead of myst-nb's own
  call of ``jupyter_cache``'s ``single_nb_execution`` (same arguments and result): kernel
  waits bounded to a second (no silent stall), per-cell timeouts from the recorded cold
  times, and per-cell timings in ``_build/cell_times.json`` with stalls and slow cells
  reported in the build log.
"""
import functools
from pathlib import Path

from sphinx.util import logging

LOGGER = logging.getLogger("bierlib")


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", script) or ""  # the copies differ only in None vs ""
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def fix_page(app, pagename, templatename, context, doctree):
    context["default_mode"] = context.get("default_mode") or "auto"
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    scripts[:] = unique


def add_static(app):
    app.config.html_static_path.append(str(Path(__file__).parent / "static"))


def bounded_execution(app):
    """Route myst-nb's notebook execution through :func:`bierlib.book.execution.execute`."""
    import myst_nb.core.execute.direct as direct

    from bierlib.book import execution, notebook

    calibration = notebook.calibrate()
    speed = notebook.speed_factor(seconds=calibration)
    times = Path(app.outdir).parent / "cell_times.json"
    times.unlink(missing_ok=True)  # this build's timings only
    LOGGER.info(f"bierlib: this machine takes {speed:.2f}x the reference machine's time per "
                "training step; cells report stalls and times in " + str(times))
    direct.single_nb_execution = functools.partial(
        execution.execute, record=notebook.chapter_times(), speed=speed, times_file=times,
        calibration_seconds=calibration, log=LOGGER.info, heartbeat=LOGGER.info)


def setup(app):
    app.connect("builder-inited", add_static)
    app.connect("builder-inited", bounded_execution)
    app.add_js_file("mathjax2-compat.js", loading_method="defer", priority=501)  # after MathJax (500)
    # html-page-context stops at the first handler that returns a template: run first
    app.connect("html-page-context", fix_page, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
