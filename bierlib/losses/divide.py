"""Divide and conquer's loss (Sanakoyeu et al., CVPR 2019): the margin loss on the slice of
the embedding that belongs to the batch's cluster. See :mod:`bierlib.divide` for the method."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..boosting import split_learners
from ..utils import check_batch, check_labels, check_positive_int
from .margin import NORMALIZERS, SAMPLERS, margin_loss

#: Cluster id of every item in the fine-tuning stage, where the whole embedding trains.
FINETUNE = -1


#: How the whole embedding is normalised when it trains as one. Either the raw vector
#: ("whole") or each slice first and then the vector (the authors' model and training step).
WHOLE_NORMALIZATIONS = ("whole", "slices-then-whole")


class DivideAndConquerLoss(nn.Module):
    """Margin loss on the L2-normalised slice of the batch's cluster (B, D / M), or on the whole
    L2-normalised embedding when the cluster id is :data:`FINETUNE` (or not given).

    ``normalizer`` and ``sampler`` are the margin loss's (:mod:`bierlib.losses.margin`);
    ``whole_normalization`` is one of :data:`WHOLE_NORMALIZATIONS`.
    """

    def __init__(self, num_learners: int, margin: float = 0.2, beta: float = 1.2,
                 normalizer: str = "active-hinges", sampler: str = "distance-weighted",
                 whole_normalization: str = "whole"):
        super().__init__()
        self.num_learners = check_positive_int(num_learners, "num_learners")
        if whole_normalization not in WHOLE_NORMALIZATIONS:
            raise ValueError(f"whole_normalization must be one of {WHOLE_NORMALIZATIONS}, "
                             f"found {whole_normalization!r}")
        if normalizer not in NORMALIZERS or sampler not in SAMPLERS:
            raise ValueError(f"normalizer must be one of {NORMALIZERS} and sampler one of "
                             f"{SAMPLERS}, found {normalizer!r}, {sampler!r}")
        self.margin, self.beta = margin, beta
        self.normalizer, self.sampler = normalizer, sampler
        self.whole_normalization = whole_normalization

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
            elif self.whole_normalization == "slices-then-whole":
                slices = split_learners(embeddings, self.slice_sizes(embeddings.shape[1]))
                embeddings = torch.cat([F.normalize(x, dim=1) for x in slices], dim=1)
        return margin_loss(F.normalize(embeddings, dim=1), labels, self.margin, self.beta,
                           normalize=False, normalizer=self.normalizer, sampler=self.sampler)

    def slice_sizes(self, dim: int) -> list[int]:
        if dim % self.num_learners:
            raise ValueError(f"the embedding size {dim} is not divisible by "
                             f"K = {self.num_learners}")
        return [dim // self.num_learners] * self.num_learners

    def extra_repr(self) -> str:
        return (f"num_learners={self.num_learners}, margin={self.margin}, beta={self.beta}, "
                f"normalizer={self.normalizer!r}, sampler={self.sampler!r}")
