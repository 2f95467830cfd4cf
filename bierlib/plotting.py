"""Pictures of what training measured: correlation heatmaps, training curves, bars per learner.

Each function draws on an ``Axes`` it is given (or a new one) and returns it; nothing
touches global state. Series take their colour, marker, line style and hatch from
:mod:`bierlib.palette` (one style per method on every page), and each function attaches a
description of its data to the Axes (:mod:`bierlib.describe`, the figures' alt text).
The maps of the embedding itself (UMAP, retrieval galleries) are in :mod:`bierlib.maps`,
importable from here too.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects

from .describe import fmt, note
from .evaluation import (correlation_matrix, cross_block_mask, mean_abs_offdiagonal,
                         metric_name)
from .maps import plot_embedding_2d, plot_retrieval, umap_2d  # noqa: F401 (one import place)
from .palette import CONTINUOUS, REFERENCE, Style, series_styles


def _axes(ax, figsize=(6, 5)):
    return ax if ax is not None else plt.subplots(figsize=figsize, layout="constrained")[1]


def plot_correlation(embeddings, ax=None, title: str | None = None, colorbar: bool = True,
                     blocks: Sequence[int] | None = None, vmax: float = 0.4):
    """Heatmap of the absolute correlation between the (D, D) embedding dimensions on a fixed
    0..``vmax`` scale (the diagonal left blank), titled with the mean absolute off-diagonal
    correlation and, given ``blocks`` (e.g. an ensemble's learner sizes), the mean over the
    cross-learner blocks, which are outlined. A -1..1 scale hides differences of a few
    hundredths, the size of the ones this book measures; values above ``vmax`` saturate."""
    return plot_correlation_matrix(correlation_matrix(embeddings), ax, title, colorbar, blocks,
                                   vmax)


def plot_correlation_matrix(corr, ax=None, title: str | None = None, colorbar: bool = True,
                            blocks: Sequence[int] | None = None, vmax: float = 0.4):
    """:func:`plot_correlation` of a precomputed (D, D) correlation matrix (e.g. a study's).
    Colour map: reversed cividis (darker is more correlated); learner outlines are black with
    a white edge, visible on every colour of the map."""
    corr = np.asarray(corr, dtype=float)
    mean = mean_abs_offdiagonal(corr)  # also checks the shape
    summary = f"mean |corr| {mean:.3f}"
    if not 0 < vmax <= 1:
        raise ValueError(f"vmax must be in (0, 1], found {vmax}")
    shown = np.abs(corr)
    np.fill_diagonal(shown, np.nan)
    ax = _axes(ax, figsize=(4.5, 4))
    im = ax.imshow(shown, cmap=f"{CONTINUOUS}_r", vmin=0, vmax=vmax, interpolation="nearest")
    described = (f"Heatmap{' (' + title + ')' if title else ''} of the absolute correlation "
                 f"between the {len(corr)} embedding dimensions, scale 0 to {fmt(vmax)} (darker "
                 f"is more correlated): mean {mean:.3f}, "
                 f"{np.mean(np.nan_to_num(shown) > vmax / 2):.1%} of the pairs above "
                 f"{fmt(vmax / 2)}")
    if blocks:
        if sum(blocks) != len(corr):
            raise ValueError(f"blocks must add up to the {len(corr)} dimensions, found "
                             f"{list(blocks)} (sum {sum(blocks)})")
        starts = np.concatenate([[0], np.cumsum(blocks)])
        cross = cross_block_mask(blocks)
        within = ~cross & ~np.eye(len(corr), dtype=bool)
        summary += f"\ncross-learner {np.abs(corr[cross]).mean():.3f}"
        described += (f"; outlined blocks of {', '.join(map(str, blocks))} dimensions: "
                      f"mean {np.abs(corr[within]).mean():.3f} inside the blocks, "
                      f"{np.abs(corr[cross]).mean():.3f} between them (cross-learner)")
        edge = [patheffects.Stroke(linewidth=2.6, foreground="white"), patheffects.Normal()]
        for lo, hi in zip(starts[:-1], starts[1:]):  # outline each learner's own block
            ax.add_patch(plt.Rectangle((lo - 0.5, lo - 0.5), hi - lo, hi - lo, fill=False,
                                       edgecolor="black", lw=1.4, path_effects=edge))
        span, limits = (-0.5, len(corr) - 0.5), (ax.get_xlim(), ax.get_ylim())
        for position in starts[1:-1] - 0.5:  # the blocks' edges across the whole matrix
            ax.plot(span, (position, position), color="black", lw=0.7)
            ax.plot((position, position), span, color="black", lw=0.7)
        ax.set(xlim=limits[0], ylim=limits[1])
    ax.set(title=f"{title}\n{summary}" if title else summary, xlabel="dimension",
           ylabel="dimension")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8, label="|correlation|",
                           extend="max" if vmax < 1 else "neither")
    note(ax, described + ".")
    return ax


def plot_cross_correlation(matrices, sizes: Sequence[int], ax=None, vmax: float = 0.5):
    """Histograms of the cross-learner absolute correlation (the entries outside the learners'
    blocks) of several (D, D) correlation matrices, ``{name: matrix}``, cut by the learner
    ``sizes``; each labelled with its mean. The heatmaps' summary, where their differences show."""
    if not matrices:
        raise ValueError("matrices is empty: give at least one named correlation matrix")
    ax = _axes(ax, figsize=(4.5, 3.5))
    mask = cross_block_mask(sizes)
    styles, described = series_styles(matrices), []
    for name, corr in matrices.items():
        corr = np.asarray(corr, dtype=float)
        if corr.shape != mask.shape:
            raise ValueError(f"{name}: expected a {mask.shape} matrix for sizes {list(sizes)}, "
                             f"found {corr.shape}")
        cross = np.abs(corr[mask])
        ax.hist(cross, bins=np.linspace(0, vmax, 51), histtype="step", lw=1.8, density=True,
                color=styles[name].colour, linestyle=styles[name].linestyle,
                label=f"{name} ({cross.mean():.3f})")
        described.append(f"{name} mean {cross.mean():.3f}, median {np.median(cross):.3f}, "
                         f"90th percentile {np.quantile(cross, 0.9):.3f}")
    ax.set(xlabel="cross-learner |correlation|", ylabel="density",
           title="outside the learners' blocks")
    ax.legend(fontsize=9, title="mean", title_fontsize=9, loc="upper right")  # mass is left
    note(ax, "Histograms (outlines, one line style each) of the absolute correlation between "
             f"dimensions of different learners, {mask.sum() // 2:,} pairs each: "
             + "; ".join(described) + ".")
    return ax


def reference_line(ax, value: float, label: str, horizontal: bool = True):
    """A dashed grey line at ``value`` (e.g. the pretrained features' Recall@1, the baseline
    every method must beat), labelled for the legend; returns ``ax``."""
    line = ax.axhline if horizontal else ax.axvline
    line(float(value), color=REFERENCE.colour, ls=REFERENCE.linestyle, lw=1.2, label=label,
         zorder=0)
    lo, hi = ax.get_ylim() if horizontal else ax.get_xlim()
    if float(value) > hi - 0.04 * (hi - lo):  # not on the frame's edge, where it hides
        (ax.set_ylim if horizontal else ax.set_xlim)(lo, float(value) + 0.06 * (hi - lo))
    return ax


def plot_history(history, metrics: Sequence[str] = ("recall@1", "nmi"), ax=None, label: str = "",
                 style: Style | None = None):
    """Curves of the recorded ``metrics`` against the epoch (from a training History), drawn in
    ``style`` (default: the style of the method ``label`` names, else the next category's)."""
    ax = _axes(ax, figsize=(5, 3.5))
    epochs = history["epoch"]
    names = [f"{label} {metric_name(name)}".strip() for name in metrics]
    styles = series_styles(names) if style is None else dict.fromkeys(names, style)
    for name, metric in zip(names, metrics):
        ax.plot(epochs, history[metric], ms=4, label=name, **styles[name].line())
    ax.set(xlabel="epoch", ylabel=", ".join(map(metric_name, metrics)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return ax


def plot_learner_recall(results, sizes: Sequence[int], ax=None, metric: str = "Recall@1",
                        part: str = "learner", whole: str = "ensemble"):
    """Grouped bars: for each model, the metric of every learner alone and of the whole ensemble.

    Args:
        results: ``{model name: values}`` with values of shape (S, M + 1) -- one row per
            seed, the M learners then the ensemble; bars are seed means, dots the seeds.
        sizes: the M learner sizes, for the labels.
        part, whole: what the figure's caption calls the parts and their concatenation, in
            the tick labels and the description (e.g. ``"quarter"`` and ``"whole embedding"``
            for a model without learners).
    """
    if not results:
        raise ValueError("results is empty: give at least one model's values")
    ax = _axes(ax, figsize=(8, 4))
    labels = [f"{part} {m + 1}\n(d = {d})" for m, d in enumerate(sizes)] + [whole]
    xs, width = np.arange(len(labels)), 0.8 / len(results)
    styles, described = series_styles(results), []
    for k, (name, values) in enumerate(results.items()):
        values = np.atleast_2d(np.asarray(values, dtype=float))
        if values.shape[1] != len(labels):
            raise ValueError(f"{name}: expected {len(labels)} values per seed "
                             f"({part}s + {whole}), found {values.shape[1]}")
        offset = (k - (len(results) - 1) / 2) * width
        ax.bar(xs + offset, values.mean(0), width=width, label=name, **styles[name].bar())
        for row in values:
            ax.plot(xs + offset, row, "o", ms=3, mfc="white", mec="black", mew=0.8)
        described.append(f"{name}: " + ", ".join(
            f"{label.replace(chr(10), ' ')} {v:.3f}" for label, v in zip(labels, values.mean(0))))
    ax.set(xticks=xs, xticklabels=labels, ylabel=f"{metric_name(metric)} (test classes)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    seeds = {len(np.atleast_2d(v)) for v in results.values()}
    over = "one seed" if seeds == {1} else \
        f"mean over {'/'.join(map(str, sorted(seeds)))} seeds (dots: each seed)"
    note(ax, f"Grouped bars (one colour and hatch per model) of {metric} on the test classes of "
             f"each {part} alone and of the {whole}, {over}. " + "; ".join(described) + ".")
    return ax
