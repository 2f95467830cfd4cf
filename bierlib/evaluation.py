"""Zero-shot retrieval and clustering metrics, computed with faiss.

The protocol of the book (and of the papers it follows): embed the *test* images,
whose classes were never seen in training, and use every test image in turn as a
query against all the others (the query itself excluded).

* Recall@k -- fraction of queries with at least one same-class item among their
  k nearest neighbours (Song et al. 2016; what the papers call R@K).
* R-precision and MAP@R (Musgrave et al. 2020) -- with R the number of other
  items of the query's class: the precision among the R nearest neighbours, and
  the mean of the precisions at each correct rank within those R. Queries whose
  class has no other item are left out of these two.
* NMI and F1 of a k-means clustering with as many clusters as classes (Song et
  al. 2016): normalised mutual information between clusters and classes, and the
  harmonic mean of pairwise precision and recall (are two items that share a
  class put in the same cluster?).

Neighbours are searched exactly (``faiss.IndexFlatL2``) in chunks of queries, so
memory stays at O(chunk x neighbours) beyond the embeddings themselves: 60k x 512
(Stanford Online Products) needs about 0.5 GB.
"""
from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np
import torch
from sklearn.cluster import kmeans_plusplus
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import pair_confusion_matrix

from .utils import check_embeddings, check_labels


#: How a metric key is written on a page (keys not listed are shown as they are).
METRIC_NAMES = {"recall@1": "Recall@1", "recall@2": "Recall@2", "recall@4": "Recall@4",
                "recall@8": "Recall@8", "map@r": "MAP@R", "r_precision": "R-precision",
                "nmi": "NMI", "f1": "F1"}


def metric_name(key: str) -> str:
    """A metric key as the pages write it: "recall@1" -> "Recall@1", "nmi" -> "NMI"."""
    return METRIC_NAMES.get(key, key)


def _as_float32(embeddings, normalize: bool) -> np.ndarray:
    if isinstance(embeddings, np.ndarray):
        embeddings = torch.from_numpy(embeddings)
    embeddings = check_embeddings(embeddings).detach().float().cpu()
    if not torch.isfinite(embeddings).all():
        raise ValueError("embeddings contain NaN or infinite values; the model diverged "
                         "(lower the learning rate) or the input was not preprocessed")
    if normalize:
        embeddings = torch.nn.functional.normalize(embeddings, dim=1)
    return np.ascontiguousarray(embeddings.numpy())


