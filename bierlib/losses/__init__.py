"""Metric-learning losses. Every loss is called as ``loss(embeddings, labels)``.

embeddings: float tensor (B, D); labels: integer tensor (B,). The result is a scalar.
"""
from .binomial import BinomialDevianceLoss, binomial_deviance, binomial_deviance_loss
from .contrastive import ContrastiveLoss, contrastive_loss
from .lifted import (GeneralizedLiftedLoss, LiftedStructuredLoss, generalized_lifted_loss,
                     lifted_structured_loss)
from .pairs import pair_masks, pairwise_distances
from .triplet import TripletLoss, triplet_loss

__all__ = ["BinomialDevianceLoss", "binomial_deviance", "binomial_deviance_loss", "ContrastiveLoss", "GeneralizedLiftedLoss", "LiftedStructuredLoss", "TripletLoss",
           "contrastive_loss", "generalized_lifted_loss", "lifted_structured_loss", "pair_masks",
           "pairwise_distances", "triplet_loss"]
