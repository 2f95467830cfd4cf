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
* accessibility (WCAG 2.1 AA, checked with axe-core by the browser test):

  - a notebook's PNG output whose metadata carries ``{"image/png": {"alt": ...}}`` (the
    description :func:`bierlib.book.figures.show_figure` generates from the figure's data)
    gets it as the image's ``alt``; myst-nb 1.4 reads only ``width`` and ``height`` there,
    and Sphinx would otherwise write the file's path;
  - the bibliography's entries are ``role="doc-biblioentry"`` (deprecated) inside a
    ``role="list"`` that then has no list items: they become ``role="listitem"``;
  - an exercise's title becomes a heading for assistive technology (``role="heading"``, one
    level below the section it is in), so heading navigation reaches every exercise;
  - myst-nb's "Show code cell source" toggles are named by their visible text, not by an
    ``aria-label`` that does not contain it;
  - ``templates/``: the theme's print-only copy of the page title is not a second ``<h1>``,
    and its search and colour-mode buttons' accessible names contain their visible text;
  - ``static/a11y.js`` names the widgets' slider handles after their visible label.
* chapters are executed by :func:`bierlib.book.execution.execute` instead of myst-nb's own
  call of ``jupyter_cache``'s ``single_nb_execution`` (same arguments and result): kernel
  waits bounded to a second (no silent stall), per-cell timeouts from the recorded cold
  times, and per-cell timings in ``_build/cell_times.json`` with stalls and slow cells
  reported in the build log.
"""
import functools
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

LOGGER = logging.getLogger("bierlib")


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", script) or ""  # the copies differ only in None vs ""
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def fix_page(app, pagename, templatename, context, doctree):
    context["default_mode"] = context.get("default_mode") or "auto"
    if "body" in context:  # docutils' bibliography markup (sphinxcontrib-bibtex citations)
        context["body"] = (context["body"]
                           .replace('role="doc-biblioentry"', 'role="listitem"')
                           .replace('<summary aria-label="Toggle hidden content">', "<summary>"))
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


def add_templates(app, config):
    # first: pydata-sphinx-theme puts its own components/ folder on the path at setup
    config.templates_path.insert(0, str(Path(__file__).parent / "templates"))


def alt_from_output_metadata(app):
    """Make myst-nb give a notebook image the ``alt`` text of its output metadata."""
    from myst_nb.core.render import NbElementRenderer

    original = NbElementRenderer.render_image
    if getattr(original, "reads_alt", False):
        return

    def render_image(self, data):
        rendered = original(self, data)
        alt = data.output_metadata.get(data.mime_type, {}).get("alt")
        for node in rendered:
            if alt and isinstance(node, nodes.image):
                node["alt"] = str(alt)
        return rendered

    render_image.reads_alt = True
    NbElementRenderer.render_image = render_image


class exercise_heading(nodes.title):
    """An exercise's title, written as the theme writes it ("Exercise 3 (...)") with
    ``role="heading"`` and ``aria-level`` added to its tag."""


def visit_exercise_heading(self, node):
    start = len(self.body)
    self.visit_title(node)  # <p class="admonition-title"> and the exercise's number
    self.body[start] = self.body[start].replace(
        "<p ", f'<p role="heading" aria-level="{node["level"]}" ', 1)


def depart_exercise_heading(self, node):
    self.depart_title(node)


def exercise_headings(app, doctree, docname):
    """Give each exercise's title a heading level, one below its section's."""
    from sphinx_exercise.nodes import is_exercise_node

    for exercise in list(doctree.findall(is_exercise_node)):
        title = exercise.children[0] if exercise.children else None
        if not isinstance(title, nodes.title):
            continue
        depth = sum(isinstance(a, nodes.section) for a in _ancestors(exercise))
        heading = exercise_heading(title.rawsource, "", *title.children, **title.attributes)
        heading["level"] = min(depth + 1, 6)
        exercise.replace(title, heading)


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node


def bounded_execution(app):
    """Route myst-nb's notebook execution through :func:`bierlib.book.execution.execute`."""
    import myst_nb.core.execute.direct as direct

    from bierlib.book import execution, notebook

    calibration = notebook.calibrate_fresh()  # as a setup cell measures it
    speed = notebook.speed_factor(seconds=calibration)
    times = Path(app.outdir).parent / "cell_times.json"
    times.unlink(missing_ok=True)  # this build's timings only
    LOGGER.info(f"bierlib: this machine takes {speed:.2f}x the reference machine's time per "
                "training step; cells report stalls and times in " + str(times))
    direct.single_nb_execution = functools.partial(
        execution.execute, record=notebook.chapter_times(), speed=speed, times_file=times,
        calibration_seconds=calibration, log=LOGGER.info, heartbeat=LOGGER.info)


def setup(app):
    app.connect("config-inited", add_templates)
    app.connect("builder-inited", add_static)
    app.connect("builder-inited", alt_from_output_metadata)
    app.connect("doctree-resolved", exercise_headings)
    app.add_node(exercise_heading, html=(visit_exercise_heading, depart_exercise_heading))
    app.add_js_file("a11y.js", loading_method="defer")
    app.connect("builder-inited", bounded_execution)
    app.add_js_file("mathjax2-compat.js", loading_method="defer", priority=501)  # after MathJax (500)
    # html-page-context stops at the first handler that returns a template: run first
    app.connect("html-page-context", fix_page, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
