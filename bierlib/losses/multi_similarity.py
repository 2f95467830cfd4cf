"""Multi-similarity loss with its pair mining (Wang, Han, Huang, Dong & Scott, CVPR 2019).

On the cosine similarities S_ik of L2-normalised embeddings, every anchor i first *mines*
its informative pairs, comparing each pair with the hardest pair of the other kind::

    N_i = {k negative of i : S_ik > min_{j positive of i} S_ij - epsilon}
    P_i = {j positive of i : S_ij < max_{k negative of i} S_ik + epsilon}

(a negative is kept when it is more similar than the least similar positive, give or take
epsilon; a positive when it is less similar than the most similar negative), then *weights*
the mined pairs softly::

    L = 1/B sum_i [ 1/alpha log(1 + sum_{j in P_i} exp(-alpha (S_ij - lambda)))
                  + 1/beta  log(1 + sum_{k in N_i} exp( beta (S_ik - lambda))) ]

The gradient of a mined negative is weighted by exp(beta (S_ik - lambda)) / (1 + sum_{l in
N_i} exp(beta (S_il - lambda))), a softmax over the anchor's mined negatives (plus a 1): the
most similar negatives weigh the most, sharply so at beta = 50; the positives likewise,
far more evenly at alpha = 2.

Defaults: alpha = 2, beta = 50, lambda (``base``) = 0.5 and epsilon = 0.1, the defaults of
pytorch-metric-learning's ``MultiSimilarityLoss`` and ``MultiSimilarityMiner``. The authors'
released code (msight-tech/research-ms-loss at b68507d,
``ret_benchmark/losses/multi_similarity_loss.py:18-19``) fixes lambda = 0.5 (``thresh``) and
epsilon = 0.1 (``margin``), and its default configuration sets alpha = 2 and beta = 40
(``ret_benchmark/config/defaults.py:41-42``); ``tests/test_official.py`` transcribes its loss
and matches it at beta = 40. Mining compares detached similarities (it selects pairs, it is not
differentiated), ``epsilon=None`` keeps every pair, and every anchor counts in 1/B. Two
differences from the released code, both kept as PML has them: an anchor that mines positives
but no negatives (or the reverse) keeps its one term here, while the released code drops the
anchor (``:41-42``); and the anchor itself is excluded by index, while the released code drops
every "positive" with S >= 1 - 1e-5, an exact duplicate of the anchor included.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_batch
from .pairs import masked_log1p_sum_exp, pair_masks


def _check_options(alpha: float, beta: float, epsilon: float | None) -> None:
    if alpha <= 0 or beta <= 0 or (epsilon is not None and epsilon < 0):
        raise ValueError(f"need alpha > 0, beta > 0 and epsilon >= 0 (or None: no mining), "
                         f"found alpha={alpha}, beta={beta}, epsilon={epsilon}")


def multi_similarity_pairs(similarities: torch.Tensor, labels: torch.Tensor,
                           epsilon: float | None = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (B, B) masks of the mined positive and negative pairs (P_i and N_i of the
    module docstring) of a (B, B) similarity matrix; ``epsilon=None``: every pair."""
    b = len(labels)
    if similarities.shape != (b, b):
        raise ValueError(f"similarities must have shape (B, B) = ({b}, {b}), "
                         f"found {tuple(similarities.shape)}")
    pos, neg = pair_masks(labels)  # (B, B)
    if epsilon is None:
        return pos, neg
    s = similarities.detach()
    least_similar_pos = s.masked_fill(~pos, float("inf")).amin(dim=1, keepdim=True)  # (B, 1)
    most_similar_neg = s.masked_fill(~neg, float("-inf")).amax(dim=1, keepdim=True)  # (B, 1)
    return pos & (s < most_similar_neg + epsilon), neg & (s > least_similar_pos - epsilon)


def multi_similarity_loss(embeddings: torch.Tensor, labels: torch.Tensor, alpha: float = 2.0,
                          beta: float = 50.0, base: float = 0.5,
                          epsilon: float | None = 0.1) -> torch.Tensor:
    """Multi-similarity loss of a batch: embeddings (B, D) (normalised here), labels (B,)
    -> scalar.

    Args:
        alpha, beta: the scales of the positive and of the negative pairs.
        base: lambda, the similarity the pairs are measured from.
        epsilon: the mining's slack; None mines nothing (every pair is weighted).
    """
    embeddings, labels = check_batch(embeddings, labels)
    _check_options(alpha, beta, epsilon)
    x = F.normalize(embeddings, dim=1)
    sim = x @ x.T  # (B, B) cosine similarities
    pos, neg = multi_similarity_pairs(sim, labels, epsilon)
    pos_term = masked_log1p_sum_exp(-alpha * (sim - base), pos) / alpha  # (B,)
    neg_term = masked_log1p_sum_exp(beta * (sim - base), neg) / beta  # (B,)
    return (pos_term + neg_term).mean()


class MultiSimilarityLoss(nn.Module):
    """Module form of :func:`multi_similarity_loss`; call as ``loss(embeddings, labels)``."""

    def __init__(self, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5,
                 epsilon: float | None = 0.1):
        super().__init__()
        _check_options(alpha, beta, epsilon)
        self.alpha, self.beta, self.base, self.epsilon = alpha, beta, base, epsilon

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return multi_similarity_loss(embeddings, labels, self.alpha, self.beta, self.base,
                                     self.epsilon)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, base={self.base}, epsilon={self.epsilon}"
