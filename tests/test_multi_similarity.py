"""Multi-similarity loss and mining against a loop written from the paper's equations, PML,
gradcheck and bad input."""
import math

import pytest
import torch
import torch.nn.functional as F

from bierlib.losses import MultiSimilarityLoss, multi_similarity_loss, multi_similarity_pairs

from .conftest import random_batch


def naive_multi_similarity(x, y, alpha=2.0, beta=50.0, base=0.5, epsilon=0.1):
    """Anchor by anchor: mine with the hardest pair of the other kind, then weigh softly."""
    x = F.normalize(x, dim=1)
    total = 0.0
    for i in range(len(x)):
        pos = [float(x[i] @ x[j]) for j in range(len(x)) if j != i and y[j] == y[i]]
        neg = [float(x[i] @ x[k]) for k in range(len(x)) if y[k] != y[i]]
        if epsilon is not None:
            if not pos or not neg:
                continue
            kept_neg = [s for s in neg if s > min(pos) - epsilon]
            pos = [s for s in pos if s < max(neg) + epsilon]
            neg = kept_neg
        total += math.log(1 + sum(math.exp(-alpha * (s - base)) for s in pos)) / alpha
        total += math.log(1 + sum(math.exp(beta * (s - base)) for s in neg)) / beta
    return total / len(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("options", [{}, {"epsilon": None}, {"epsilon": 0.3, "base": 1.0},
                                     {"alpha": 1.0, "beta": 10.0, "epsilon": 0.0}])
def test_matches_paper_loop(seed, options):
    x, y = random_batch(b=12, d=4, classes=3, seed=seed)
    y[-1] = 7  # an anchor without positives adds 0 and still counts in 1/B
    got = multi_similarity_loss(x, y, **options)
    assert got.item() == pytest.approx(naive_multi_similarity(x, y, **options), rel=1e-10)


def test_mining_keeps_the_hard_pairs():
    # anchor 0: positive 1 is close, positive 2 far; negative 3 closer than 2, negative 4 far
    x = torch.tensor([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]],
                     dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1, 2])
    xn = F.normalize(x, dim=1)
    pos, neg = multi_similarity_pairs(xn @ xn.T, y, epsilon=0.1)
    assert pos[0].tolist() == [False, False, True, False, False]  # 1 is easy: dropped
    assert neg[0].tolist() == [False, False, False, True, False]  # 4 is easy: dropped
    all_pos, all_neg = multi_similarity_pairs(xn @ xn.T, y, epsilon=None)
    assert all_pos[0].sum() == 2 and all_neg[0].sum() == 2


@pytest.mark.parametrize("epsilon", [0.1, None])
def test_against_pytorch_metric_learning(epsilon):
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    x, y = random_batch(b=24, d=16, classes=6, dtype=torch.float64)  # P x K batch: 6 x 4
    y[0] = 9  # an anchor without positives
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = multi_similarity_loss(xa, y, epsilon=epsilon)
    pairs = pml_miners.MultiSimilarityMiner(epsilon=epsilon)(xb, y) if epsilon else None
    theirs = pml_losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5)(xb, y, pairs)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-10)
    ours.backward(), theirs.backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-10)


@pytest.mark.parametrize("loss", [MultiSimilarityLoss(), MultiSimilarityLoss(epsilon=None)])
def test_gradcheck_and_permutation(loss):
    x, y = random_batch(b=8, d=4, classes=3)
    assert torch.autograd.gradcheck(lambda e: loss(e, y), (x.clone().requires_grad_(),))
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(loss(x, y), loss(x[perm], y[perm]))


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5, 5], [7]])
def test_no_pairs_to_mine_gives_zero_with_gradient(labels):
    x = torch.randn(len(labels), 3, requires_grad=True)
    value = multi_similarity_loss(x, torch.tensor(labels))
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(x.grad).all()


def test_bad_input():
    x, y = random_batch()
    with pytest.raises(ValueError, match=r"shape \(B, D\)"):
        multi_similarity_loss(x[0], y)
    with pytest.raises(ValueError, match="one entry per embedding: expected 12, found 11"):
        multi_similarity_loss(x, y[:-1])
    with pytest.raises(ValueError, match="integer class ids"):
        multi_similarity_loss(x, y.float())
    with pytest.raises(ValueError, match=r"need alpha > 0, beta > 0 and epsilon >= 0.*beta=0"):
        MultiSimilarityLoss(beta=0)
    with pytest.raises(ValueError, match="epsilon=-0.1"):
        multi_similarity_loss(x, y, epsilon=-0.1)
    with pytest.raises(ValueError, match=r"similarities must have shape \(B, B\) = \(12, 12\)"):
        multi_similarity_pairs(x, y)
