"""What every dataset of the book shares: where data lives, the missing-data error, and
an in-memory image dataset with a class-disjoint split."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..utils import check_labels

SPLITS = ("train", "test", "all")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk. The message names the command that fetches it."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$BIERLIB_DATA``, else ``~/.cache/bierlib``.

    The fetch scripts in ``data_scripts/`` use the same default.
    """
    if root is None:
        root = os.environ.get("BIERLIB_DATA") or Path.home() / ".cache" / "bierlib"
    return Path(root).expanduser()


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, found {split!r}")
    return split


class ImageTensorDataset(Dataset):
    """Images held in memory as a uint8 tensor (N, C, H, W) with integer targets (N,).

    ``dataset[i]`` returns ``(image, target)`` with the image as float32 in [0, 1]
    (after ``transform``, if given). ``class_names[t]`` names target ``t``.
    """

    def __init__(self, images: torch.Tensor, targets, class_names: list[str], transform=None):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), found dtype "
                             f"{images.dtype} and shape {tuple(images.shape)}")
        if len(images) == 0:
            raise ValueError("the dataset is empty: no images were found for this split")
        self.images = images
        self.targets = check_labels(targets, "targets", length=len(images))
        self.class_names = list(class_names)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def evaluation_view(self) -> ImageTensorDataset:
        """The dataset as a model sees it at test time: itself when it has no ``transform``;
        a ValueError otherwise (an in-memory transform may be augmentation or not)."""
        if self.transform is not None:
            raise ValueError(f"{type(self).__name__} has a transform ({self.transform!r}); give "
                             "a dataset without augmentation for evaluation-view features")
        return self

    def __getitem__(self, index: int):
        image = self.images[index].float().div_(255)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    @property
    def num_classes(self) -> int:
        return int(self.targets.unique().numel())

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:]
        return (f"{type(self).__name__}({len(self)} images of {c}x{h}x{w}, "
                f"{self.num_classes} classes)")
