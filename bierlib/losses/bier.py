"""BIER's loss: binomial deviance over M learners with online-gradient-boosting pair weights
(Opitz et al., ICCV 2017 / TPAMI 2020), plus A-BIER's optional diversity term.

See :mod:`bierlib.boosting` for the method and the model side
(:class:`~bierlib.boosting.EnsembleEmbedder`).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..adversarial import (UNIT_NORMS, AdversarialDiversity, activation_diversity,
                           learner_unit_norm_penalty)
from ..boosting import check_learner_sizes, split_learners
from ..utils import check_batch
from .binomial import binomial_deviance


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


#: The diversity terms (none, A-BIER's with both its terms or one alone, the activation loss).
DIVERSITIES = (None, "adversarial", "regressors", "unit-norm", "activation")


class BIERLoss(nn.Module):
    """Boosted binomial deviance over M learners, plus an optional diversity term.

    Call as ``loss(embeddings, labels)`` with embeddings (B, D) = the concatenated
    learners. With ``diversity`` set (``"adversarial"`` for A-BIER or ``"activation"``, or one
    of A-BIER's two terms alone: ``"regressors"`` or ``"unit-norm"``),
    the model must be an :class:`~bierlib.boosting.EnsembleEmbedder` with
    ``diversity_outputs=True``: it passes ``detached_outputs`` (the learners computed from
    detached backbone features) and ``embedding_weight`` to the loss.

    Args:
        sizes: learner sizes, e.g. (96, 160, 256).
        shrinkage: eta of the boosting update (0.06).
        alpha, beta, C: binomial-deviance parameters (2, 0.5, 25).
        diversity: None, ``"adversarial"`` (A-BIER as the authors' code builds it: the
            adversarial regressors plus a unit-norm penalty on the embedding layer's input
            units), ``"regressors"`` (the adversary alone), ``"unit-norm"`` (the embedding
            layer's penalty alone) or ``"activation"``.
        lambda_div: weight of the diversity term (0 turns it off).
        lambda_w: weight of the unit-norm penalties inside the diversity term.
        hidden: width of the adversarial regressors.
        unit_norm: ``"per-learner"`` (the embedding layer's penalty summed over the M learner
            matrices, as the authors' code) or ``"whole-layer"`` (one penalty over the whole
            D x F matrix); see :func:`~bierlib.adversarial.learner_unit_norm_penalty`.
        regressor_init: ``"xavier"`` or ``"pytorch"`` (see
            :class:`~bierlib.adversarial.AdversarialDiversity`).

    After each call ``last_weights`` holds the boosting weights [(B, B)] * M and
    ``last_terms`` the per-learner losses and the diversity term, for inspection.
    """

    def __init__(self, sizes: Sequence[int], shrinkage: float = 0.06, alpha: float = 2.0,
                 beta: float = 0.5, C: float = 25.0, diversity: str | None = None,
                 lambda_div: float = 0.0, lambda_w: float = 100.0, hidden: int = 512,
                 unit_norm: str = "per-learner", regressor_init: str = "xavier"):
        super().__init__()
        self.sizes = check_learner_sizes(sizes)
        if diversity not in DIVERSITIES:
            raise ValueError(f"diversity must be one of {DIVERSITIES}, found {diversity!r}")
        if lambda_div < 0 or shrinkage <= 0:
            raise ValueError(f"need lambda_div >= 0 and shrinkage > 0, "
                             f"found {lambda_div}, {shrinkage}")
        self.shrinkage, self.alpha, self.beta, self.C = shrinkage, alpha, beta, C
        self.diversity, self.lambda_div, self.lambda_w = diversity, lambda_div, lambda_w
        if unit_norm not in UNIT_NORMS:
            raise ValueError(f"unit_norm must be one of {UNIT_NORMS}, found {unit_norm!r}")
        self.unit_norm = unit_norm
        self.adversary = (AdversarialDiversity(self.sizes, hidden, lambda_w, regressor_init)
                          if diversity in ("adversarial", "regressors") else None)
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

    def diversity_term(self, outputs: Sequence[torch.Tensor],
                       embedding_weight: torch.Tensor) -> torch.Tensor:
        """The diversity term before scaling by ``lambda_div``, including the embedding layer's
        unit-norm penalty (per input unit of each learner for adversarial, per output unit for
        activation, summed over the learners as in the authors' code); ``"regressors"`` and
        ``"unit-norm"`` keep one of the two. ``embedding_weight`` is (D, F)."""
        def penalty(dim: int) -> torch.Tensor:
            return self.lambda_w * learner_unit_norm_penalty(embedding_weight, self.sizes, dim,
                                                             self.unit_norm)

        if self.diversity == "regressors":
            return self.adversary(outputs)
        if self.diversity == "unit-norm":
            return penalty(dim=0)
        if self.diversity == "adversarial":
            return self.adversary(outputs) + penalty(dim=0)
        return activation_diversity(outputs) + penalty(dim=1)

    def extra_repr(self) -> str:
        return (f"sizes={self.sizes}, shrinkage={self.shrinkage}, diversity={self.diversity!r}, "
                f"lambda_div={self.lambda_div}, unit_norm={self.unit_norm!r}")
