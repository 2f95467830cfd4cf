"""Pictures of embeddings: UMAP maps, retrieval galleries, correlation heatmaps, training curves.

Each function draws on an ``Axes`` it is given (or a new one) and returns it, or
returns a new ``Figure`` when it needs a grid; nothing touches global state.
Images are given as the datasets store them: uint8 or float tensors (N, C, H, W).
"""
from __future__ import annotations

import textwrap
import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from .evaluation import (correlation_matrix, cross_block_mask, mean_abs_offdiagonal,
                         nearest_neighbors)
from .utils import check_embeddings, check_labels


def _umap():
    """The ``umap`` module (a slow import: only when needed), with its numba kernels cached on
    disk: umap-learn compiles them without ``cache=True``, which costs about 7 s in every new
    kernel (each chapter) against about 0.1 s to load them once cached. Where no cache folder
    is writable, numba compiles as before."""
    import umap
    import umap.layouts
    import umap.umap_
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    for module in (umap.umap_, umap.layouts):
        for kernel in vars(module).values():
            if isinstance(kernel, Dispatcher) and isinstance(kernel._cache, NullCache):
                try:
                    kernel.enable_caching()
                except RuntimeError:  # numba: "no locator available" (nowhere writable)
                    return umap
    return umap


def umap_2d(embeddings, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
            n_epochs: int = 200) -> np.ndarray:
    """2-D UMAP (McInnes et al. 2018) of L2-normalised embeddings (N, D) -> (N, 2).

    The exact k-nearest-neighbour graph comes from faiss
    (:func:`~bierlib.evaluation.nearest_neighbors`) and is handed to UMAP precomputed: for a
    few thousand points UMAP would otherwise compute all
    pairwise distances through a Python-level metric, about 6 s for Omniglot's test set against
    0.05 s. ``n_epochs`` 200 is UMAP's own default for large data sets.
    """
    umap = _umap()
    x = torch.nn.functional.normalize(check_embeddings(torch.as_tensor(embeddings)).float(), dim=1)
    k = min(n_neighbors, len(x)) - 1
    if k < 1:
        raise ValueError(f"UMAP needs at least 2 points, found {len(x)}")
    squared, idx = nearest_neighbors(x, k, normalize=False)  # (N, k), the point itself excluded
    self_idx = np.arange(len(x))[:, None]
    knn = (np.hstack([self_idx, idx]), np.hstack([np.zeros_like(self_idx, dtype=np.float32),
                                                   np.sqrt(np.maximum(squared, 0))]), None)
    reducer = umap.UMAP(n_neighbors=k + 1, min_dist=min_dist, random_state=seed, n_jobs=1,
                        n_epochs=n_epochs, precomputed_knn=knn)
    with warnings.catch_warnings():  # "transform() unavailable without a search index": unused
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        return reducer.fit_transform(x.numpy())


def _picture(image) -> np.ndarray:
    """(C, H, W) tensor or array -> (H, W) or (H, W, 3) array for imshow."""
    image = np.asarray(image.float() if isinstance(image, torch.Tensor) else image)
    image = image / 255.0 if image.max() > 1.0 else image
    return image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))


def _axes(ax, figsize=(6, 5)):
    return ax if ax is not None else plt.subplots(figsize=figsize, layout="constrained")[1]


