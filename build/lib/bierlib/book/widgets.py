"""ipywidgets explorers for a live notebook.

Widgets need a running kernel: in the rendered book every explorer has a static
twin (the figure that the same plotting function draws for fixed choices).
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from ..plotting import plot_retrieval
from ..utils import check_labels


def _show(out: widgets.Output, fig) -> None:
    """Replace what ``out`` shows by ``fig`` (then close it so it is not drawn twice)."""
    with out:
        out.clear_output(wait=True)
        display(fig)
    plt.close(fig)


def retrieval_explorer(images, embeddings, labels, k: int = 8,
                       class_names: Sequence[str] | None = None) -> widgets.VBox:
    """Pick a query (by index, or at random) and see its k nearest neighbours.

    The static twin is :func:`bierlib.plotting.plot_retrieval` for a few fixed queries.
    """
    labels = check_labels(labels, length=len(embeddings))
    query = widgets.IntSlider(value=0, min=0, max=len(labels) - 1, description="query",
                              continuous_update=False)
    shuffle = widgets.Button(description="random query")
    out = widgets.Output()

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
    out = widgets.Output()

    def redraw(*_):
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        draw(choice.value, ax)
        _show(out, fig)

    choice.observe(redraw, names="value")
    redraw()
    return widgets.VBox([choice, out])
