"""Proxy-anchor loss against a loop written from the paper's equation, PML (same proxies),
gradcheck, its proxies' initialisation and bad input."""
import math

import pytest
import torch
import torch.nn.functional as F

from bierlib.losses import ProxyAnchorLoss, proxy_anchor_loss

from .conftest import random_batch


def naive_proxy_anchor(x, y, proxies, margin=0.1, alpha=32.0):
    """Proxy by proxy: its positives and its negatives in the batch."""
    x, proxies = F.normalize(x, dim=1), F.normalize(proxies, dim=1)
    pos_total, neg_total, with_positives = 0.0, 0.0, 0
    for c, p in enumerate(proxies):
        sims = [(float(e @ p), int(label) == c) for e, label in zip(x, y)]
        positives = [s for s, same in sims if same]
        negatives = [s for s, same in sims if not same]
        if positives:
            with_positives += 1
            pos_total += math.log(1 + sum(math.exp(-alpha * (s - margin)) for s in positives))
        neg_total += math.log(1 + sum(math.exp(alpha * (s + margin)) for s in negatives))
    return pos_total / with_positives + neg_total / len(proxies)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin,alpha", [(0.1, 32.0), (0.0, 4.0), (0.3, 16.0)])
def test_matches_paper_loop(seed, margin, alpha):
    x, y = random_batch(b=12, d=4, classes=3, seed=seed)
    proxies = torch.randn(5, 4, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(seed))  # 2 without positives
    got = proxy_anchor_loss(x, y, proxies, margin, alpha)
    assert got.item() == pytest.approx(naive_proxy_anchor(x, y, proxies, margin, alpha),
                                       rel=1e-10)


def test_against_pytorch_metric_learning_with_the_same_proxies():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    x, y = random_batch(b=24, d=16, classes=6, dtype=torch.float64)
    ours = ProxyAnchorLoss(8, 16).double()  # two classes absent from the batch
    theirs = pml.ProxyAnchorLoss(num_classes=8, embedding_size=16, margin=0.1, alpha=32)
    theirs.proxies.data = ours.proxies.detach().clone()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a, b = ours(xa, y), theirs(xb, y)
    assert a.item() == pytest.approx(b.item(), rel=1e-10)
    a.backward(), b.backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-10)
    assert torch.allclose(ours.proxies.grad, theirs.proxies.grad, atol=1e-10)


def test_proxies_are_initialised_as_in_the_paper_and_seeded():
    torch.manual_seed(0)
    ours = ProxyAnchorLoss(1000, 64)
    assert ours.proxies.shape == (1000, 64) and ours.proxies.requires_grad
    assert ours.proxies.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)  # fan_out
    assert ours.lr_multiplier == 100.0 and (ours.margin, ours.alpha) == (0.1, 32.0)
    torch.manual_seed(0)
    assert torch.equal(ProxyAnchorLoss(1000, 64).proxies, ours.proxies)


def test_class_ids_in_any_numbering_map_to_their_proxies():
    x, y = random_batch(b=12, d=4, classes=3)
    loss = ProxyAnchorLoss([103, 101, 102], 4).double()  # CUB-like ids, in any order
    assert loss.class_ids.tolist() == [101, 102, 103]
    assert loss(x, y + 101).item() == pytest.approx(
        proxy_anchor_loss(x, y, loss.proxies).item(), rel=1e-12)
    with pytest.raises(ValueError, match=r"labels \[100\] are not among the 3 classes"):
        loss(x, torch.full((12,), 100))


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3], [2]])
def test_gradcheck_embeddings_and_proxies(labels):
    x = torch.randn(len(labels), 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    proxies = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor(labels)
    assert torch.autograd.gradcheck(lambda e, p: proxy_anchor_loss(e, y, p, alpha=4.0),
                                    (x.requires_grad_(), proxies.requires_grad_()))


def test_permutation_invariance():
    x, y = random_batch(b=16, classes=5)
    loss = ProxyAnchorLoss(5, 5).double()
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(loss(x, y), loss(x[perm], y[perm]))


def test_bad_input():
    x, y = random_batch(b=12, d=5, classes=3)
    proxies = torch.randn(3, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"proxies must have shape \(C, D\) with the embeddings' "
                                         r"D = 5, found shape \(3, 4\)"):
        proxy_anchor_loss(x, y, proxies[:, :4])
    with pytest.raises(ValueError, match=r"labels must index the C = 3 proxies.*from 0 to 3"):
        proxy_anchor_loss(x, torch.arange(12) % 4, proxies)
    with pytest.raises(ValueError, match="one entry per embedding: expected 12, found 11"):
        proxy_anchor_loss(x, y[:-1], proxies)
    with pytest.raises(ValueError, match="proxies must be a floating-point tensor"):
        proxy_anchor_loss(x, y, proxies.long())
    with pytest.raises(ValueError, match="classes must be a positive integer, found 0"):
        ProxyAnchorLoss(0, 5)
    with pytest.raises(ValueError, match="distinct class ids, found 3 ids of which 2 distinct"):
        ProxyAnchorLoss([1, 1, 2], 5)
    with pytest.raises(ValueError, match="need alpha > 0 and lr_multiplier > 0"):
        ProxyAnchorLoss(3, 5, lr_multiplier=0)
