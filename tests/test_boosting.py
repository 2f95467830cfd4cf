"""BIER: binomial deviance, boosting weights, learners, gradient reversal and diversity terms."""
import math

import pytest
import torch
import torch.nn.functional as F

from bierlib.adversarial import AdversarialDiversity, activation_diversity, grad_reverse
from bierlib.boosting import (EnsembleEmbedder, check_learner_sizes, ensemble_embedding,
                              split_learners)
from bierlib.losses import BIERLoss, binomial_deviance, binomial_deviance_loss, boosting_weights
from bierlib.models import SmallConvNet

from .conftest import random_batch
from .test_training import TEST, TRAIN, CONFIG

ALPHA, BETA, C = 2.0, 0.5, 25.0


def naive_deviance(s, y, w=None):
    """The official weighting, one entry at a time: 1/n_pos (diagonal counted, weight 0),
    1/n_neg."""
    y, b = y.tolist(), len(y)
    n_pos = sum(y[i] == y[j] for i in range(b) for j in range(b))
    n_neg = b * b - n_pos
    total = 0.0
    for i in range(b):
        for j in range(b):
            if i == j:
                continue
            m = 1.0 if y[i] == y[j] else -C
            term = math.log1p(math.exp(-ALPHA * (float(s[i, j]) - BETA) * m))
            weight = ((1 / n_pos if y[i] == y[j] else 1 / n_neg)
                      * (1.0 if w is None else float(w[i, j])))
            total += weight * term
    return total


def naive_boosting(sims, y, eta=0.06):
    y, b = y.tolist(), len(y)
    score = [[0.5] * b for _ in range(b)]
    weights = [[[1.0] * b for _ in range(b)]]
    for s in sims[:-1]:
        w = [[0.0] * b for _ in range(b)]
        for i in range(b):
            for j in range(b):
                m = 1.0 if y[i] == y[j] else -C
                score[i][j] += eta * ALPHA * (float(s[i, j]) - BETA) * m
                w[i][j] = (1 / (1 + math.exp(score[i][j]))) * (1.0 if y[i] == y[j] else 2.0)
        weights.append(w)
    return weights


def test_binomial_deviance_matches_loop():
    x, y = random_batch(b=9, d=4, classes=3)
    xn = F.normalize(x, dim=1)
    assert binomial_deviance_loss(x, y).item() == pytest.approx(naive_deviance(xn @ xn.T, y),
                                                                rel=1e-10)
    w = torch.rand(9, 9, dtype=torch.float64)
    assert binomial_deviance(xn @ xn.T, y, weights=w).item() == pytest.approx(
        naive_deviance(xn @ xn.T, y, w), rel=1e-10)


def test_binomial_deviance_single_class_and_gradcheck():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    value = binomial_deviance_loss(x, torch.zeros(4, dtype=torch.long))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    x, y = random_batch(b=6, d=3, classes=2)
    assert torch.autograd.gradcheck(lambda e: binomial_deviance_loss(e, y), (x.requires_grad_(),))


def test_boosting_weights_match_the_algorithm():
    x, y = random_batch(b=6, d=9, classes=2)
    sims = [F.normalize(block, dim=1) @ F.normalize(block, dim=1).T
            for block in split_learners(x, (2, 3, 4))]
    got = boosting_weights(sims, y)
    want = naive_boosting(sims, y)
    assert len(got) == 3 and torch.equal(got[0], torch.ones(6, 6, dtype=torch.float64))
    for g, w in zip(got, want):
        assert torch.allclose(g, torch.tensor(w, dtype=torch.float64), atol=1e-12)


def test_boosting_weights_carry_no_gradient():
    x, y = random_batch(b=6, d=4, classes=2)
    x.requires_grad_()
    sims = [F.normalize(b, dim=1) @ F.normalize(b, dim=1).T for b in split_learners(x, (2, 2))]
    assert not any(w.requires_grad for w in boosting_weights(sims, y))


def test_well_separated_pairs_weigh_less_for_the_next_learner():
    y = torch.tensor([0, 0, 1, 1])
    good = torch.tensor([[1, .9, -.9, -.9], [.9, 1, -.9, -.9],
                         [-.9, -.9, 1, .9], [-.9, -.9, .9, 1]], dtype=torch.float64)
    bad = -good + 2 * torch.eye(4, dtype=torch.float64)
    w_good, w_bad = boosting_weights([good, good], y)[1], boosting_weights([bad, bad], y)[1]
    assert (w_good[0, 1] < w_bad[0, 1]) and (w_good[0, 2] < w_bad[0, 2])


def test_one_learner_is_plain_binomial_deviance():
    x, y = random_batch(b=10, d=6, classes=3)
    assert torch.allclose(BIERLoss([6])(x, y), binomial_deviance_loss(x, y))


def test_bier_is_mean_of_boosted_learner_losses():
    x, y = random_batch(b=10, d=6, classes=3)
    loss = BIERLoss([2, 4])
    value = loss(x, y)
    blocks = [F.normalize(b, dim=1) for b in split_learners(x, (2, 4))]
    sims = [b @ b.T for b in blocks]
    w = boosting_weights(sims, y)
    want = (binomial_deviance(sims[0], y, weights=w[0])
            + binomial_deviance(sims[1], y, weights=w[1])) / 2
    assert torch.allclose(value, want) and len(loss.last_weights) == 2


