"""Triplet margin loss over every valid triplet of a batch (Weinberger & Saul 2009; Schroff et
al. 2015).

For every anchor a, positive p (same class, p != a) and negative n (other class)::

    l_apn = max(0, d_ap - d_an + margin)

with Euclidean d on (by default L2-normalised) embeddings. ``reduction="nonzero"``
averages over the triplets with l_apn > 0 (pytorch-metric-learning's
``TripletMarginLoss`` default, which keeps the gradient from fading as most
triplets become easy); ``reduction="mean"`` averages over all valid triplets.
A batch without any valid triplet gives 0.

Only valid triplets are formed: one row per anchor-positive pair against all
candidate negatives, O(B^2 K) memory for P x K batches (not O(B^3)).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..utils import check_batch
from .pairs import masked_mean, maybe_normalize, nonzero_mean, pair_masks, pairwise_distances

Reduction = Literal["nonzero", "mean"]


def triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2,
                 reduction: Reduction = "nonzero", normalize: bool = True) -> torch.Tensor:
    """Triplet margin loss of a batch: embeddings (B, D), labels (B,) -> scalar."""
    embeddings, labels = check_batch(embeddings, labels)
    if reduction not in ("nonzero", "mean"):
        raise ValueError(f"reduction must be 'nonzero' or 'mean', found {reduction!r}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, found {margin}")
    pos, neg = pair_masks(labels)  # (B, B)
    dist = pairwise_distances(maybe_normalize(embeddings, normalize))  # (B, B)
    anchor, positive = pos.nonzero(as_tuple=True)  # (T,) anchor-positive pairs
    # One row per anchor-positive pair, one column per candidate negative.
    losses = (dist[anchor, positive, None] - dist[anchor] + margin).clamp_min(0)  # (T, B)
    reduce = nonzero_mean if reduction == "nonzero" else masked_mean
    return reduce(losses, neg[anchor])


class TripletLoss(nn.Module):
    """Module form of :func:`triplet_loss`; call as ``loss(embeddings, labels)``."""

    def __init__(self, margin: float = 0.2, reduction: Reduction = "nonzero",
                 normalize: bool = True):
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, found {margin}")
        self.margin, self.reduction, self.normalize = margin, reduction, normalize

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return triplet_loss(embeddings, labels, self.margin, self.reduction, self.normalize)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}, normalize={self.normalize}"
