"""Pairwise distances and label masks shared by every loss.

Every loss in :mod:`bierlib.losses` is called as ``loss(embeddings, labels)`` with
embeddings of shape (B, D) and integer labels of shape (B,); it builds the (B, B)
distance matrix once with :func:`pairwise_distances` and the (B, B) masks of
positive and negative pairs with :func:`pair_masks`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_distances(embeddings: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Euclidean distances between all rows: (B, D) -> (B, B), with an exact-zero diagonal.

    ``torch.cdist`` through one matrix product (``|x|^2 + |y|^2 - 2 x.y``, clamped
    at zero). Coincident points get distance 0 and gradient 0, never NaN.
    """
    dist = torch.cdist(embeddings, embeddings, compute_mode="use_mm_for_euclid_dist")  # (B, B)
    eye = torch.eye(len(embeddings), dtype=torch.bool, device=embeddings.device)
    dist = dist.masked_fill(eye, 0.0)
    return dist.pow(2) if squared else dist


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (B, B) masks of positive pairs (same label, i != j) and negative pairs."""
    same = labels[:, None] == labels[None, :]  # (B, B)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def maybe_normalize(embeddings: torch.Tensor, normalize: bool) -> torch.Tensor:
    """L2-normalise the rows when ``normalize`` is true (the unit-sphere convention)."""
    return F.normalize(embeddings, dim=1) if normalize else embeddings


def masked_log1p_sum_exp(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise ``log(1 + sum_{j in mask} exp(values_ij))``: (B, N) -> (B,), computed as a
    log-sum-exp with a zero column (no overflow); 0 with a zero gradient for an empty row."""
    masked = values.masked_fill(~mask, float("-inf"))
    return torch.logsumexp(torch.cat([masked, masked.new_zeros(len(masked), 1)], dim=1), dim=1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values[mask]``; zero (with a gradient path) when the mask is empty."""
    count = mask.sum()
    total = (values * mask).sum()
    return total / count.clamp_min(1)


def nonzero_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the masked entries that are > 0 (PML's ``AvgNonZeroReducer``); zero if none."""
    return masked_mean(values, mask & (values > 0))
