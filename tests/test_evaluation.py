"""Metrics against brute-force references and pytorch-metric-learning's AccuracyCalculator."""
import numpy as np
import pytest
import torch

from bierlib.evaluation import (clustering_metrics, correlation_matrix, evaluate, kmeans,
                                mean_abs_correlation, nearest_neighbors, pairwise_f1,
                                per_class_recall, retrieval_metrics)


def clustered(n_classes=6, per_class=7, d=8, spread=0.8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, d))
    labels = np.repeat(np.arange(n_classes), per_class)
    x = centres[labels] + spread * rng.normal(size=(len(labels), d))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(labels)


def brute_force(x, y, ks):
    x = torch.nn.functional.normalize(x, dim=1).double()
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    order = d.argsort(dim=1)[:, :-1].numpy()  # query last (inf): dropped
    y = y.numpy()
    out = {f"recall@{k}": np.mean([(y[order[i, :k]] == y[i]).any() for i in range(len(y))])
           for k in ks}
    rp, ap = [], []
    for i in range(len(y)):
        r = (y == y[i]).sum() - 1
        if r == 0:
            continue
        rel = y[order[i, :r]] == y[i]
        rp.append(rel.mean())
        ap.append(sum(rel[:j + 1].mean() for j in range(r) if rel[j]) / r)
    out.update(r_precision=np.mean(rp), **{"map@r": np.mean(ap)})
    return out


@pytest.mark.parametrize("chunk_size", [5, 4096])
def test_retrieval_metrics_against_brute_force(chunk_size):
    x, y = clustered()
    y = torch.cat([y, torch.tensor([99])])  # a class with a single item: no R, still a query
    x = torch.cat([x, torch.randn(1, x.shape[1])])
    got = retrieval_metrics(x, y, ks=(1, 2, 4, 8, 16), chunk_size=chunk_size)
    want = brute_force(x, y, (1, 2, 4, 8, 16))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


def test_against_pytorch_metric_learning():
    amc = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    x, y = clustered(n_classes=10, per_class=12, spread=1.2)
    xn = torch.nn.functional.normalize(x, dim=1)
    theirs = amc.AccuracyCalculator(include=("precision_at_1", "r_precision",
                                             "mean_average_precision_at_r")).get_accuracy(xn, y)
    ours = retrieval_metrics(x, y, ks=(1,))
    assert ours["recall@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours["r_precision"] == pytest.approx(theirs["r_precision"], abs=1e-6)
    assert ours["map@r"] == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)


def test_query_is_excluded_even_with_duplicates():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    _, idx = nearest_neighbors(x, 1)
    assert idx[:, 0].tolist() == [1, 0, 3, 2]
    x = torch.ones(5, 3)  # all identical: every query must still not be its own neighbour
    _, idx = nearest_neighbors(x, 4)
    assert all(i not in row for i, row in enumerate(idx))


def test_perfect_and_random_embeddings():
    y = torch.arange(40) % 4
    noise = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    perfect = torch.nn.functional.one_hot(y, 4).float() + 0.01 * noise
    m = evaluate(perfect, y)
    assert m["recall@1"] == 1.0 and m["map@r"] == 1.0 and m["nmi"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(1.0)
    noise = evaluate(torch.randn(400, 16, generator=torch.Generator().manual_seed(0)),
                     torch.arange(400) % 20)
    assert noise["recall@1"] < 0.2 and noise["nmi"] < 0.3


def test_pairwise_f1_against_pair_counting():
    rng = np.random.default_rng(0)
    labels, clusters = rng.integers(0, 4, 30), rng.integers(0, 5, 30)
    tp = fp = fn = 0
    for i in range(30):
        for j in range(i + 1, 30):
            same_class, same_cluster = labels[i] == labels[j], clusters[i] == clusters[j]
            tp += same_class and same_cluster
            fp += same_cluster and not same_class
            fn += same_class and not same_cluster
    assert pairwise_f1(labels, clusters) == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_kmeans_is_deterministic_and_finds_clusters():
    x, y = clustered(spread=0.05)
    a, b = kmeans(x, 6, seed=0), kmeans(x, 6, seed=0)
    assert (a == b).all()
    for seed in range(5):  # k-means++ initialisation finds well-separated clusters every time
        assert clustering_metrics(x, y, seed=seed)["nmi"] == pytest.approx(1.0)
    assert (kmeans(x, 6, plusplus_limit=0) >= 0).all()  # faiss's own initialisation path


def test_correlation_matrix():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    x[:, 1] = 2 * x[:, 0] + 1
    x[:, 4] = 3.0  # constant dimension
    corr = correlation_matrix(torch.tensor(x, dtype=torch.float32))
    want = np.corrcoef(x[:, :4].T)
    assert np.allclose(corr[:4, :4], want, atol=1e-5)
    assert corr[4, :4].tolist() == [0, 0, 0, 0] and corr[4, 4] == 1
    off = np.abs(corr[~np.eye(5, dtype=bool)]).mean()
    assert mean_abs_correlation(torch.tensor(x, dtype=torch.float32)) == pytest.approx(off,
                                                                                       abs=1e-6)


def test_bad_input():
    x, y = clustered()
    with pytest.raises(ValueError, match="between 1 and N - 1 = 41"):
        retrieval_metrics(x, y, ks=(1, 42))
    with pytest.raises(ValueError, match="one entry per embedding"):
        retrieval_metrics(x, y[:-1])
    with pytest.raises(ValueError, match="integer class ids"):
        evaluate(x, y.float())
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(x.clone().fill_(float("nan")), y)
    with pytest.raises(ValueError, match=r"shape \(B, D\)"):
        retrieval_metrics(x[:0], y[:0])
    with pytest.raises(ValueError, match="one entry per embedding"):
        clustering_metrics(x, y[:-2])
    with pytest.raises(ValueError, match="D >= 2"):
        mean_abs_correlation(x[:, :1])


def test_per_class_recall_against_a_loop_and_by_hand():
    x, y = clustered(spread=1.5)
    per_class = per_class_recall(x, y)
    z = torch.nn.functional.normalize(x, dim=1).double()
    sim = z @ z.T
    sim.fill_diagonal_(-float("inf"))
    hit = (y[sim.argmax(dim=1)] == y).double()
    assert per_class == pytest.approx([hit[y == c].mean().item() for c in range(6)])
    assert per_class.mean() == pytest.approx(retrieval_metrics(x, y, ks=(1,))["recall@1"])
    # classes 5 and 7, in class order: (0.9, 0.1) and (0.85, 0.15) are each other's nearest
    points = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.85, 0.15]])
    assert per_class_recall(points, torch.tensor([5, 5, 7, 7, 7])).tolist() == [0.5, 2 / 3]
    with pytest.raises(ValueError, match="at least 2 items.*class 3 with 1"):
        per_class_recall(points[:3], torch.tensor([1, 1, 3]))
