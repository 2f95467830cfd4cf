"""The paper profile's datasets: images on disk, read through the ``index.csv`` that the fetch
scripts in ``data_scripts/`` write (path, original class id, official subset).

Each class implements the standard metric-learning split (classes disjoint between
train and test):

=====================  ====================================  ===========================
dataset                train                                 test
=====================  ====================================  ===========================
:class:`CUB200`        classes 1-100, 5,864 images           classes 101-200, 5,924 images
:class:`Cars196`       classes 1-98, 8,054 images            classes 99-196, 8,131 images
:class:`SOP`           ``Ebay_train``: 11,318 / 59,551       ``Ebay_test``: 11,316 / 60,502
:class:`InShop`        3,997 items, 25,882 images            ``query`` 14,218 vs ``gallery`` 12,612
=====================  ====================================  ===========================

Images are decoded with Pillow in ``draft`` mode (the JPEG decoder scales down by
1/2, 1/4 or 1/8 while decoding when the image is much larger than needed), then
passed through ``transform``; :func:`paper_transforms` gives the papers' pipeline.
"""
from __future__ import annotations

import copy
import csv

import torch
from PIL import Image
from torch.utils.data import Dataset

from .base import DatasetNotFoundError, data_root

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


#: Training augmentations of :func:`paper_transforms`.
AUGMENTATIONS = ("resize-random-crop", "random-resized-crop")


def paper_transforms(train: bool, size: int = 224, resize: int = 256,
                     augmentation: str = "resize-random-crop"):
    """ImageNet-normalised tensors. Testing: short side resized to ``resize``, centre ``size``
    crop. Training, with a horizontal flip: ``"resize-random-crop"`` resizes the short side to
    ``resize`` and takes a random ``size`` crop; ``"random-resized-crop"`` takes torchvision's
    ``RandomResizedCrop(size)`` of the original image (divide and conquer's official code)."""
    from torchvision import transforms as T  # here: a 2-3 s import the quick profile skips

    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, found {augmentation!r}")
    if not train:
        steps = [T.Resize(resize), T.CenterCrop(size)]
    elif augmentation == "resize-random-crop":
        steps = [T.Resize(resize), T.RandomCrop(size), T.RandomHorizontalFlip()]
    else:
        steps = [T.RandomResizedCrop(size), T.RandomHorizontalFlip()]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class IndexedImageDataset(Dataset):
    """One split of a fetched dataset. Subclasses set ``folder``, ``script``, ``splits`` and
    ``split_of(class_id, subset)``. ``targets`` are the original class ids."""

    folder: str
    script: str
    splits: tuple[str, ...] = ("train", "test")

    def __init__(self, root=None, split: str = "train", transform=None, image_size: int = 224,
                 augmentation: str = "resize-random-crop"):
        if split not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, found {split!r}")
        base = data_root(root) / self.folder
        index = base / "index.csv"
        if not (base / "COMPLETE.json").is_file() or not index.is_file():
            raise DatasetNotFoundError(
                f"{type(self).__name__} is not in {base}. Fetch it with: python data_scripts/"
                f"{self.script} --root {data_root(root)} "
                "(see the script's --help for --archive/--mirror)")
        with open(index, newline="") as f:
            rows = [r for r in csv.DictReader(f)
                    if self.split_of(int(r["class"]), r["subset"]) == split]
        if not rows:
            raise DatasetNotFoundError(f"{index} lists no image of split {split!r}; "
                                       "fetch the dataset again")
        self.base, self.split = base, split
        self.paths = [r["path"] for r in rows]
        self.targets = torch.tensor([int(r["class"]) for r in rows])
        self.image_size = image_size
        self.transform = (transform if transform is not None
                          else paper_transforms(split == "train", image_size,
                                                augmentation=augmentation))
        self.draft_size = round(image_size * 256 / 224)  # what Resize(256) needs for a 224 crop

    @staticmethod
    def split_of(cls: int, subset: str) -> str:
        raise NotImplementedError

    def evaluation_view(self) -> IndexedImageDataset:
        """The same images and targets through the test-time transform (no augmentation)."""
        view = copy.copy(self)
        view.transform = paper_transforms(False, self.image_size)
        return view

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> Image.Image:
        path = self.base / self.paths[index]
        try:
            with Image.open(path) as image:
                image.draft("RGB", (self.draft_size, self.draft_size))  # fast JPEG downscale
                return image.convert("RGB")
        except OSError as err:
            raise OSError(f"cannot read {path} ({err}); the extraction is damaged: delete "
                          f"{self.base} and run data_scripts/{self.script} again") from err

    def __getitem__(self, index: int):
        return self.transform(self.load(index)), int(self.targets[index])

    @property
    def num_classes(self) -> int:
        return int(self.targets.unique().numel())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.split}: {len(self)} images, "
                f"{self.num_classes} classes)")


class CUB200(IndexedImageDataset):
    """CUB-200-2011 (Wah et al. 2011): train classes 1-100, test 101-200."""
    folder, script = "cub200", "fetch_cub200.py"

    @staticmethod
    def split_of(cls: int, subset: str) -> str:
        return "train" if cls <= 100 else "test"


class Cars196(IndexedImageDataset):
    """Cars196 (Krause et al. 2013), all 16,185 images: train classes 1-98, test 99-196."""
    folder, script = "cars196", "fetch_cars196.py"

    @staticmethod
    def split_of(cls: int, subset: str) -> str:
        return "train" if cls <= 98 else "test"


class SOP(IndexedImageDataset):
    """Stanford Online Products (Song et al. 2016): the official ``Ebay_train``/``Ebay_test``."""
    folder, script = "sop", "fetch_sop.py"

    @staticmethod
    def split_of(cls: int, subset: str) -> str:
        return subset


class InShop(IndexedImageDataset):
    """In-Shop Clothes Retrieval (Liu et al. 2016): ``train``, and ``query`` against ``gallery``."""
    folder, script = "inshop", "fetch_inshop.py"
    splits = ("train", "query", "gallery")

    @staticmethod
    def split_of(cls: int, subset: str) -> str:
        return subset


DATASETS = {"cub200": CUB200, "cars196": Cars196, "sop": SOP, "inshop": InShop}