def test_gradient_reversal_flips_exactly_the_sign():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)

    def f(t):
        return (t.sin() * torch.arange(3.0, dtype=torch.float64)).sum()

    (g_plain,) = torch.autograd.grad(f(x), x)
    (g_rev,) = torch.autograd.grad(f(grad_reverse(x)), x)
    assert torch.equal(g_rev, -g_plain)
    (g_scaled,) = torch.autograd.grad(f(grad_reverse(x, 0.5)), x)
    assert torch.allclose(g_scaled, -0.5 * g_plain)
    # gradcheck: reversing twice must give back exactly the true gradient
    assert torch.autograd.gradcheck(lambda t: grad_reverse(grad_reverse(t)).sin(), (x,))


def test_ensemble_embedding_scales_learners():
    x, _ = random_batch(b=5, d=6)
    e = ensemble_embedding(x, (2, 4))
    norms = [b.norm(dim=1) for b in split_learners(e, (2, 4))]
    assert torch.allclose(norms[0], torch.full((5,), 2 / 6, dtype=torch.float64))
    assert torch.allclose(norms[1], torch.full((5,), 4 / 6, dtype=torch.float64))


def test_adversary_learns_and_embedding_escapes_it():
    torch.manual_seed(0)
    features = torch.randn(256, 16)
    layer = torch.nn.Linear(16, 8, bias=False)
    adversary = AdversarialDiversity([4, 4], hidden=32, lambda_w=0.0)

    def learners():
        return split_learners(F.normalize(layer(features), dim=1), (4, 4))

    def agreement():
        return float(-adversary(learners()).detach())

    # 1) only the regressor moves (gradient descent on the term): its agreement rises
    before = agreement()
    opt = torch.optim.Adam(adversary.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        adversary([o.detach() for o in learners()]).backward()
        opt.step()
    trained = agreement()
    assert trained > before
    # 2) only the embedding moves, through the reversed gradient: the same regressor's
    #    agreement falls, i.e. the learners become harder to predict from each other
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        adversary(learners()).backward()
        opt.step()
    assert agreement() < 0.5 * trained


def test_activation_diversity_matches_definition():
    a, b = torch.randn(3, 2), torch.randn(3, 4)
    want = sum((a[n, k] * b[n, j]) ** 2
               for n in range(3) for k in range(2) for j in range(4)) / (3 * 2 * 4)
    assert torch.allclose(activation_diversity([a, b]), torch.as_tensor(want))


def test_ensemble_embedder_modes_and_training():
    model = EnsembleEmbedder(SmallConvNet(embedding_dim=8, widths=(8, 8, 16)), (3, 5),
                             diversity_outputs=True)
    images = TRAIN[0][0][None].repeat(4, 1, 1, 1)
    embeddings, extras = model.train()(images)
    assert embeddings.shape == (4, 8) and [o.shape[1] for o in extras["detached_outputs"]] == [3, 5]
    # gradient reaches the embedding layer...
    assert extras["detached_outputs"][0].grad_fn is not None
    test = model.eval()(images)
    assert torch.allclose(split_learners(test, (3, 5))[0].norm(dim=1), torch.full((4,), 3 / 8))
    from bierlib.training import train
    for diversity in ("adversarial", "activation"):
        torch.manual_seed(0)
        model = EnsembleEmbedder(SmallConvNet(embedding_dim=8, widths=(8, 8, 16)), (3, 5),
                                 diversity_outputs=True)
        loss = BIERLoss((3, 5), diversity=diversity, lambda_div=1e-3, hidden=16)
        history = train(model, loss, TRAIN, TEST, CONFIG, progress=False)
        assert math.isfinite(history.final["loss"]) and "diversity" in loss.last_terms


def test_detached_outputs_do_not_reach_the_backbone():
    net = SmallConvNet(embedding_dim=8, widths=(8, 8, 16))
    model = EnsembleEmbedder(net, (4, 4), diversity_outputs=True).train()
    _, extras = model(TRAIN[0][0][None].repeat(2, 1, 1, 1))
    sum(o.sum() for o in extras["detached_outputs"]).backward()
    assert all(p.grad is None for p in net.features.parameters())
    assert net.embedding.weight.grad is not None


def test_bad_input():
    with pytest.raises(ValueError, match="sum to 9, but the embedding has 8"):
        check_learner_sizes((4, 5), 8)
    with pytest.raises(ValueError, match="positive integers"):
        BIERLoss((4, 0))
    with pytest.raises(ValueError, match="positive integers"):
        BIERLoss(())
    with pytest.raises(ValueError, match="diversity must be"):
        BIERLoss((4, 4), diversity="orthogonal")
    x, y = random_batch(b=6, d=8)
    with pytest.raises(ValueError, match="sum to 6, but the embedding has 8"):
        BIERLoss((3, 3))(x, y)
    with pytest.raises(ValueError, match="EnsembleEmbedder"):
        BIERLoss((4, 4), diversity="adversarial", lambda_div=1.0)(x, y)
    with pytest.raises(ValueError, match="expected 2 learner outputs"):
        AdversarialDiversity((4, 4))([torch.randn(3, 4)])
    with pytest.raises(ValueError, match="needs a `features` callable"):
        EnsembleEmbedder(torch.nn.Linear(3, 4), (2, 2))