def plot_embedding_2d(points, labels, ax=None, images=None, n_thumbnails: int = 0,
                      seed: int = 0, title: str | None = None, cmap: str = "tab20"):
    """Scatter of 2-D points (N, 2) coloured by class, optionally with image thumbnails.

    Args:
        points: e.g. the output of :func:`umap_2d`.
        labels: (N,) class ids, used for colours (classes cycle through ``cmap``).
        images: (N, C, H, W) images; ``n_thumbnails`` of them, chosen at random with
            ``seed``, are drawn at their points.
    """
    points = np.asarray(points)
    labels = check_labels(labels, length=len(points)).numpy()
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), found {points.shape}")
    ax = _axes(ax)
    ax.scatter(points[:, 0], points[:, 1], c=labels % 20, cmap=cmap, vmin=0, vmax=19, s=6,
               alpha=0.8, linewidths=0)  # class c always gets colour c % 20 of the map
    if images is not None and n_thumbnails > 0:
        rng = np.random.default_rng(seed)
        for i in rng.choice(len(points), size=min(n_thumbnails, len(points)), replace=False):
            thumb = OffsetImage(_picture(images[i]), zoom=0.6, cmap="gray_r")
            edge = plt.get_cmap(cmap)(labels[i] % 20)
            ax.add_artist(AnnotationBbox(thumb, points[i], frameon=True, pad=0.05,
                                         bboxprops={"edgecolor": edge}))
    ax.set(xticks=[], yticks=[], title=title or f"UMAP of {len(points)} embeddings, "
                                                 f"{len(np.unique(labels))} classes")
    return ax


def plot_retrieval(images, embeddings, labels, queries: Sequence[int], k: int = 6,
                   class_names: Sequence[str] | None = None):
    """A gallery: each row is a query and its k nearest neighbours (query excluded).

    Correct neighbours (same class as the query) are framed green, wrong ones red.
    Returns a new Figure.
    """
    labels = check_labels(labels, length=len(embeddings)).numpy()
    queries = [int(q) for q in queries]
    if not queries or min(queries) < 0 or max(queries) >= len(labels):
        raise ValueError(f"queries must be indices between 0 and {len(labels) - 1}, "
                         f"found {queries}")
    _, neighbours = nearest_neighbors(embeddings, k)
    width = min(7.5, 1.05 * (k + 1))  # inches: the page's column
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(width, 1.25 * len(queries) * width
                                                          / (1.05 * (k + 1))),
                             squeeze=False, layout="constrained")
    for row, q in zip(axes, queries):
        for col, (ax, i) in enumerate(zip(row, [q, *neighbours[q]])):
            ax.imshow(_picture(images[i]), cmap="gray_r")
            ax.set(xticks=[], yticks=[])
            colour = "black" if col == 0 else ("tab:green" if labels[i] == labels[q] else "tab:red")
            for spine in ax.spines.values():
                spine.set(edgecolor=colour, linewidth=3 if col else 1.5)
        name = class_names[labels[q]] if class_names is not None else f"class {labels[q]}"
        group, _, item = name.replace("_", " ").rpartition("/")  # "alphabet/character07"
        row[0].set_title(item, fontsize=9)
        if group:
            row[0].set_ylabel(textwrap.fill(group, 12), fontsize=9)
    axes[0, 1].set_title("nearest", fontsize=9)
    return fig


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
    """:func:`plot_correlation` of a precomputed (D, D) correlation matrix (e.g. a study's)."""
    corr = np.asarray(corr, dtype=float)
    summary = f"mean |corr| {mean_abs_offdiagonal(corr):.3f}"  # also checks the shape
    if not 0 < vmax <= 1:
        raise ValueError(f"vmax must be in (0, 1], found {vmax}")
    shown = np.abs(corr)
    np.fill_diagonal(shown, np.nan)
    ax = _axes(ax, figsize=(4.5, 4))
    im = ax.imshow(shown, cmap="magma_r", vmin=0, vmax=vmax, interpolation="nearest")
    if blocks:
        if sum(blocks) != len(corr):
            raise ValueError(f"blocks must add up to the {len(corr)} dimensions, found "
                             f"{list(blocks)} (sum {sum(blocks)})")
        starts = np.concatenate([[0], np.cumsum(blocks)])
        summary += f"\ncross-learner {np.abs(corr[cross_block_mask(blocks)]).mean():.3f}"
        for lo, hi in zip(starts[:-1], starts[1:]):  # outline each learner's own block
            ax.add_patch(plt.Rectangle((lo - 0.5, lo - 0.5), hi - lo, hi - lo, fill=False,
                                       edgecolor="tab:cyan", lw=1.5))
        for edge in starts[1:-1] - 0.5:
            ax.axhline(edge, color="tab:cyan", lw=0.8)
            ax.axvline(edge, color="tab:cyan", lw=0.8)
    ax.set(title=f"{title}\n{summary}" if title else summary, xlabel="dimension",
           ylabel="dimension")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8, label="|correlation|",
                           extend="max" if vmax < 1 else "neither")
    return ax


