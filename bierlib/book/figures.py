"""Figures in the book, shown with a description of their data as the picture's alt text.

Every chapter shows its figures with :func:`show_figure` instead of ``plt.show()``. The PNG
output carries the description (:func:`bierlib.describe.describe_figure`) in its metadata,
``{"image/png": {"alt": ...}}``; the book's Sphinx extension (``book/_ext/site_fixes.py``)
makes it the ``alt`` attribute of the rendered image. The metadata also lists the colours
of each panel's series (``{"bierlib": {"series_colours": ...}}``), which the test of the
built book checks under simulated colour blindness. Widgets, which show their pictures
inside the page's HTML, use :func:`figure_html`.
"""
from __future__ import annotations

import html

import matplotlib.pyplot as plt
from IPython.core.pylabtools import print_figure
from IPython.display import display

from ..describe import describe_figure, series_colours


def figure_metadata(fig, lead: str | None = None) -> dict:
    """The output metadata of ``fig``: its description as alt text, its series' colours."""
    return {"image/png": {"alt": describe_figure(fig, lead)},
            "bierlib": {"series_colours": [series_colours(ax) for ax in fig.axes]}}


def show_figure(fig, lead: str | None = None) -> None:
    """Display ``fig`` as a PNG described by ``lead`` (optional: a sentence on what the figure
    compares) and the description generated from its data, then close it."""
    metadata = figure_metadata(fig, lead)  # before closing: the Axes are read
    display(fig, metadata=metadata)
    plt.close(fig)


def figure_html(fig, lead: str | None = None) -> str:
    """``<img>`` of ``fig`` as an inline PNG with its description as ``alt``; closes ``fig``."""
    alt = describe_figure(fig, lead)
    data = print_figure(fig, fmt="png", bbox_inches="tight", base64=True)
    plt.close(fig)
    return (f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}" '
            'style="max-width: 100%; height: auto;">')
