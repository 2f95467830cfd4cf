"""Binomial deviance loss (Yi et al. 2014) with the pair weighting of the official BIER code.

On cosine similarities s_ij of L2-normalised embeddings, every pair costs::

    dev_ij = log(1 + exp(-alpha (s_ij - beta) m_ij)),   m_ij = +1 (same class) or -C (other class)

with alpha = 2, beta = 0.5, C = 25 (Opitz et al. 2017/2020). The pair terms are
weighted so that positives and negatives weigh the same in total, exactly as the
official TensorFlow code does it: a positive entry (i, j) of the (B, B) label
matrix gets weight 1 / n_pos and a negative entry 1 / n_neg, where n_pos counts
the positive entries *including* the diagonal (i == i) and the diagonal itself
gets weight 0. Optional extra weights (B, B) -- BIER's boosting weights -- multiply
each term and receive no gradient.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_batch


def binomial_deviance(similarities: torch.Tensor, labels: torch.Tensor, alpha: float = 2.0,
                      beta: float = 0.5, C: float = 25.0,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted binomial deviance of a (B, B) similarity matrix with labels (B,) -> scalar.

    ``weights`` (B, B), if given, are treated as constants (detached).
    """
    b = len(labels)
    if similarities.shape != (b, b):
        raise ValueError(f"similarities must have shape (B, B) = ({b}, {b}), "
                         f"found {tuple(similarities.shape)}")
    same = (labels[:, None] == labels[None, :]).to(similarities.dtype)  # (B, B), diagonal 1
    m = same - C * (1.0 - same)
    off_diagonal = 1.0 - torch.eye(b, dtype=similarities.dtype, device=similarities.device)
    n_pos, n_neg = same.sum(), (1.0 - same).sum()
    pair_weight = off_diagonal * (same / n_pos + (1.0 - same) / n_neg.clamp_min(1.0))
    if weights is not None:
        if weights.shape != (b, b):
            raise ValueError(f"weights must have shape ({b}, {b}), found {tuple(weights.shape)}")
        pair_weight = pair_weight * weights.detach()
    deviance = F.softplus(-alpha * (similarities - beta) * m)  # log(1 + exp(.)), stable
    return (deviance * pair_weight).sum()


def binomial_deviance_loss(embeddings: torch.Tensor, labels: torch.Tensor, alpha: float = 2.0,
                           beta: float = 0.5, C: float = 25.0) -> torch.Tensor:
    """Binomial deviance of a batch: embeddings (B, D) (normalised here), labels (B,) -> scalar."""
    embeddings, labels = check_batch(embeddings, labels)
    x = F.normalize(embeddings, dim=1)
    return binomial_deviance(x @ x.T, labels, alpha, beta, C)


class BinomialDevianceLoss(nn.Module):
    """Module form of :func:`binomial_deviance_loss`; call as ``loss(embeddings, labels)``."""

    def __init__(self, alpha: float = 2.0, beta: float = 0.5, C: float = 25.0):
        super().__init__()
        self.alpha, self.beta, self.C = alpha, beta, C

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return binomial_deviance_loss(embeddings, labels, self.alpha, self.beta, self.C)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, C={self.C}"
