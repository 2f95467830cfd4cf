"""Lifted structured loss against loops written from the paper's equations, PML and gradcheck."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from bierlib.losses import (GeneralizedLiftedLoss, LiftedStructuredLoss, generalized_lifted_loss,
                            lifted_structured_loss)

from .conftest import random_batch


def logsumexp(values):
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def naive_lifted(x, y, alpha=1.0, normalize=False):
    """Song et al. 2016, eq. (4), one positive pair at a time (stable log-sum-exp)."""
    x = F.normalize(x, dim=1) if normalize else x

    def d(i, j):
        return float(torch.linalg.vector_norm(x[i] - x[j]))

    terms = []
    for i, j in itertools.combinations(range(len(x)), 2):
        if y[i] != y[j]:
            continue
        negatives = [alpha - d(i, k) for k in range(len(x)) if y[k] != y[i]]
        negatives += [alpha - d(j, k) for k in range(len(x)) if y[k] != y[j]]
        terms.append(max(0.0, logsumexp(negatives) + d(i, j)) ** 2)
    return sum(terms) / (2 * len(terms)) if terms and negatives else 0.0


def naive_generalized(x, y, neg_margin=1.0, pos_margin=0.0):
    x = F.normalize(x, dim=1)

    def d(i, j):
        return float(torch.linalg.vector_norm(x[i] - x[j]))

    terms = []
    for i in range(len(x)):
        pos = [d(i, p) - pos_margin for p in range(len(x)) if p != i and y[p] == y[i]]
        neg = [neg_margin - d(i, n) for n in range(len(x)) if y[n] != y[i]]
        if pos and neg:
            terms.append(max(0.0, logsumexp(pos) + logsumexp(neg)))
    return sum(terms) / len(terms) if terms else 0.0


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("seed,classes", [(0, 3), (1, 5), (2, 2)])
def test_matches_paper_loop(normalize, seed, classes):
    x, y = random_batch(b=10, d=4, classes=classes, seed=seed)
    got = lifted_structured_loss(x, y, normalize=normalize)
    assert got.item() == pytest.approx(naive_lifted(x, y, normalize=normalize), rel=1e-10)


def test_ties_and_duplicates():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
                     dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 2])
    x.requires_grad_()
    got = lifted_structured_loss(x, y)
    got.backward()
    assert got.item() == pytest.approx(naive_lifted(x.detach(), y), rel=1e-10)
    assert torch.isfinite(x.grad).all()


def test_large_distances_are_stable():
    x, y = random_batch(b=8, d=3, classes=2, seed=3)
    x = 500.0 * x  # exp(alpha - D) underflows to 0 for every negative
    negatives = y[:, None] != y[None, :]
    naive = torch.log(torch.exp(1 - torch.cdist(x, x).float()[negatives]).sum())
    assert not torch.isfinite(naive)  # the naive formula breaks...
    got = lifted_structured_loss(x, y)
    assert torch.isfinite(got) and got.item() == pytest.approx(naive_lifted(x, y), rel=1e-9)


@pytest.mark.parametrize("labels", [[3, 3, 3, 3], [0, 1, 2, 3], [4]])
@pytest.mark.parametrize("fn", [lifted_structured_loss, generalized_lifted_loss])
def test_no_positive_or_no_negative_pairs(fn, labels):
    x = torch.randn(len(labels), 3, requires_grad=True)
    value = fn(x, torch.tensor(labels))
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(x.grad).all()


def test_generalized_matches_loop():
    x, y = random_batch(b=11, d=4, classes=4)
    y[-1] = 9  # an anchor without positives is skipped
    got = generalized_lifted_loss(x, y, neg_margin=1.2, pos_margin=0.1)
    assert got.item() == pytest.approx(naive_generalized(x, y, 1.2, 0.1), rel=1e-10)


def test_against_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    x, y = random_batch(b=24, d=16, classes=6, dtype=torch.float64)  # P x K batch: 6 x 4
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = lifted_structured_loss(xa, y, margin=1.0, normalize=True)
    theirs = pml.LiftedStructureLoss(neg_margin=1, pos_margin=0)(xb, y)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    ours.backward(), theirs.backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-8)
    ours = generalized_lifted_loss(x, y, neg_margin=1.0)
    theirs = pml.GeneralizedLiftedStructureLoss(neg_margin=1, pos_margin=0)(x, y)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)


@pytest.mark.parametrize("loss", [LiftedStructuredLoss(), LiftedStructuredLoss(normalize=True),
                                  GeneralizedLiftedLoss()])
def test_gradcheck_and_permutation(loss):
    x, y = random_batch(b=8, d=4, classes=3)
    assert torch.autograd.gradcheck(lambda e: loss(e, y), (x.clone().requires_grad_(),))
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(loss(x, y), loss(x[perm], y[perm]))


def test_hard_negatives_get_most_gradient():
    # anchor 0 and positive 1; negative 2 is close (hard), negative 3 far (easy)
    x = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, 0.3], [0.0, 3.0]], dtype=torch.float64,
                     requires_grad=True)
    lifted_structured_loss(x, torch.tensor([0, 0, 1, 2])).backward()
    assert x.grad[2].norm() > 10 * x.grad[3].norm()


def test_bad_input():
    x, y = random_batch()
    with pytest.raises(ValueError, match="one entry per embedding"):
        lifted_structured_loss(x, y[:3])
    with pytest.raises(ValueError, match="integer class ids"):
        generalized_lifted_loss(x, y.double())
