"""BIER: an embedding split into M learners trained by online gradient boosting
(Opitz, Waltner, Possegger & Bischof, ICCV 2017; TPAMI 2018), with optional
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
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .adversarial import AdversarialDiversity, activation_diversity, unit_norm_penalty
from .evaluation import correlation_matrix
from .losses.binomial import binomial_deviance
from .utils import check_batch


def check_learner_sizes(sizes: Sequence[int], total: int | None = None) -> tuple[int, ...]:
    """Validate learner sizes: positive integers, summing to ``total`` when given."""
    sizes = tuple(sizes)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"learner sizes must be a non-empty list of positive integers, found {sizes}")
    if total is not None and sum(sizes) != total:
        raise ValueError(f"learner sizes {sizes} sum to {sum(sizes)}, but the embedding has "
                         f"{total} dimensions; they must add up exactly")
    return sizes


def split_learners(embeddings: torch.Tensor, sizes: Sequence[int]) -> list[torch.Tensor]:
    """Cut (B, D) into the learners' blocks [(B, d_1), ..., (B, d_M)]."""
    sizes = check_learner_sizes(sizes, embeddings.shape[1])
    return list(torch.split(embeddings, sizes, dim=1))


def ensemble_embedding(embeddings: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Test-time embedding (B, D): each learner L2-normalised and scaled by d_m / D, concatenated."""
    total = sum(check_learner_sizes(sizes))
    return torch.cat([F.normalize(block, dim=1) * (block.shape[1] / total)
                      for block in split_learners(embeddings, sizes)], dim=1)


def boosting_weights(similarities: Sequence[torch.Tensor], labels: torch.Tensor,
                     shrinkage: float = 0.06, alpha: float = 2.0, beta: float = 0.5,
                     C: float = 25.0, initial_score: float = 0.5) -> list[torch.Tensor]:
    """Pair weights (B, B) for each of the M learners, given their similarity matrices (B, B).

    The weights of learner m depend only on learners 1..m-1 and carry no gradient.
    """
    same = (labels[:, None] == labels[None, :]).to(similarities[0].dtype)
    m = same - C * (1.0 - same)
    class_weight = same + 2.0 * (1.0 - same)  # negative pairs count double
    score = torch.full_like(same, initial_score)
    weights = [torch.ones_like(same)]
    for s in similarities[:-1]:
        score = score + shrinkage * alpha * (s.detach() - beta) * m
        weights.append(torch.sigmoid(-score) * class_weight)
    return weights


class BIERLoss(nn.Module):
    """Boosted binomial deviance over M learners, plus an optional diversity term.

    Call as ``loss(embeddings, labels)`` with embeddings (B, D) = the concatenated
    learners. With ``diversity`` set (``"adversarial"`` for A-BIER or ``"activation"``),
    the model must be an :class:`EnsembleEmbedder` with ``diversity_outputs=True``: it
    passes ``detached_outputs`` (the learners computed from detached backbone
    features) and ``embedding_weight`` to the loss.

    Args:
        sizes: learner sizes, e.g. (96, 160, 256).
        shrinkage: eta of the boosting update (0.06).
        alpha, beta, C: binomial-deviance parameters (2, 0.5, 25).
        diversity: None, ``"adversarial"`` or ``"activation"``.
        lambda_div: weight of the diversity term (0 turns it off).
        lambda_w: weight of the unit-norm penalties inside the diversity term.
        hidden: width of the adversarial regressors.

    After each call ``last_weights`` holds the boosting weights [(B, B)] * M and
    ``last_terms`` the per-learner losses and the diversity term, for inspection.
    """

    def __init__(self, sizes: Sequence[int], shrinkage: float = 0.06, alpha: float = 2.0,
                 beta: float = 0.5, C: float = 25.0, diversity: str | None = None,
                 lambda_div: float = 0.0, lambda_w: float = 100.0, hidden: int = 512):
        super().__init__()
        self.sizes = check_learner_sizes(sizes)
        if diversity not in (None, "adversarial", "activation"):
            raise ValueError(f"diversity must be None, 'adversarial' or 'activation', found {diversity!r}")
        if lambda_div < 0 or shrinkage <= 0:
            raise ValueError(f"need lambda_div >= 0 and shrinkage > 0, found {lambda_div}, {shrinkage}")
        self.shrinkage, self.alpha, self.beta, self.C = shrinkage, alpha, beta, C
        self.diversity, self.lambda_div, self.lambda_w = diversity, lambda_div, lambda_w
        self.adversary = (AdversarialDiversity(self.sizes, hidden, lambda_w)
                          if diversity == "adversarial" else None)
        self.last_weights: list[torch.Tensor] = []
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                detached_outputs: Sequence[torch.Tensor] | None = None,
                embedding_weight: torch.Tensor | None = None) -> torch.Tensor:
        embeddings, labels = check_batch(embeddings, labels)
        learners = [F.normalize(x, dim=1) for x in split_learners(embeddings, self.sizes)]
        sims = [x @ x.T for x in learners]  # M x (B, B) cosine similarities
        weights = boosting_weights(sims, labels, self.shrinkage, self.alpha, self.beta, self.C)
        terms = [binomial_deviance(s, labels, self.alpha, self.beta, self.C, w)
                 for s, w in zip(sims, weights)]
        loss = torch.stack(terms).mean()
        self.last_weights = [w.detach() for w in weights]
        self.last_terms = {f"learner_{m}": t.detach() for m, t in enumerate(terms)}  # no sync
        if self.diversity is not None and self.lambda_div > 0:
            if detached_outputs is None or embedding_weight is None:
                raise ValueError("a diversity term needs detached_outputs and embedding_weight: "
                                 "wrap the model in EnsembleEmbedder(..., diversity_outputs=True)")
            div = self.diversity_term(detached_outputs, embedding_weight)
            self.last_terms["diversity"] = div.detach()
            loss = loss + self.lambda_div * div
        return loss

    def diversity_term(self, outputs: Sequence[torch.Tensor], embedding_weight: torch.Tensor) -> torch.Tensor:
        """The diversity term before scaling by ``lambda_div``, including the embedding layer's
        unit-norm penalty (per input unit for adversarial, per output unit for activation,
        as in the official code)."""
        if self.diversity == "adversarial":
            return self.adversary(outputs) + self.lambda_w * unit_norm_penalty(embedding_weight, dim=0)
        return activation_diversity(outputs) + self.lambda_w * unit_norm_penalty(embedding_weight, dim=1)

    def extra_repr(self) -> str:
        return (f"sizes={self.sizes}, shrinkage={self.shrinkage}, diversity={self.diversity!r}, "
                f"lambda_div={self.lambda_div}")


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
        if not isinstance(getattr(net, "embedding", None), nn.Linear) or not hasattr(net, "features"):
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
    owner = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    different = owner[:, None] != owner[None, :]
    if not different.any():
        raise ValueError("cross-learner correlation needs at least two learners")
    return float(corr.abs()[different].mean())
