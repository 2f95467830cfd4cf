"""BIER: an embedding split into M learners trained by online gradient boosting
(Opitz, Waltner, Possegger & Bischof, ICCV 2017; TPAMI 2020), with optional
adversarial (A-BIER) or activation diversity.

The last embedding layer (D outputs) is cut into learners of sizes d_1..d_M
(96, 160, 256 for D = 512 in the paper). Each learner m is trained with the
binomial deviance (:mod:`bierlib.losses.binomial`) on the cosine similarities
s_m of its own L2-normalised outputs, with pair weights that boosting computes
from the learners before it (online gradient boosting in the sense of
Beygelzimer et al. 2015; the official code's "simple" variant):

* learner 1 sees weight 1 on every pair;
* a running score starts at 0.5; after learner m it grows by
  ``eta * alpha * (s_m - beta) * m_ij`` (shrinkage eta = 0.06, m_ij = +1 or -C);
* learner m + 1 sees ``sigmoid(-score)`` -- the negative gradient of the
  logistic loss at the score -- doubled on negative pairs; the weights are
  constants (no gradient flows through them).

So a pair that the first learners already separate well weighs little for the
next ones, which specialise on the pairs the ensemble still gets wrong. The loss
is the mean over learners. At test time each learner is normalised, scaled by
d_m / D and concatenated (:func:`ensemble_embedding`).
The loss itself (boosting weights, boosted binomial deviance, diversity terms) is
:class:`bierlib.losses.bier.BIERLoss`; this module holds the model side.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .evaluation import correlation_matrix, cross_block_mask


def check_learner_sizes(sizes: Sequence[int], total: int | None = None) -> tuple[int, ...]:
    """Validate learner sizes: positive integers, summing to ``total`` when given."""
    sizes = tuple(sizes)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"learner sizes must be a non-empty list of positive integers, "
                         f"found {sizes}")
    if total is not None and sum(sizes) != total:
        raise ValueError(f"learner sizes {sizes} sum to {sum(sizes)}, but the embedding has "
                         f"{total} dimensions; they must add up exactly")
    return sizes


def split_learners(embeddings: torch.Tensor, sizes: Sequence[int]) -> list[torch.Tensor]:
    """Cut (B, D) into the learners' blocks [(B, d_1), ..., (B, d_M)]."""
    sizes = check_learner_sizes(sizes, embeddings.shape[1])
    return list(torch.split(embeddings, sizes, dim=1))


def ensemble_embedding(embeddings: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Test-time embedding (B, D): each learner L2-normalised and scaled by d_m / D,
    concatenated."""
    total = sum(check_learner_sizes(sizes))
    return torch.cat([F.normalize(block, dim=1) * (block.shape[1] / total)
                      for block in split_learners(embeddings, sizes)], dim=1)


class EnsembleEmbedder(nn.Module):
    """Wraps a model with ``features`` (images -> (B, F)) and ``embedding`` (Linear F -> D)
    into a BIER ensemble of learners of the given sizes.

    * training mode: returns the raw embeddings (B, D); with ``diversity_outputs=True``
      returns ``(embeddings, extras)`` where ``extras["detached_outputs"]`` are the learner
      outputs computed from *detached* features (no bias, as in the official code) and
      ``extras["embedding_weight"]`` is the embedding layer's weight; the training loop
      passes the extras to the loss as keyword arguments.
    * eval mode: returns :func:`ensemble_embedding` of the learners, the test-time embedding.
    """

    def __init__(self, net: nn.Module, sizes: Sequence[int], diversity_outputs: bool = False):
        super().__init__()
        if (not isinstance(getattr(net, "embedding", None), nn.Linear)
                or not hasattr(net, "features")):
            raise ValueError(f"{type(net).__name__} needs a `features` callable and an `embedding` "
                             "nn.Linear (SmallConvNet and BackboneEmbedder have both)")
        self.sizes = check_learner_sizes(sizes, net.embedding.out_features)
        self.net, self.diversity_outputs = net, diversity_outputs
        self.embedding = net.embedding  # the training loop gives it embedding_lr_multiplier

    def forward(self, images: torch.Tensor):
        features = self.net.features(images)  # (B, F)
        embeddings = self.embedding(features)  # (B, D)
        if not self.training:
            return ensemble_embedding(embeddings, self.sizes)
        if not self.diversity_outputs:
            return embeddings
        detached = F.linear(features.detach(), self.embedding.weight)  # (B, D), no bias
        return embeddings, {"detached_outputs": split_learners(detached, self.sizes),
                            "embedding_weight": self.embedding.weight}


def cross_learner_correlation(embeddings, sizes: Sequence[int]) -> float:
    """Mean absolute Pearson correlation between dimensions of *different* learners (N, D) ->
    float: the off-diagonal blocks of the correlation matrix. For a single embedding, pass the
    sizes of the ensemble it is compared with."""
    corr = torch.as_tensor(correlation_matrix(embeddings))
    sizes = check_learner_sizes(sizes, corr.shape[0])
    different = torch.as_tensor(cross_block_mask(sizes))
    if not different.any():
        raise ValueError("cross-learner correlation needs at least two learners")
    return float(corr.abs()[different].mean())
