"""Margin loss, distance-weighted sampling and divide-and-conquer: loops, PML, sampler, schedule."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.miners import distance_weighted_miner

from bierlib.divide import (ClusterBatchSampler, ClusteredDataset, cluster_statistics,
                            match_clusters, schedule, stage_starts, train_divide_and_conquer)
from bierlib.losses.divide import FINETUNE, DivideAndConquerLoss
from bierlib.losses.margin import (MarginLoss, closest_negative_triplets,
                                   distance_weight_probabilities, distance_weighted_triplets,
                                   margin_loss)
from bierlib.models import SmallConvNet
from bierlib.training import TrainConfig

from .conftest import random_batch


def naive_probabilities(x, y, cutoff=0.5, far=1.4):
    """From the paper's formula, one anchor at a time."""
    b, dim = x.shape
    out = torch.zeros(b, b, dtype=torch.float64)
    for i in range(b):
        negatives = [j for j in range(b) if y[j] != y[i]]
        near = [j for j in negatives if torch.linalg.vector_norm(x[i] - x[j]) < far]
        logs = {j: 0.0 for j in negatives}  # uniform when no negative is near
        for j in near:
            d = max(float(torch.linalg.vector_norm(x[i] - x[j])), cutoff)
            logs[j] = -((dim - 2) * math.log(d)
                        + (dim - 3) / 2 * math.log(max(1 - d * d / 4, 1e-8)))
        if near:
            logs = {j: logs[j] for j in near}
        if logs:
            top = max(logs.values())
            total = sum(math.exp(v - top) for v in logs.values())
            for j, v in logs.items():
                out[i, j] = math.exp(v - top) / total
    return out


def naive_margin(x, y, triplets, margin=0.2, beta=1.2):
    x = F.normalize(x, dim=1)
    terms = []
    for a, p, n in zip(*triplets):
        terms += [max(float(torch.linalg.vector_norm(x[a] - x[p])) - beta + margin, 0.0),
                  max(beta - float(torch.linalg.vector_norm(x[a] - x[n])) + margin, 0.0)]
    nonzero = [t for t in terms if t > 0]
    return sum(nonzero) / len(nonzero) if nonzero else 0.0


@pytest.mark.parametrize("dim,seed", [(4, 0), (8, 1), (16, 2)])
def test_probabilities_match_loop(dim, seed):
    x, y = random_batch(b=14, d=dim, classes=4, seed=seed)
    x = F.normalize(x, dim=1)
    got = distance_weight_probabilities(x, y)
    assert torch.allclose(got, naive_probabilities(x, y), atol=1e-10)
    assert torch.allclose(got.sum(1), torch.ones(14, dtype=got.dtype))
    assert (got[y[:, None] == y[None, :]] == 0).all()  # never a positive or the anchor itself


def test_probabilities_match_pml_miner(monkeypatch):
    x, y = random_batch(b=16, d=8, classes=4, seed=3, dtype=torch.float32)
    x = F.normalize(x, dim=1)
    seen = {}
    real = distance_weighted_miner.lmu.get_random_triplet_indices

    def spy(labels, ref_labels=None, weights=None, **kwargs):
        seen["weights"] = weights
        return real(labels, ref_labels=ref_labels, weights=weights, **kwargs)

    monkeypatch.setattr(distance_weighted_miner.lmu, "get_random_triplet_indices", spy)
    distance_weighted_miner.DistanceWeightedMiner(cutoff=0.5, nonzero_loss_cutoff=1.4)(x, y)
    assert torch.allclose(distance_weight_probabilities(x, y), seen["weights"], atol=1e-5)


def test_high_dimensional_weights_do_not_underflow():
    """D = 1024: exp of raw log-weights under/overflows; every row must still be a distribution."""
    x, y = random_batch(b=32, d=1024, classes=8, seed=4, dtype=torch.float32)
    x = F.normalize(x, dim=1)
    x[:4] = F.normalize(x[:4] + 3 * x[4:8], dim=1)  # some anchors with very close negatives
    probs = distance_weight_probabilities(x, y)
    assert torch.isfinite(probs).all()
    assert torch.allclose(probs.sum(1), torch.ones(32), atol=1e-5)


