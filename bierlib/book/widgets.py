"""ipywidgets explorers for a live notebook.

Widgets need a running kernel: in the rendered book every explorer has a static
twin (the figure that the same plotting function draws for fixed choices). The picture a
widget shows is an ``<img>`` with the figure's description as its alt text
(:func:`bierlib.book.figures.figure_html`); every control has a visible name
(``description``), which the book's pages also give to the slider's handle as its
accessible name (``book/_ext/static/a11y.js``). All controls work from the keyboard: Tab
reaches them, the arrow keys move the slider, Enter presses the button.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt

from ..plotting import plot_retrieval
from ..utils import check_labels
from .figures import figure_html


def _show(out: widgets.HTML, fig, lead: str | None = None) -> None:
    """Show ``fig`` in ``out`` as an image described by its alt text (and close it)."""
    out.value = figure_html(fig, lead)


def retrieval_explorer(images, embeddings, labels, k: int = 8,
                       class_names: Sequence[str] | None = None) -> widgets.VBox:
    """Pick a query (by index, or at random) and see its k nearest neighbours.

    The static twin is :func:`bierlib.maps.plot_retrieval` for a few fixed queries.
    """
    labels = check_labels(labels, length=len(embeddings))
    query = widgets.IntSlider(value=0, min=0, max=len(labels) - 1, description="query",
                              continuous_update=False)
    shuffle = widgets.Button(description="random query")
    out = widgets.HTML()

    def redraw(*_):
        _show(out, plot_retrieval(images, embeddings, labels, [query.value], k, class_names))

    def pick_random(_):
        query.value = random.randrange(len(labels))

    query.observe(redraw, names="value")
    shuffle.on_click(pick_random)
    redraw()
    return widgets.VBox([widgets.HBox([query, shuffle]), out])


def view_switcher(draw, options: Sequence[str], description: str = "view",
                  figsize: tuple[float, float] = (6, 5)) -> widgets.VBox:
    """A dropdown over ``options``; choosing one calls ``draw(option, ax)`` on a fresh Axes.

    Used to switch between learners of an ensemble or to scrub through epochs. The
    static twin is a figure with one panel per option.
    """
    options = list(options)
    if not options:
        raise ValueError("options is empty: give at least one view to show")
    choice = widgets.Dropdown(options=options, value=options[0], description=description)
    out = widgets.HTML()

    def redraw(*_):
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        draw(choice.value, ax)
        _show(out, fig, lead=f"{description}: {choice.value}.")

    choice.observe(redraw, names="value")
    redraw()
    return widgets.VBox([choice, out])