def plot_cross_correlation(matrices, sizes: Sequence[int], ax=None, vmax: float = 0.5):
    """Histograms of the cross-learner absolute correlation (the entries outside the learners'
    blocks) of several (D, D) correlation matrices, ``{name: matrix}``, cut by the learner
    ``sizes``; each labelled with its mean. The heatmaps' summary, where their differences show."""
    if not matrices:
        raise ValueError("matrices is empty: give at least one named correlation matrix")
    ax = _axes(ax, figsize=(4.5, 3.5))
    mask = cross_block_mask(sizes)
    for i, (name, corr) in enumerate(matrices.items()):
        corr = np.asarray(corr, dtype=float)
        if corr.shape != mask.shape:
            raise ValueError(f"{name}: expected a {mask.shape} matrix for sizes {list(sizes)}, "
                             f"found {corr.shape}")
        cross = np.abs(corr[mask])
        ax.hist(cross, bins=np.linspace(0, vmax, 51), histtype="step", lw=1.8, density=True,
                color=f"C{i}", label=f"{name} ({cross.mean():.3f})")
    ax.set(xlabel="cross-learner |correlation|", ylabel="density",
           title="outside the learners' blocks")
    ax.legend(fontsize=9, title="mean", title_fontsize=9, loc="upper right")  # mass is left
    return ax


def reference_line(ax, value: float, label: str, horizontal: bool = True):
    """A dashed grey line at ``value`` (e.g. the pretrained features' Recall@1, the baseline
    every method must beat), labelled for the legend; returns ``ax``."""
    line = ax.axhline if horizontal else ax.axvline
    line(float(value), color="0.35", ls="--", lw=1.2, label=label, zorder=0)
    lo, hi = ax.get_ylim() if horizontal else ax.get_xlim()
    if float(value) > hi - 0.04 * (hi - lo):  # not on the frame's edge, where it hides
        (ax.set_ylim if horizontal else ax.set_xlim)(lo, float(value) + 0.06 * (hi - lo))
    return ax


def plot_history(history, metrics: Sequence[str] = ("recall@1", "nmi"), ax=None, label: str = ""):
    """Curves of the recorded ``metrics`` against the epoch (from a training History)."""
    ax = _axes(ax, figsize=(5, 3.5))
    epochs = history["epoch"]
    for name in metrics:
        ax.plot(epochs, history[name], marker="o", ms=3, label=f"{label} {name}".strip())
    ax.set(xlabel="epoch", ylabel=", ".join(metrics))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return ax


def plot_learner_recall(results, sizes: Sequence[int], ax=None, metric: str = "Recall@1"):
    """Grouped bars: for each model, the metric of every learner alone and of the whole ensemble.

    Args:
        results: ``{model name: values}`` with values of shape (S, M + 1) -- one row per
            seed, the M learners then the ensemble; bars are seed means, dots the seeds.
        sizes: the M learner sizes, for the labels.
    """
    if not results:
        raise ValueError("results is empty: give at least one model's values")
    ax = _axes(ax, figsize=(8, 4))
    labels = [f"learner {m + 1}\n(d = {d})" for m, d in enumerate(sizes)] + ["ensemble"]
    xs, width = np.arange(len(labels)), 0.8 / len(results)
    for k, (name, values) in enumerate(results.items()):
        values = np.atleast_2d(np.asarray(values, dtype=float))
        if values.shape[1] != len(labels):
            raise ValueError(f"{name}: expected {len(labels)} values per seed "
                             "(learners + ensemble), "
                             f"found {values.shape[1]}")
        offset = (k - (len(results) - 1) / 2) * width
        ax.bar(xs + offset, values.mean(0), width=width, label=name)
        for row in values:
            ax.plot(xs + offset, row, "k.", ms=3)
    ax.set(xticks=xs, xticklabels=labels, ylabel=f"{metric} (test classes)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return ax
