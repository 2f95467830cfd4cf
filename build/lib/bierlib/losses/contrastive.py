"""Contrastive loss (Hadsell, Chopra & LeCun, CVPR 2006) in its two common forms.

Both forms pull every positive pair (same class) together and push every negative
pair apart until it is beyond a margin. With d_ij the Euclidean distance between
the (by default L2-normalised) embeddings of a batch:

* ``"hadsell"`` -- the original, *squared* form::

      L = 1/2 mean_{(i,j) positive} d_ij^2 + 1/2 mean_{(i,j) negative} max(0, m - d_ij)^2

  Each term is averaged over its own pairs, so that the many negatives of a
  batch do not drown the few positives (Hadsell et al. average over the pairs
  they sample, one at a time).

* ``"pml"`` -- the non-squared form of pytorch-metric-learning's ``ContrastiveLoss``::

      L = mean_{positive, > 0} max(0, d_ij - m_pos) + mean_{negative, > 0} max(0, m_neg - d_ij)

  each term averaged over its *non-zero* entries (PML's ``AvgNonZeroReducer``),
  with m_pos = ``pos_margin`` (default 0) and m_neg = ``margin`` (default 1).

A batch with no positive pair (or no negative pair) contributes zero for that
term; a batch with neither gives a loss of exactly 0 that still back-propagates.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..utils import check_batch
from .pairs import masked_mean, maybe_normalize, nonzero_mean, pair_masks, pairwise_distances

Form = Literal["hadsell", "pml"]


def contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0,
                     form: Form = "hadsell", pos_margin: float = 0.0,
                     normalize: bool = True) -> torch.Tensor:
    """Contrastive loss of a batch: embeddings (B, D), labels (B,) -> scalar.

    Args:
        margin: negative pairs closer than this are pushed apart.
        form: ``"hadsell"`` (squared, mean over pairs) or ``"pml"`` (non-squared,
            mean over non-zero terms); see the module docstring.
        pos_margin: ``"pml"`` only: positive pairs closer than this are left alone.
        normalize: L2-normalise the embeddings first (distances then lie in [0, 2]).
    """
    embeddings, labels = check_batch(embeddings, labels)
    if form not in ("hadsell", "pml"):
        raise ValueError(f"form must be 'hadsell' or 'pml', found {form!r}")
    if margin <= 0:
        raise ValueError(f"margin must be positive, found {margin}")
    if form == "hadsell" and pos_margin != 0:
        raise ValueError("pos_margin is only defined for form='pml'")
    pos, neg = pair_masks(labels)  # (B, B) each
    dist = pairwise_distances(maybe_normalize(embeddings, normalize))  # (B, B)
    if form == "hadsell":
        return 0.5 * (masked_mean(dist.pow(2), pos)
                      + masked_mean((margin - dist).clamp_min(0).pow(2), neg))
    return (nonzero_mean((dist - pos_margin).clamp_min(0), pos)
            + nonzero_mean((margin - dist).clamp_min(0), neg))


class ContrastiveLoss(nn.Module):
    """Module form of :func:`contrastive_loss`; call as ``loss(embeddings, labels)``."""

    def __init__(self, margin: float = 1.0, form: Form = "hadsell", pos_margin: float = 0.0,
                 normalize: bool = True):
        super().__init__()
        if form not in ("hadsell", "pml") or margin <= 0:
            raise ValueError(f"need form 'hadsell' or 'pml' and margin > 0, "
                             f"found {form!r}, {margin}")
        self.margin, self.form = margin, form
        self.pos_margin, self.normalize = pos_margin, normalize

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return contrastive_loss(embeddings, labels, self.margin, self.form, self.pos_margin,
                                self.normalize)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, form={self.form!r}, normalize={self.normalize}"