def nearest_neighbors(embeddings, k: int, normalize: bool = True, chunk_size: int = 4096,
                      start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of rows ``start:stop`` among all rows, each query excluded.

    Args:
        embeddings: (N, D) tensor or array; L2-normalised first when ``normalize``.
        k: neighbours per query, at most N - 1.

    Returns:
        squared distances (Q, k) and indices (Q, k), nearest first, Q = stop - start.
    """
    x = _as_float32(embeddings, normalize)
    return _search(_index(x), x, k, chunk_size, start, len(x) if stop is None else stop)


def _index(x: np.ndarray) -> faiss.Index:
    index = faiss.IndexFlatL2(x.shape[1])
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:  # faiss-gpu installed
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(x)
    return index


def _search(index, x, k, chunk_size, start, stop):
    n = len(x)
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be between 1 and N - 1 = {n - 1} (the query is excluded), "
                         f"found {k}")
    dists, idxs = [], []
    for lo in range(start, stop, chunk_size):
        hi = min(lo + chunk_size, stop)
        d, i = index.search(x[lo:hi], k + 1)  # (C, k + 1)
        is_self = i == np.arange(lo, hi)[:, None]
        # Drop the query itself; if exact duplicates pushed it out of the list, drop the last.
        is_self[~is_self.any(axis=1), -1] = True
        is_self &= np.cumsum(is_self, axis=1) == 1  # only the first match
        keep = ~is_self
        dists.append(d[keep].reshape(hi - lo, k))
        idxs.append(i[keep].reshape(hi - lo, k))
    return np.concatenate(dists), np.concatenate(idxs)


def retrieval_metrics(embeddings, labels, ks: Sequence[int] = (1, 2, 4, 8), normalize: bool = True,
                      chunk_size: int = 4096) -> dict[str, float]:
    """Recall@k for each k in ``ks``, R-precision and MAP@R, query excluded from its neighbours.

    Args:
        embeddings: (N, D) float tensor or array.
        labels: (N,) integer class ids.
        ks: the k of Recall@k; each at most N - 1.
        normalize: L2-normalise the embeddings first (cosine ranking).

    Returns:
        ``{"recall@1": ..., "r_precision": ..., "map@r": ...}``, all in [0, 1].
    """
    x = _as_float32(embeddings, normalize)
    y = check_labels(labels, length=len(x)).numpy()
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1 or ks[-1] > len(x) - 1:
        raise ValueError(f"every K must be between 1 and N - 1 = {len(x) - 1}, found {list(ks)}")
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    r = counts[inverse] - 1  # (N,) other items of the query's class
    k_max = max(ks[-1], int(r.max()))
    index = _index(x)
    hits_at = {k: 0 for k in ks}
    r_precision, map_r = 0.0, 0.0
    for lo in range(0, len(x), chunk_size):
        hi = min(lo + chunk_size, len(x))
        _, nn = _search(index, x, k_max, chunk_size, lo, hi)
        correct = y[nn] == y[lo:hi, None]  # (C, k_max)
        for k in ks:
            hits_at[k] += int(correct[:, :k].any(axis=1).sum())
        rr = r[lo:hi]
        within_r = np.arange(k_max)[None, :] < rr[:, None]  # (C, k_max): rank < R
        correct_r = correct & within_r
        ranks = np.arange(1, k_max + 1)[None, :]
        precision_at_rank = np.cumsum(correct_r, axis=1) / ranks
        has_r = rr > 0
        r_precision += float((correct_r.sum(axis=1)[has_r] / rr[has_r]).sum())
        map_r += float(((precision_at_rank * correct_r).sum(axis=1)[has_r] / rr[has_r]).sum())
    n_with_r = max(int((r > 0).sum()), 1)
    metrics = {f"recall@{k}": hits_at[k] / len(x) for k in ks}
    metrics.update(r_precision=r_precision / n_with_r, **{"map@r": map_r / n_with_r})
    return metrics


def per_class_recall(embeddings, labels, normalize: bool = True) -> np.ndarray:
    """Recall@1 of each class (C,), in the order of the sorted class ids: the fraction of the
    class's queries whose nearest other item has its class. With equally many items per class
    their mean is :func:`retrieval_metrics`' Recall@1.

    Args:
        embeddings: (N, D) float tensor or array.
        labels: (N,) integer class ids, every class with at least 2 items.
    """
    x = _as_float32(embeddings, normalize)
    y = check_labels(labels, length=len(x)).numpy()
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError(f"every class needs at least 2 items (a query and a neighbour), found "
                         f"class {classes[counts.argmin()]} with {counts.min()}")
    _, nn = nearest_neighbors(x, 1, normalize=False)
    hits = (y[nn[:, 0]] == y).astype(float)  # (N,)
    return np.bincount(inverse, weights=hits, minlength=len(classes)) / counts


def query_gallery_recall(query, query_labels, gallery, gallery_labels,
                         ks: Sequence[int] = (1, 10, 20, 30, 40, 50), normalize: bool = True,
                         chunk_size: int = 4096) -> dict[str, float]:
    """Recall@k of queries (Q, D) searched in a separate gallery (G, D), as In-Shop is evaluated:
    the fraction of queries with an item of their class among their k nearest gallery items."""
    q, g = _as_float32(query, normalize), _as_float32(gallery, normalize)
    yq = check_labels(query_labels, "query_labels", length=len(q)).numpy()
    yg = check_labels(gallery_labels, "gallery_labels", length=len(g)).numpy()
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query and gallery embeddings differ in size: {q.shape[1]} vs "
                         f"{g.shape[1]}")
    ks = sorted({int(k) for k in ks})
    if not 1 <= ks[0] <= ks[-1] <= len(g):
        raise ValueError(f"every K must lie in [1, G = {len(g)}], found {ks}")
    index, hits = _index(g), {k: 0 for k in ks}
    for lo in range(0, len(q), chunk_size):
        _, idx = index.search(q[lo:lo + chunk_size], ks[-1])  # (C, K)
        correct = yg[idx] == yq[lo:lo + chunk_size, None]
        for k in ks:
            hits[k] += int(correct[:, :k].any(axis=1).sum())
    return {f"recall@{k}": hits[k] / len(q) for k in ks}


def kmeans(embeddings, n_clusters: int, normalize: bool = True, seed: int = 0,
           niter: int = 50, plusplus_limit: int = 50_000_000) -> np.ndarray:
    """Cluster ids (N,) of faiss k-means with ``n_clusters`` clusters.

    faiss starts from randomly chosen points, which often puts two initial centres
    in one true cluster. When N x n_clusters is at most ``plusplus_limit`` (CUB,
    Cars, Omniglot) the centres are initialised with k-means++ (scikit-learn's
    ``kmeans_plusplus``, seeded) instead; for SOP-sized problems faiss's own
    initialisation is kept, as in the usual evaluation code.
    """
    x = _as_float32(embeddings, normalize)
    if not 1 <= n_clusters <= len(x):
        raise ValueError(f"n_clusters must be between 1 and N = {len(x)}, found {n_clusters}")
    km = faiss.Kmeans(x.shape[1], int(n_clusters), niter=niter, seed=seed,
                      min_points_per_centroid=1, max_points_per_centroid=100_000)
    init = None
    if len(x) * n_clusters <= plusplus_limit:
        init, _ = kmeans_plusplus(x, int(n_clusters), random_state=seed)
    km.train(x, init_centroids=init)
    return km.index.search(x, 1)[1][:, 0]


def clustering_metrics(embeddings, labels, normalize: bool = True,
                       seed: int = 0) -> dict[str, float]:
    """NMI and pairwise F1 of k-means with as many clusters as classes."""
    y = check_labels(labels, length=len(embeddings)).numpy()
    clusters = kmeans(embeddings, len(np.unique(y)), normalize, seed)
    return {"nmi": float(normalized_mutual_info_score(y, clusters)),
            "f1": pairwise_f1(y, clusters)}


def pairwise_f1(labels, clusters) -> float:
    """F1 over item pairs: a pair is predicted positive when both items share a cluster."""
    (_, fp), (fn, tp) = pair_confusion_matrix(labels, clusters)
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def evaluate(embeddings, labels, ks: Sequence[int] = (1, 2, 4, 8), normalize: bool = True,
             clustering: bool = True, seed: int = 0) -> dict[str, float]:
    """All metrics of the book: :func:`retrieval_metrics` plus (optionally)
    :func:`clustering_metrics`."""
    metrics = retrieval_metrics(embeddings, labels, ks, normalize)
    if clustering:
        metrics.update(clustering_metrics(embeddings, labels, normalize, seed))
    return metrics


def correlation_matrix(embeddings) -> np.ndarray:
    """Pearson correlation (D, D) between the embedding dimensions over the N items.

    Dimensions that are constant over the items get zero correlation with the others.
    """
    x = _as_float32(embeddings, normalize=False).astype(np.float64)
    x = x - x.mean(axis=0)
    std = np.sqrt((x ** 2).mean(axis=0))
    x = x / np.where(std > 0, std, 1.0)
    corr = x.T @ x / len(x)
    np.fill_diagonal(corr, 1.0)
    return corr


def mean_abs_correlation(embeddings) -> float:
    """Mean absolute off-diagonal entry of :func:`correlation_matrix`: one number for how
    redundant the dimensions are (0: uncorrelated, 1: all dimensions carry the same signal)."""
    return mean_abs_offdiagonal(correlation_matrix(embeddings))


def mean_abs_offdiagonal(corr) -> float:
    """Mean absolute off-diagonal entry of a (D, D) correlation matrix, D >= 2."""
    corr = np.abs(np.asarray(corr, dtype=float))
    d = len(corr)
    if corr.ndim != 2 or corr.shape != (d, d) or d < 2:
        raise ValueError(f"expected a square (D, D) correlation matrix with D >= 2, found shape "
                         f"{corr.shape}")
    return float((corr.sum() - np.trace(corr)) / (d * (d - 1)))


def cross_block_mask(sizes) -> np.ndarray:
    """(D, D) boolean mask of the entries between dimensions of *different* consecutive blocks
    of ``sizes`` (e.g. an ensemble's learners), D = sum(sizes)."""
    owner = np.repeat(np.arange(len(sizes)), sizes)  # each dimension's block
    return owner[:, None] != owner[None, :]
