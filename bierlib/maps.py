"""Pictures of an embedding itself: 2-D UMAP maps and retrieval galleries.

Both are drawn so that colour never carries meaning alone: a map of many classes greys
them all and highlights a few, each with its own colour *and* marker; a gallery marks right
and wrong neighbours with a glyph (check mark, cross) and a solid or dashed frame as well as
a colour. Each attaches a description of what it shows (:mod:`bierlib.describe`).
Images are given as the datasets store them: uint8 or float tensors (N, C, H, W).
"""
from __future__ import annotations

import textwrap
import warnings
import weakref
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from .describe import note
from .evaluation import nearest_neighbors
from .palette import CORRECT, WRONG, category_style
from .utils import check_embeddings, check_labels

MAX_COLOURED = 7  # classes told apart by colour and marker; beyond, a few are highlighted


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


def _name(class_names, c: int, one: str = "class") -> str:
    if isinstance(class_names, Mapping):
        return str(class_names.get(c, f"{one} {c}"))
    if class_names is not None and 0 <= c < len(class_names):
        return str(class_names[c]).replace("_", " ")
    return f"{one} {c}"


def _neighbour_agreement(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) bool: does each point's nearest other point in the map share its class?"""
    _, idx = nearest_neighbors(points.astype(np.float32), 1, normalize=False)
    return labels[idx[:, 0]] == labels


def _singular(groups: str) -> str:
    return "class" if groups == "classes" else groups[:-1] if groups.endswith("s") else groups


def _wrap(name: str, width: int = 18) -> str:
    """A legend entry on lines of about ``width`` characters, broken after '/' first
    ("Japanese (katakana)/character08")."""
    head, slash, tail = name.rpartition("/")
    if slash and len(name) > width:
        return f"{textwrap.fill(head + slash, width)}\n{textwrap.fill(tail, width)}"
    return textwrap.fill(name, width)


def _panel_size(ax) -> tuple[float, float]:
    """The inches that ``ax``'s cell of its grid will get: before the figure is drawn,
    ``ax.get_position()`` still has matplotlib's default margins, which a constrained layout
    mostly gives back."""
    fig, spec = ax.figure, ax.get_subplotspec()
    if spec is None:
        box = ax.get_position()
        return box.width * fig.get_figwidth(), box.height * fig.get_figheight()
    grid = spec.get_gridspec()
    return (0.95 * fig.get_figwidth() * len(spec.colspan) / grid.ncols,
            0.95 * fig.get_figheight() * len(spec.rowspan) / grid.nrows)


_GROWN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Figure -> rows grown


def _place_legend(ax, ncols: int, legend: str):
    """The legend inside the map where it takes little room (``"auto"``: at most 60% of the
    panel's width and 30% of its height), else below it, outside, in two columns where they
    fit (one otherwise), its entries wrapped; the figure grows by the legend's height once
    for each row of panels, so that the maps keep their size. Inside, a legend wider than
    its panel squashes the panel under a constrained layout, or collapses it (matplotlib:
    "axes sizes collapsed to zero")."""
    kwargs = {"fontsize": 9, "markerscale": 1.5, "framealpha": 0.85}
    if legend == "inside":
        return ax.legend(loc="best", ncols=ncols, **kwargs)
    fig, (width, height) = ax.figure, _panel_size(ax)
    if legend == "auto":
        inside = ax.legend(loc="best", ncols=ncols, **kwargs)
        box = inside.get_window_extent()
        if box.width / fig.dpi <= 0.6 * width and box.height / fig.dpi <= 0.3 * height:
            return inside
        inside.remove()
    handles, labels = ax.get_legend_handles_labels()
    labels = [_wrap(label) for label in labels]
    for ncols in (2, 1):
        below = ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.01),
                          ncols=ncols, borderaxespad=0, frameon=False, columnspacing=1.0,
                          handletextpad=0.4, **kwargs)
        box = below.get_window_extent()
        if box.width / fig.dpi <= width:
            break
    spec = ax.get_subplotspec()
    row = spec.rowspan.start if spec is not None else id(ax)
    grown = _GROWN.setdefault(fig, {})
    extra = box.height / fig.dpi + 0.1
    if extra > grown.get(row, 0.0):  # once per row: the tallest legend of the row
        fig.set_figheight(fig.get_figheight() + extra - grown.get(row, 0.0))
        grown[row] = extra
    return below


