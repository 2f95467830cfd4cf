"""Class-balanced batches: P classes x K images per class.

Pair- and triplet-based losses need several images of the same class in every
batch; drawing images uniformly at random gives almost no positive pairs when
there are many classes. :class:`PKSampler` draws P distinct classes per batch
and K images of each (without replacement within a batch when the class has at
least K images, with replacement otherwise). With K = 2 a batch is the one of Song
et al. (2016) for the lifted structured loss: P positive pairs of distinct classes,
and every same-label pair of the batch is used by the loss.

The order is a pure function of ``(seed, epoch)``: call :meth:`PKSampler.set_epoch`
before each epoch (the training loop does) and a resumed run sees exactly the
batches an uninterrupted run would have seen.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from .utils import check_labels, check_positive_int


class PKSampler(Sampler[list[int]]):
    """Yields batches of indices (a ``batch_sampler`` for ``DataLoader``), P classes x K images
    each.

    Args:
        labels: (N,) integer class ids of the dataset, one per item.
        classes_per_batch: P, the number of distinct classes in a batch.
        images_per_class: K, the number of images of each class in a batch.
        num_batches: batches per epoch; default N // (P * K), so one epoch shows
            about as many images as the dataset holds.
        seed: fixes the whole sequence of batches (together with the epoch).
    """

    def __init__(self, labels, classes_per_batch: int, images_per_class: int,
                 num_batches: int | None = None, seed: int = 0):
        labels = check_labels(labels).numpy()
        self.p = check_positive_int(classes_per_batch, "classes_per_batch")
        self.k = check_positive_int(images_per_class, "images_per_class")
        if len(labels) == 0:
            raise ValueError("labels is empty: the dataset has no items to sample from")
        classes, inverse = np.unique(labels, return_inverse=True)
        if len(classes) < self.p:
            raise ValueError(f"classes_per_batch={self.p} but the dataset has only "
                             f"{len(classes)} classes; lower classes_per_batch")
        self.index_of_class = [np.flatnonzero(inverse == c) for c in range(len(classes))]
        default = max(1, len(labels) // (self.p * self.k))
        self.num_batches = (default if num_batches is None
                            else check_positive_int(num_batches, "num_batches"))
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.num_batches):
            batch = []
            for c in rng.choice(len(self.index_of_class), size=self.p, replace=False):
                members = self.index_of_class[c]
                batch.extend(rng.choice(members, size=self.k,
                                        replace=len(members) < self.k).tolist())
            yield batch


def batch_labels_summary(labels: torch.Tensor) -> dict[str, int]:
    """Counts of classes, positive pairs and negative pairs in one batch of labels (B,)."""
    labels = check_labels(labels)
    same = labels[:, None] == labels[None, :]
    b = len(labels)
    positives = int(same.sum()) - b
    return {"classes": int(labels.unique().numel()), "positive_pairs": positives // 2,
            "negative_pairs": (b * (b - 1) - positives) // 2}
