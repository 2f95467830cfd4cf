"""Metric-learning losses. Every loss is called as ``loss(embeddings, labels)``.

embeddings: float tensor (B, D); labels: integer tensor (B,). The result is a scalar.
"""
from .contrastive import ContrastiveLoss, contrastive_loss
from .pairs import pair_masks, pairwise_distances
from .triplet import TripletLoss, triplet_loss

__all__ = ["ContrastiveLoss", "TripletLoss", "contrastive_loss", "pair_masks",
           "pairwise_distances", "triplet_loss"]
