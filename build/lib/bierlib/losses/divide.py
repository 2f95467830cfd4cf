"""Divide and conquer's loss (Sanakoyeu et al., CVPR 2019): the margin loss on the slice of
the embedding that belongs to the batch's cluster. See :mod:`bierlib.divide` for the method."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..boosting import split_learners
from ..utils import check_batch, check_labels, check_positive_int
from .margin import margin_loss

#: Cluster id of every item in the fine-tuning stage, where the whole embedding trains.
FINETUNE = -1


class DivideAndConquerLoss(nn.Module):
    """Margin loss on the L2-normalised slice of the batch's cluster (B, D / K), or on the whole
    L2-normalised embedding when the cluster id is :data:`FINETUNE` (or not given)."""

    def __init__(self, num_learners: int, margin: float = 0.2, beta: float = 1.2):
        super().__init__()
        self.num_learners = check_positive_int(num_learners, "num_learners")
        self.margin, self.beta = margin, beta

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                cluster: torch.Tensor | None = None) -> torch.Tensor:
        embeddings, labels = check_batch(embeddings, labels)
        if cluster is not None:
            cluster = check_labels(cluster, "cluster", length=len(labels))
            k = int(cluster[0])
            if (cluster != k).any() or not FINETUNE <= k < self.num_learners:
                raise ValueError(f"a batch must come from one cluster in [0, {self.num_learners}) "
                                 f"(or {FINETUNE} for fine-tuning), "
                                 f"found ids {cluster.unique().tolist()}")
            if k != FINETUNE:
                embeddings = split_learners(embeddings, self.slice_sizes(embeddings.shape[1]))[k]
        return margin_loss(F.normalize(embeddings, dim=1), labels, self.margin, self.beta,
                           normalize=False)

    def slice_sizes(self, dim: int) -> list[int]:
        if dim % self.num_learners:
            raise ValueError(f"the embedding size {dim} is not divisible by "
                             f"K = {self.num_learners}")
        return [dim // self.num_learners] * self.num_learners

    def extra_repr(self) -> str:
        return f"num_learners={self.num_learners}, margin={self.margin}, beta={self.beta}"
