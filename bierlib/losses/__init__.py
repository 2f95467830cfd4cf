"""Metric-learning losses. Every loss is called as ``loss(embeddings, labels)``.

embeddings: float tensor (B, D); labels: integer tensor (B,). The result is a scalar.
BIER's and divide and conquer's losses take extra keywords that their models and
batches supply (:class:`~bierlib.boosting.EnsembleEmbedder`'s diversity outputs, the
batch's cluster id). The proxy-anchor loss owns parameters, one proxy per training class.
"""
from .bier import BIERLoss, boosting_weights
from .binomial import BinomialDevianceLoss, binomial_deviance, binomial_deviance_loss
from .contrastive import ContrastiveLoss, contrastive_loss
from .divide import DivideAndConquerLoss
from .lifted import (GeneralizedLiftedLoss, LiftedStructuredLoss, generalized_lifted_loss,
                     lifted_structured_loss)
from .margin import MarginLoss, margin_loss
from .multi_similarity import MultiSimilarityLoss, multi_similarity_loss, multi_similarity_pairs
from .pairs import pair_masks, pairwise_distances
from .proxy_anchor import ProxyAnchorLoss, proxy_anchor_loss
from .triplet import TripletLoss, triplet_loss

__all__ = ["BIERLoss", "BinomialDevianceLoss", "ContrastiveLoss", "DivideAndConquerLoss",
           "GeneralizedLiftedLoss", "LiftedStructuredLoss", "MarginLoss", "MultiSimilarityLoss",
           "ProxyAnchorLoss", "TripletLoss", "binomial_deviance", "binomial_deviance_loss",
           "boosting_weights", "contrastive_loss", "generalized_lifted_loss",
           "lifted_structured_loss", "margin_loss", "multi_similarity_loss",
           "multi_similarity_pairs", "pair_masks", "pairwise_distances", "proxy_anchor_loss",
           "triplet_loss"]