def plot_embedding_2d(points, labels, ax=None, images=None, n_thumbnails: int = 0,
                      seed: int = 0, title: str | None = None, highlight: int = 6,
                      class_names: Sequence[str] | Mapping[int, str] | None = None,
                      groups: str = "classes", legend: str = "auto"):
    """Scatter of 2-D points (N, 2) by class, optionally with image thumbnails.

    Up to 7 classes (e.g. clusters) each get a colour and a marker, in the order of their ids,
    so class ``c`` looks the same in every panel. With more, colour cannot tell them apart:
    all points are grey and ``highlight`` classes, chosen at random with ``seed``, are drawn
    in colour with their own markers and named in the legend (``class_names[c]`` names class
    ``c``). ``images``: (N, C, H, W); ``n_thumbnails`` of them, chosen with ``seed``, are
    drawn at their points. The description gives how often a point's nearest neighbour in
    the map is of its class, overall and for each highlighted class.

    ``groups``: what the labels are, plural, in the title, legend and description
    (``"clusters"``: "4 clusters ... of the same cluster"). ``legend``: ``"auto"`` (inside the
    map where it is small beside the panel, else below it: a grid of narrow panels),
    ``"inside"``, ``"below"`` or ``"none"``.
    """
    if legend not in ("auto", "inside", "below", "none"):
        raise ValueError(f"legend must be 'auto', 'inside', 'below' or 'none', found {legend!r}")
    points = np.asarray(points, dtype=float)
    labels = check_labels(labels, length=len(points)).numpy()
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), found {points.shape}")
    ax = ax if ax is not None else plt.subplots(figsize=(6, 5), layout="constrained")[1]
    one = _singular(groups)
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    if len(classes) <= MAX_COLOURED:
        shown = list(classes)
    else:
        shown = sorted(rng.choice(classes, size=min(highlight, MAX_COLOURED), replace=False))
        rest = ~np.isin(labels, shown)
        ax.scatter(points[rest, 0], points[rest, 1], s=5, color="0.78", linewidths=0,
                   label=f"{len(classes) - len(shown)} other {groups}")
    styles = {c: category_style(i) for i, c in enumerate(shown)}
    for c in shown:
        mine = labels == c
        ax.scatter(points[mine, 0], points[mine, 1], s=9 if len(shown) == len(classes) else 22,
                   linewidths=0.4, label=_name(class_names, int(c), one),
                   **styles[c].marker_kwargs())
    if images is not None and n_thumbnails > 0:
        for i in rng.choice(len(points), size=min(n_thumbnails, len(points)), replace=False):
            thumb = OffsetImage(_picture(images[i]), zoom=0.6, cmap="gray_r")
            edge = styles[labels[i]].colour if labels[i] in styles else "0.5"
            ax.add_artist(AnnotationBbox(thumb, points[i], frameon=True, pad=0.05,
                                         bboxprops={"edgecolor": edge}))
    ax.set(xticks=[], yticks=[], title=title or f"UMAP of {len(points)} embeddings, "
                                                 f"{len(classes)} {groups}")
    if legend != "none":
        _place_legend(ax, 1 if len(shown) < 5 else 2, legend)
    same = _neighbour_agreement(points, labels)
    counts = np.bincount(np.searchsorted(classes, labels))
    chance = float(np.sum(counts * (counts - 1)) / (len(labels) * (len(labels) - 1)))
    colours = "colour and marker" if len(shown) == len(classes) else \
        f"grey, except {len(shown)} highlighted in colour, each with its own marker"
    per_class = ", ".join(f"{_name(class_names, int(c), one)} {same[labels == c].mean():.0%}"
                          for c in shown)
    note(ax, f"{ax.get_title().replace(chr(10), ', ')}: a 2-D map of {len(points):,} points "
             f"of {len(classes)} {groups} ({colours}). The nearest point in the map is of the "
             f"same {one} for {same.mean():.0%} of points (chance: {chance:.0%}); by {one}: "
             f"{per_class}.")
    return ax


def plot_retrieval(images, embeddings, labels, queries: Sequence[int], k: int = 6,
                   class_names: Sequence[str] | None = None):
    """A gallery: each row is a query and its k nearest neighbours (query excluded).

    A neighbour of the query's class has a check mark and a solid blue frame, one of another
    class a cross and a dashed vermillion frame. Returns a new Figure.
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
    rows = []
    for row, q in zip(axes, queries):
        right = labels[neighbours[q]] == labels[q]  # (k,)
        for col, (ax, i) in enumerate(zip(row, [q, *neighbours[q]])):
            ax.imshow(_picture(images[i]), cmap="gray_r")
            ax.set(xticks=[], yticks=[])
            glyph, colour = ("", "black") if col == 0 else (CORRECT if right[col - 1] else WRONG)
            for spine in ax.spines.values():
                spine.set(edgecolor=colour, linewidth=3 if col else 1.5,
                          linestyle="-" if col == 0 or right[col - 1] else (0, (2, 1)))
            if glyph:
                ax.text(0.95, 0.95, glyph, transform=ax.transAxes, ha="right", va="top",
                        fontsize=10, fontweight="bold", color="white",
                        bbox={"boxstyle": "circle,pad=0.12", "facecolor": colour, "lw": 0})
        name = class_names[labels[q]] if class_names is not None else f"class {labels[q]}"
        group, _, item = name.replace("_", " ").rpartition("/")  # "alphabet/character07"
        row[0].set_title(item, fontsize=9)
        if group:
            row[0].set_ylabel(textwrap.fill(group, 12), fontsize=9)
        wrong = np.flatnonzero(~right)
        rows.append(f"{name.replace('_', ' ').replace('/', ', ')}: {int(right.sum())} of {k} "
                    + (f"(first wrong at rank {wrong[0] + 1})" if len(wrong) else "(all right)"))
    axes[0, 1].set_title("nearest", fontsize=9)
    total = sum(int((labels[neighbours[q]] == labels[q]).sum()) for q in queries)
    note(fig, f"Retrieval gallery: {len(queries)} queries (left column), each followed by its "
              f"{k} nearest neighbours in order; a check mark and a solid frame mark a "
              f"neighbour of the query's class, a cross and a dashed frame another class. "
              f"Neighbours of the query's class, per query: {'; '.join(rows)}. In all, "
              f"{total} of {k * len(queries)}.", covers=axes.flat)
    return fig
