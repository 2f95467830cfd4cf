"""Losses against naive loop references, pytorch-metric-learning, gradcheck and bad input."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from bierlib.losses import (ContrastiveLoss, TripletLoss, contrastive_loss, pair_masks,
                            pairwise_distances, triplet_loss)

from .conftest import random_batch


def naive_contrastive(x, y, margin, form, pos_margin=0.0):
    x = F.normalize(x, dim=1)
    pos, neg = [], []
    for i, j in itertools.permutations(range(len(x)), 2):
        d = torch.linalg.vector_norm(x[i] - x[j])
        if y[i] == y[j]:
            pos.append(d ** 2 if form == "hadsell" else max(d - pos_margin, 0))
        else:
            neg.append(max(margin - d, 0) ** 2 if form == "hadsell" else max(margin - d, 0))
    if form == "hadsell":
        def mean(v):
            return sum(v) / len(v) if v else 0.0

        return 0.5 * (mean(pos) + mean(neg))

    def nz(v):
        return [t for t in v if t > 0]

    def mean_nz(v):
        return sum(nz(v)) / len(nz(v)) if nz(v) else 0.0

    return mean_nz(pos) + mean_nz(neg)


def naive_triplet(x, y, margin, reduction):
    x = F.normalize(x, dim=1)

    def d(i, j):
        return torch.linalg.vector_norm(x[i] - x[j])

    terms = [max(d(a, p) - d(a, n) + margin, 0)
             for a, p, n in itertools.permutations(range(len(x)), 3)
             if y[a] == y[p] and y[a] != y[n]]
    if reduction == "nonzero":
        terms = [t for t in terms if t > 0]
    return sum(terms) / len(terms) if terms else 0.0


@pytest.mark.parametrize("form,margin,pos_margin", [("hadsell", 1.0, 0.0), ("hadsell", 0.5, 0.0),
                                                    ("pml", 1.0, 0.0), ("pml", 1.3, 0.2)])
def test_contrastive_matches_loop(form, margin, pos_margin):
    x, y = random_batch()
    got = contrastive_loss(x, y, margin, form=form, pos_margin=pos_margin)
    assert torch.allclose(got, torch.as_tensor(naive_contrastive(x, y, margin, form, pos_margin),
                                               dtype=got.dtype))


@pytest.mark.parametrize("margin,reduction", [(0.2, "nonzero"), (0.5, "mean"), (0.0, "mean")])
def test_triplet_matches_loop(margin, reduction):
    x, y = random_batch(b=10, classes=3)
    got = triplet_loss(x, y, margin, reduction)
    assert torch.allclose(got, torch.as_tensor(naive_triplet(x, y, margin, reduction),
                                               dtype=got.dtype))


def test_pairwise_distances_against_cdist():
    x, _ = random_batch(b=20, d=7)
    assert torch.allclose(pairwise_distances(x), torch.cdist(x, x), atol=1e-6)
    assert torch.allclose(pairwise_distances(x, squared=True), torch.cdist(x, x) ** 2, atol=1e-6)
    assert (pairwise_distances(x).diagonal() == 0).all()


def test_pair_masks():
    pos, neg = pair_masks(torch.tensor([0, 0, 1]))
    assert pos.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    assert neg.tolist() == [[False, False, True], [False, False, True], [True, True, False]]


def test_against_pytorch_metric_learning():
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    x, y = random_batch(b=32, d=16, classes=6, dtype=torch.float32)
    ours = contrastive_loss(x, y, margin=1.0, form="pml")
    theirs = pml_losses.ContrastiveLoss(pos_margin=0, neg_margin=1)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-5)
    ours = triplet_loss(x, y, margin=0.2)
    theirs = pml_losses.TripletMarginLoss(margin=0.2)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-5)
    # gradients coincide as well
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    contrastive_loss(xa, y, 1.0, form="pml").backward()
    pml_losses.ContrastiveLoss(pos_margin=0, neg_margin=1)(xb, y).backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)


@pytest.mark.parametrize("loss", [ContrastiveLoss(), ContrastiveLoss(form="pml"), TripletLoss()])
def test_gradcheck(loss):
    x, y = random_batch(b=8, d=4, classes=3)
    assert torch.autograd.gradcheck(lambda e: loss(e, y), (x.requires_grad_(),))


@pytest.mark.parametrize("loss", [ContrastiveLoss(), ContrastiveLoss(form="pml"), TripletLoss()])
def test_permutation_invariance(loss):
    x, y = random_batch(b=16, classes=5)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(loss(x, y), loss(x[perm], y[perm]))


@pytest.mark.parametrize("loss", [ContrastiveLoss(), ContrastiveLoss(form="pml"), TripletLoss()])
@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5, 5], [7]])
def test_no_valid_pairs_gives_zero_with_gradient(loss, labels):
    x = torch.randn(len(labels), 3, requires_grad=True)
    value = loss(x, torch.tensor(labels))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    if len(labels) == 1 or isinstance(loss, TripletLoss):
        assert value.item() == 0.0  # no pair at all (or, for triplets, no triplet)
    elif isinstance(loss, ContrastiveLoss):  # the missing term contributes exactly zero
        y = torch.tensor(labels)
        assert torch.allclose(value, torch.as_tensor(
            naive_contrastive(x.detach(), y, 1.0, loss.form), dtype=value.dtype))


def test_identical_embeddings_have_finite_gradient():
    x = torch.ones(4, 3, requires_grad=True)
    contrastive_loss(x, torch.tensor([0, 0, 1, 1]), normalize=False).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("fn", [contrastive_loss, triplet_loss])
def test_bad_input(fn):
    x, y = random_batch()
    with pytest.raises(ValueError, match=r"shape \(B, D\)"):
        fn(x[0], y)
    with pytest.raises(ValueError, match="floating-point"):
        fn(x.long(), y)
    with pytest.raises(ValueError, match="one entry per embedding: expected 12, found 11"):
        fn(x, y[:-1])
    with pytest.raises(ValueError, match="integer class ids"):
        fn(x, y.float())
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        fn(x.numpy(), y)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        fn(x, y[:, None])


def test_bad_options():
    x, y = random_batch()
    with pytest.raises(ValueError, match="form must be"):
        contrastive_loss(x, y, form="squared")
    with pytest.raises(ValueError, match="margin must be positive"):
        contrastive_loss(x, y, margin=0)
    with pytest.raises(ValueError, match="only defined for form='pml'"):
        contrastive_loss(x, y, pos_margin=0.1)
    with pytest.raises(ValueError, match="reduction must be"):
        triplet_loss(x, y, reduction="sum")
