"""Margin loss with distance-weighted negative sampling (Wu, Manmatha, Smola & Krähenbühl,
ICCV 2017).

On L2-normalised embeddings with Euclidean distance d, for a triplet (a, p, n)::

    l = max(0, d_ap - beta + margin) + max(0, beta - d_an + margin)

with a boundary beta (1.2) and a margin (0.2): positives must come closer than
beta - margin, negatives stay beyond beta + margin. The loss is the sum over the
triplets divided by a count of terms, ``normalizer``:

* ``"active-hinges"`` (default): the number of non-zero terms, positive and negative terms
  counted separately (pytorch-metric-learning's ``MarginLoss``, and what divide and conquer's
  official ``sum((pos > 0) + (neg > 0))`` counted on the PyTorch of its time);
* ``"triplets-with-a-hinge"``: the number of triplets with at least one non-zero term -- the
  same official line on PyTorch >= 1.2, where ``+`` of two boolean tensors is a logical OR.

Triplets (``sampler``):

* ``"distance-weighted"`` (default, the paper's): every ordered positive pair (a, p) of the
  batch gets one negative n, drawn for anchor a with probability proportional to 1 / q(d_an),
  where q(d) ~ d^(D-2) (1 - d^2/4)^((D-3)/2) is the density of distances between points
  uniform on the unit sphere in D dimensions. Distances are clamped below at ``cutoff`` = 0.5
  (so near-duplicates do not dominate) and negatives at distance ``nonzero_loss_cutoff`` = 1.4
  or more, which cannot give a non-zero loss, are never drawn. The weights are formed in log
  space and shifted by each row's maximum before ``exp``, so they never underflow to an
  all-zero row (the bug pytorch-metric-learning's miner had to fix for D around 128 and more).
  An anchor whose negatives all lie beyond ``nonzero_loss_cutoff`` draws uniformly among its
  negatives: our choice; Wu et al.'s MXNet code draws uniformly among all B items of the batch
  then, positives and the anchor itself included.
* ``"closest"`` (divide and conquer's official code): each anchor's positives, in index order,
  paired with its closest negatives at distance ``cutoff`` or more, as many as the batch's
  positives per anchor (:func:`closest_negative_triplets`).

beta is a fixed number here: the official code builds it as a parameter but never
hands it to the optimiser, so it stays 1.2.
"""
from __future__ import annotations

import torch
from torch import nn

from ..utils import check_batch
from .pairs import maybe_normalize, pair_masks, pairwise_distances


def distance_weight_probabilities(embeddings: torch.Tensor, labels: torch.Tensor,
                                  cutoff: float = 0.5,
                                  nonzero_loss_cutoff: float = 1.4) -> torch.Tensor:
    """(B, B) row-stochastic matrix: the probability that anchor i draws negative j.

    ``embeddings`` (B, D) must be L2-normalised (the weights assume the unit sphere).
    Rows of anchors without any negative are all zero.
    """
    embeddings, labels = check_batch(embeddings, labels)
    dim = embeddings.shape[1]
    if dim < 3:
        raise ValueError(f"distance-weighted sampling needs D >= 3 dimensions, found D = {dim}")
    if not 0 < cutoff < nonzero_loss_cutoff:
        raise ValueError(f"need 0 < cutoff < nonzero_loss_cutoff, "
                         f"found {cutoff}, {nonzero_loss_cutoff}")
    dist = pairwise_distances(embeddings.detach()).clamp_min(cutoff)  # (B, B)
    log_q = ((dim - 2) * dist.log()
             + (dim - 3) / 2 * (1 - dist.pow(2) / 4).clamp_min(1e-8).log())  # log density, (B, B)
    _, neg = pair_masks(labels)
    near = neg & (dist < nonzero_loss_cutoff)
    has_near = near.any(dim=1, keepdim=True)
    # anchors whose negatives are all far draw uniformly among them (log-weight 0)
    log_w = torch.where(has_near, -log_q, torch.zeros_like(log_q))
    allowed = torch.where(has_near, near, neg)
    log_w = log_w.masked_fill(~allowed, float("-inf"))
    has_negative = allowed.any(dim=1, keepdim=True)
    log_w = log_w.masked_fill(~has_negative, 0.0)  # keeps softmax finite; zeroed below
    return torch.softmax(log_w, dim=1) * has_negative  # max-shifted: no underflow to all-zero rows