def test_far_negatives_fall_back_to_uniform_and_single_class_gives_no_triplet():
    x = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [-1.0, 0, 0, 0], [-1.0, 0.01, 0, 0]])
    y = torch.tensor([0, 0, 1, 1])
    probs = distance_weight_probabilities(F.normalize(x, dim=1), y)  # all negatives at d = 2
    assert torch.allclose(probs[0], torch.tensor([0, 0, 0.5, 0.5]))
    a, p, n = distance_weighted_triplets(F.normalize(x, dim=1), torch.zeros(4, dtype=torch.long))
    assert len(a) == len(p) == len(n) == 0
    loss = margin_loss(x.requires_grad_(), torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0 and x.grad is not None


def test_sampling_follows_probabilities():
    x, y = random_batch(b=10, d=6, classes=3, seed=5)
    x = F.normalize(x, dim=1)
    probs = distance_weight_probabilities(x, y)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(10, 10, dtype=torch.float64)
    for _ in range(2000):
        a, p, n = distance_weighted_triplets(x, y, generator=g)
        assert (y[a] == y[p]).all() and (a != p).all() and (y[a] != y[n]).all()
        counts.index_put_((a, n), torch.ones(len(a), dtype=torch.float64), accumulate=True)
    freq = counts / counts.sum(1, keepdim=True)
    assert (freq - probs).abs().max() < 0.03


@pytest.mark.parametrize("margin,beta", [(0.2, 1.2), (0.1, 0.9)])
def test_margin_loss_matches_loop_and_pml(margin, beta):
    x, y = random_batch(b=12, d=6, classes=3, seed=6)
    a, p = [t for t in (y[:, None] == y[None, :]).fill_diagonal_(False).nonzero(as_tuple=True)]
    n = torch.tensor([next(j for j in itertools.chain(range(i + 1, 12), range(12)) if y[j] != y[i])
                      for i in a.tolist()])
    got = margin_loss(x, y, margin, beta, triplets=(a, p, n))
    assert torch.allclose(got, torch.tensor(naive_margin(x, y, (a, p, n), margin, beta),
                                            dtype=got.dtype))
    xf = x.float().requires_grad_()
    ref = pml_losses.MarginLoss(margin=margin, beta=beta)(xf, y, indices_tuple=(a, p, n))
    ours_x = x.float().requires_grad_()
    ours = margin_loss(ours_x, y, margin, beta, triplets=(a, p, n))
    ref.backward()
    ours.backward()
    assert torch.allclose(ours, ref, atol=1e-6)
    assert torch.allclose(ours_x.grad, xf.grad, atol=1e-6)


def test_margin_loss_gradcheck_and_validation():
    x, y = random_batch(b=8, d=5, classes=2, seed=7)
    a = torch.tensor([0, 2, 1])
    p = torch.tensor([2, 0, 3])
    n = torch.tensor([1, 1, 0])
    torch.autograd.gradcheck(lambda e: margin_loss(e, y, triplets=(a, p, n)), (x.requires_grad_(),))
    with pytest.raises(ValueError, match="one length"):
        margin_loss(x, y, triplets=(a, p, n[:2]))
    with pytest.raises(ValueError, match="D >= 3"):
        distance_weight_probabilities(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="beta"):
        MarginLoss(beta=0)(x, y)


def test_match_clusters_undoes_a_permutation_and_follows_overlap():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, size=200)
    perm = np.array([3, 0, 4, 1, 2])
    assert (match_clusters(ids, perm[ids], 5) == ids).all()
    noisy = perm[ids].copy()
    noisy[:20] = rng.integers(0, 5, size=20)  # 10% reassigned: the renaming still follows the rest
    renamed = match_clusters(ids, noisy, 5)
    assert (renamed[20:] == ids[20:]).all()
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        match_clusters(ids, ids + 1, 5)


