"""Lifted structured loss (Song, Xiang, Jegelka & Savarese, CVPR 2016) and its generalised form.

Song et al. "lift" the pairs of a batch to the full (B, B) distance matrix: every
positive pair (i, j) is compared with *all* negatives of both i and j. With
D_ij the non-squared Euclidean distance and N(i) the negatives of i, their
equations (4) and (3) are::

    J_ij = log( sum_{k in N(i)} exp(alpha - D_ik) + sum_{l in N(j)} exp(alpha - D_jl) ) + D_ij
    L    = 1 / (2 |P|) * sum_{(i, j) in P} max(0, J_ij)^2

over the unordered positive pairs P, with alpha = 1. The log-sum-exp is a smooth
upper bound of the hardest negative's ``max(alpha - D)``, so every negative gets
some gradient, the hardest ones the most. As in Song et al.'s released model definitions,
which feed the raw embedding layer to their loss layer (``fc_embedding``, an InnerProduct,
in ``model/train_val_googlenet_*.prototxt`` of rksltnl/Deep-Metric-Learning-CVPR16 at
02bcf73), the distances are taken on the *un-normalised* embedding (``normalize=False``);
``normalize=True`` gives the unit-sphere variant that pytorch-metric-learning's
``LiftedStructureLoss(neg_margin=1, pos_margin=0)`` computes.

Vectorised: the log-sum-exp over the negatives of each row is computed once,
``a_i = logsumexp_{k in N(i)} (alpha - D_ik)`` (B,), and ``J_ij =
logaddexp(a_i, a_j) + D_ij`` for all pairs at once, in O(B^2) time and memory
and without overflow for large distances.

The generalised lifted loss (Hermans, Beyer & Leibe 2017, "In defense of the
triplet loss", section 2) replaces pairs by anchors::

    l_i = max(0, logsumexp_{p in P(i)} (D_ip - m_pos) + logsumexp_{n in N(i)} (m_neg - D_in))

averaged over the anchors that have at least one positive and one negative.

A batch without positive or without negative pairs gives a loss of 0.
"""
from __future__ import annotations

import torch
from torch import nn

from ..utils import check_batch
from .pairs import maybe_normalize, pair_masks, pairwise_distances


def _masked_logsumexp(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise log-sum-exp of ``values[mask]``: (B, B) -> (B,), -inf for empty rows."""
    return torch.logsumexp(values.masked_fill(~mask, float("-inf")), dim=1)


def lifted_structured_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0,
                           normalize: bool = False) -> torch.Tensor:
    """Lifted structured loss of a batch (Song et al. 2016, eq. 4): embeddings (B, D),
    labels (B,) -> scalar.

    Args:
        margin: alpha of the paper.
        normalize: L2-normalise the embeddings first (False in the paper's layer).
    """
    embeddings, labels = check_batch(embeddings, labels)
    pos, neg = pair_masks(labels)  # (B, B)
    i, j = torch.triu(pos, diagonal=1).nonzero(as_tuple=True)  # (|P|,) unordered positive pairs
    if len(i) == 0 or not neg.any():
        return embeddings.sum() * 0.0  # documented zero, still differentiable
    dist = pairwise_distances(maybe_normalize(embeddings, normalize))  # (B, B)
    # Every row has a negative here: a row without one would mean a single class.
    neg_lse = _masked_logsumexp(margin - dist, neg)  # (B,)
    J = torch.logaddexp(neg_lse[i], neg_lse[j]) + dist[i, j]  # (|P|,)
    return J.clamp_min(0).pow(2).sum() / (2 * len(i))


def generalized_lifted_loss(embeddings: torch.Tensor, labels: torch.Tensor, neg_margin: float = 1.0,
                            pos_margin: float = 0.0, normalize: bool = True) -> torch.Tensor:
    """Generalised lifted structured loss (Hermans et al. 2017): embeddings (B, D),
    labels (B,) -> scalar."""
    embeddings, labels = check_batch(embeddings, labels)
    pos, neg = pair_masks(labels)  # (B, B)
    anchors = pos.any(dim=1) & neg.any(dim=1)  # (B,)
    if not anchors.any():
        return embeddings.sum() * 0.0
    dist = pairwise_distances(maybe_normalize(embeddings, normalize))  # (B, B)
    pos_lse = _masked_logsumexp(dist - pos_margin, pos)[anchors]
    neg_lse = _masked_logsumexp(neg_margin - dist, neg)[anchors]
    return (pos_lse + neg_lse).clamp_min(0).mean()


class LiftedStructuredLoss(nn.Module):
    """Module form of :func:`lifted_structured_loss`; call as ``loss(embeddings, labels)``."""

    def __init__(self, margin: float = 1.0, normalize: bool = False):
        super().__init__()
        if margin <= 0:
            raise ValueError(f"margin (alpha) must be > 0, found {margin}")
        self.margin, self.normalize = margin, normalize

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return lifted_structured_loss(embeddings, labels, self.margin, self.normalize)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, normalize={self.normalize}"


class GeneralizedLiftedLoss(nn.Module):
    """Module form of :func:`generalized_lifted_loss`; call as ``loss(embeddings, labels)``."""

    def __init__(self, neg_margin: float = 1.0, pos_margin: float = 0.0, normalize: bool = True):
        super().__init__()
        self.neg_margin, self.pos_margin, self.normalize = neg_margin, pos_margin, normalize

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return generalized_lifted_loss(embeddings, labels, self.neg_margin, self.pos_margin,
                                       self.normalize)

    def extra_repr(self) -> str:
        return (f"neg_margin={self.neg_margin}, pos_margin={self.pos_margin}, "
                f"normalize={self.normalize}")