def distance_weighted_triplets(embeddings: torch.Tensor, labels: torch.Tensor, cutoff: float = 0.5,
                               nonzero_loss_cutoff: float = 1.4,
                               generator: torch.Generator | None = None
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index tensors (anchor, positive, negative), each (T,): every ordered positive pair of the
    batch with one negative drawn by :func:`distance_weight_probabilities`. ``embeddings`` must
    be L2-normalised. Anchors without negatives give no triplet."""
    probs = distance_weight_probabilities(embeddings, labels, cutoff, nonzero_loss_cutoff)
    pos, _ = pair_masks(labels)
    pos &= probs.sum(dim=1, keepdim=True) > 0
    anchor, positive = pos.nonzero(as_tuple=True)  # (T,)
    if len(anchor) == 0:
        return anchor, positive, positive.clone()
    negative = torch.multinomial(probs[anchor], 1, replacement=True, generator=generator)[:, 0]
    return anchor, positive, negative


def closest_negative_triplets(embeddings: torch.Tensor, labels: torch.Tensor,
                              cutoff: float = 0.5
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index tensors (anchor, positive, negative), each (T,), of divide and conquer's official
    sampler: n = (number of positive pairs) // B negatives per anchor, its closest ones at
    distance ``cutoff`` or more; anchor a's positives in index order are paired with its
    chosen negatives in index order (as many triplets as the shorter of the two lists).

    Where every anchor has n negatives beyond ``cutoff`` this is exactly the official sampler
    (tests/test_official.py). Where an anchor has fewer, the official top-k fills its n with
    the items its mask pushed away (near negatives, positives, the anchor itself); here that
    anchor gets fewer triplets.
    """
    embeddings, labels = check_batch(embeddings, labels)
    if cutoff < 0:
        raise ValueError(f"cutoff must be >= 0, found {cutoff}")
    dist = pairwise_distances(embeddings.detach())  # (B, B)
    pos, neg = pair_masks(labels)
    neg &= dist >= cutoff
    k = max(1, min(int(pos.sum()) // len(labels), len(labels)))
    closest = dist.masked_fill(~neg, float("inf")).topk(k, dim=1, largest=False)  # (B, k)
    anchors, positives, negatives = [], [], []
    for a in range(len(labels)):
        p = pos[a].nonzero()[:, 0]  # ascending index
        n = closest.indices[a][closest.values[a].isfinite()].sort().values
        t = min(len(p), len(n))
        anchors.append(torch.full((t,), a, dtype=torch.long, device=labels.device))
        positives.append(p[:t])
        negatives.append(n[:t])
    return torch.cat(anchors), torch.cat(positives), torch.cat(negatives)


#: The margin loss's normalisers and samplers (see the module's docstring).
NORMALIZERS = ("active-hinges", "triplets-with-a-hinge")
SAMPLERS = ("distance-weighted", "closest")


def margin_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2,
                beta: float = 1.2,
                triplets: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                normalize: bool = True, cutoff: float = 0.5, nonzero_loss_cutoff: float = 1.4,
                generator: torch.Generator | None = None, normalizer: str = "active-hinges",
                sampler: str = "distance-weighted") -> torch.Tensor:
    """Margin loss of a batch: embeddings (B, D), labels (B,) -> scalar.

    ``triplets`` (anchor, positive, negative) index tensors are drawn by ``sampler``
    (:func:`distance_weighted_triplets` or :func:`closest_negative_triplets`) when not given;
    the sum of the terms is divided by the count that ``normalizer`` names. A batch without
    triplets, or whose terms are all zero, gives 0 (with a gradient path).
    """
    embeddings, labels = check_batch(embeddings, labels)
    if margin < 0 or beta <= 0:
        raise ValueError(f"need margin >= 0 and beta > 0, found margin={margin}, beta={beta}")
    if normalizer not in NORMALIZERS or sampler not in SAMPLERS:
        raise ValueError(f"normalizer must be one of {NORMALIZERS} and sampler one of "
                         f"{SAMPLERS}, found {normalizer!r}, {sampler!r}")
    x = maybe_normalize(embeddings, normalize)
    if triplets is None and sampler == "closest":
        triplets = closest_negative_triplets(x, labels, cutoff)
    elif triplets is None:
        triplets = distance_weighted_triplets(x, labels, cutoff, nonzero_loss_cutoff, generator)
    anchor, positive, negative = triplets
    if not len(anchor) == len(positive) == len(negative):
        raise ValueError(f"triplets must be three index tensors of one length, found lengths "
                         f"{len(anchor)}, {len(positive)}, {len(negative)}")
    dist = pairwise_distances(x)  # (B, B)
    pos_terms = (dist[anchor, positive] - beta + margin).clamp_min(0)  # (T,)
    neg_terms = (beta - dist[anchor, negative] + margin).clamp_min(0)  # (T,)
    if normalizer == "active-hinges":
        count = (pos_terms > 0).sum() + (neg_terms > 0).sum()
    else:
        count = ((pos_terms > 0) | (neg_terms > 0)).sum()
    return (pos_terms.sum() + neg_terms.sum() + 0 * x.sum()) / count.clamp_min(1)


class MarginLoss(nn.Module):
    """Module form of :func:`margin_loss`; call as ``loss(embeddings, labels)``."""

    def __init__(self, margin: float = 0.2, beta: float = 1.2, cutoff: float = 0.5,
                 nonzero_loss_cutoff: float = 1.4, normalizer: str = "active-hinges",
                 sampler: str = "distance-weighted"):
        super().__init__()
        self.margin, self.beta = margin, beta
        self.cutoff, self.nonzero_loss_cutoff = cutoff, nonzero_loss_cutoff
        self.normalizer, self.sampler = normalizer, sampler

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return margin_loss(embeddings, labels, self.margin, self.beta, cutoff=self.cutoff,
                           nonzero_loss_cutoff=self.nonzero_loss_cutoff,
                           normalizer=self.normalizer, sampler=self.sampler)

    def extra_repr(self) -> str:
        return (f"margin={self.margin}, beta={self.beta}, cutoff={self.cutoff}, "
                f"nonzero_loss_cutoff={self.nonzero_loss_cutoff}, normalizer={self.normalizer!r}, "
                f"sampler={self.sampler!r}")