def test_cluster_sampler_keeps_batches_in_one_cluster_and_visits_all():
    labels = np.repeat(np.arange(20), 6)
    clusters = np.repeat(np.arange(4), 30)  # classes 0-4 in cluster 0, ...
    clusters[:3] = 1  # class 0 split: 3 images in cluster 1, 3 in cluster 0
    sampler = ClusterBatchSampler(labels, clusters, classes_per_batch=8, images_per_class=2,
                                  num_batches=10, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 10
    owners = [set(clusters[b].tolist()) for b in batches]
    assert all(len(o) == 1 for o in owners)
    assert [o.pop() for o in owners] == [0, 1, 2, 3] * 2 + [0, 1]  # clusters take turns
    assert all(len(set(labels[b])) == 5 or len(set(labels[b])) == 6 for b in batches)  # P shrinks
    sampler.set_epoch(1)
    assert list(sampler) != batches and list(sampler) == list(sampler)


def test_cluster_sampler_skips_clusters_without_negatives():
    labels = np.repeat(np.arange(6), 4)
    clusters = np.where(labels == 0, 1, 0)  # cluster 1 holds one class only
    with pytest.warns(UserWarning, match="cluster 1 has 1 class"):
        sampler = ClusterBatchSampler(labels, clusters, 4, 2, num_batches=4)
    assert sampler.cluster_ids == [0]
    assert all(0 not in set(labels[b]) for b in sampler)
    with pytest.raises(ValueError, match="fewer clusters"), pytest.warns(UserWarning):
        ClusterBatchSampler(labels, labels, 4, 2, num_batches=4)


def test_divide_and_conquer_loss_uses_the_clusters_slice():
    x, y = random_batch(b=12, d=8, classes=3, seed=8, dtype=torch.float32)
    loss = DivideAndConquerLoss(num_learners=2)
    torch.manual_seed(0)
    got = loss(x, y, cluster=torch.ones(12, dtype=torch.long))
    torch.manual_seed(0)
    assert torch.allclose(got, margin_loss(x[:, 4:], y))
    torch.manual_seed(0)
    whole = loss(x, y, cluster=torch.full((12,), FINETUNE))
    torch.manual_seed(0)
    assert torch.allclose(whole, margin_loss(x, y))
    x.requires_grad_()
    loss(x, y, cluster=torch.zeros(12, dtype=torch.long)).backward()
    assert (x.grad[:, 4:] == 0).all() and (x.grad[:, :4] != 0).any()
    with pytest.raises(ValueError, match="one cluster"):
        loss(x, y, cluster=torch.arange(12) % 2)
    with pytest.raises(ValueError, match="not divisible"):
        DivideAndConquerLoss(3)(x, y, cluster=torch.zeros(12, dtype=torch.long))


def test_stage_starts_and_statistics():
    assert stage_starts(12, 2, 6) == [0, 2, 4, 6]
    assert stage_starts(12, 4, 12) == [0, 4, 8]
    assert stage_starts(5, 2, 1) == [0, 1]
    stats = cluster_statistics([0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 2])
    assert stats["images"] == [3, 3] and stats["classes"] == [2, 2]
    assert stats["class_consistency"] == pytest.approx((2 / 3 + 1 + 1) / 3)


def _toy(n_classes=8, per_class=6, seed=0):
    from bierlib.data.base import ImageTensorDataset
    g = torch.Generator().manual_seed(seed)
    targets = torch.arange(n_classes).repeat_interleave(per_class)
    images = (torch.rand(len(targets), 1, 12, 12, generator=g) * 255).to(torch.uint8)
    return ImageTensorDataset(images, targets, [str(c) for c in range(n_classes)])


def _run(folder, epochs, k=2):
    torch.manual_seed(0)
    net = SmallConvNet(8, widths=(4, 4, 8))
    config = TrainConfig(epochs=epochs, steps_per_epoch=3, classes_per_batch=3, images_per_class=2,
                         clustering=False, lr=1e-2)
    return train_divide_and_conquer(net, _toy(), _toy(4, seed=1), config, DivideAndConquerLoss(k),
                                    recluster_every=2, finetune_epoch=min(4, epochs),
                                    checkpoint_dir=folder, progress=False)


def test_schedule_runs_and_resumes_exactly(tmp_path):
    full = _run(tmp_path / "full", epochs=5)
    assert [c["epoch"] for c in full.clusterings] == [0, 2, 4]
    assert (full.clusterings[-1]["clusters"] == FINETUNE).all()
    assert set(full.clusterings[0]["clusters"].tolist()) <= {0, 1}
    assert [r["epoch"] for r in full.history.records] == list(range(6))
    # killed in epoch 4 (second stage), then, resumed, in epoch 5 (fine-tuning)
    for kill_at in (10, 4):
        calls = []

        def dying_margin_loss(*args, **kwargs):
            calls.append(1)
            if len(calls) == kill_at:
                raise KeyboardInterrupt
            return margin_loss(*args, **kwargs)

        with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
            mp.setattr("bierlib.losses.divide.margin_loss", dying_margin_loss)
            _run(tmp_path / "cut", epochs=5)
    resumed = _run(tmp_path / "cut", epochs=5)
    for a, b in zip(full.clusterings, resumed.clusterings):
        assert (a["clusters"] == b["clusters"]).all()
    for a, b in zip(full.history.records, resumed.history.records):
        assert a["loss"] == pytest.approx(b["loss"], nan_ok=True) and a["recall@1"] == b["recall@1"]
    again = _run(tmp_path / "full", epochs=5)  # a finished run is loaded, not retrained
    assert again.history["recall@1"] == full.history["recall@1"]
    assert again.history["loss"][1:] == full.history["loss"][1:]


def test_one_learner_is_plain_margin_training(tmp_path):
    result = _run(tmp_path, epochs=2, k=1)
    assert all((c["clusters"] == 0).all() for c in result.clusterings)
    assert result.model.sizes == (8,)
    x, y = random_batch(b=12, d=8, classes=3, seed=9, dtype=torch.float32)
    torch.manual_seed(0)
    one = DivideAndConquerLoss(1)(x, y, cluster=torch.zeros(12, dtype=torch.long))
    torch.manual_seed(0)
    assert one == MarginLoss()(x, y)
    data = ClusteredDataset(_toy(), [0] * 48)
    assert data[5][2] == {"cluster": 0} and len(data) == 48


def test_whole_embedding_stages_train_the_whole_embedding_on_cluster_batches(tmp_path):
    """The official schedule's middle part: cluster batches, whole-embedding loss."""
    assert stage_starts(10, 4, 8, whole_embedding_epoch=6) == [0, 4, 6, 8]
    stages = schedule(10, 2, 8, whole_embedding_epoch=4)
    assert [(s.start, s.whole, s.finetune) for s in stages] == [
        (0, False, False), (2, False, False), (4, True, False), (6, True, False), (8, False, True)]
    seen = []

    def spy(self, embeddings, labels, cluster=None):
        seen.append((int(cluster[0]), embeddings.shape[1]))
        return margin_loss(F.normalize(embeddings, dim=1), labels)

    torch.manual_seed(0)
    net = SmallConvNet(8, widths=(4, 4, 8))
    config = TrainConfig(epochs=3, steps_per_epoch=2, classes_per_batch=3, images_per_class=2,
                         clustering=False, lr=1e-2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DivideAndConquerLoss, "forward", spy)
        result = train_divide_and_conquer(net, _toy(), _toy(4, seed=1), config,
                                          DivideAndConquerLoss(2), recluster_every=1,
                                          finetune_epoch=3, whole_embedding_epoch=1,
                                          kmeans="faiss", cluster_images="evaluation",
                                          epoch_length="largest-cluster", progress=False)
    assert [c["epoch"] for c in result.clusterings] == [0, 1, 2]
    assert set(result.clusterings[1]["clusters"].tolist()) <= {0, 1}  # clustered, ...
    ids = [k for k, _ in seen]
    first = seen.index(next(s for s in seen if s[0] == FINETUNE))
    assert set(ids[:first]) <= {0, 1} and set(ids[first:]) == {FINETUNE}  # ... whole embedding


def test_largest_cluster_epoch_length_and_bad_options():
    labels = np.repeat(np.arange(10), 4)
    clusters = np.array([0] * 32 + [1] * 8)  # usable images 32 and 8
    assert len(ClusterBatchSampler(labels, clusters, 2, 2, None)) == 2 * (32 // 4)
    net = SmallConvNet(8, widths=(4, 4, 8))
    config = TrainConfig(epochs=2, steps_per_epoch=2, classes_per_batch=3, images_per_class=2)
    for bad, match in (({"kmeans": "lloyd"}, "kmeans must be one of"),
                       ({"cluster_images": "test"}, "cluster_images must be one of"),
                       ({"whole_embedding_epoch": 3}, "whole_embedding_epoch must lie"),
                       ({"epoch_length": "largest-cluster", "config": TrainConfig(
                           epochs=2, lr_anneal=10)}, "lr_anneal")):
        kwargs = {"config": config, **bad}
        with pytest.raises(ValueError, match=match):
            train_divide_and_conquer(net, _toy(), _toy(4, seed=1), kwargs.pop("config"),
                                     progress=False, **kwargs)


def test_margin_loss_normalisers_and_closest_sampler_options():
    x, y = random_batch(b=16, d=8, classes=4, seed=3)
    x = F.normalize(x, dim=1)
    triplets = closest_negative_triplets(x, y)
    both = margin_loss(x, y, triplets=triplets, normalize=False)
    assert margin_loss(x, y, normalize=False, sampler="closest") == both
    either = margin_loss(x, y, triplets=triplets, normalize=False,
                         normalizer="triplets-with-a-hinge")
    assert either >= both  # fewer terms in the count
    loss = DivideAndConquerLoss(2, sampler="closest", normalizer="triplets-with-a-hinge",
                                whole_normalization="slices-then-whole")
    whole = torch.cat([F.normalize(s, dim=1) for s in x.split(4, dim=1)], dim=1)
    got = loss(x, y, cluster=torch.full((16,), FINETUNE))
    assert got == margin_loss(whole, y, sampler="closest", normalizer="triplets-with-a-hinge")
    with pytest.raises(ValueError, match="normalizer must be one of"):
        margin_loss(x, y, normalizer="mean")
    with pytest.raises(ValueError, match="whole_normalization must be one of"):
        DivideAndConquerLoss(2, whole_normalization="none")
