"""Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015): the quick profile's dataset.

The offline copy holds the two "minimal" background splits: 8 alphabets, 242
characters (classes), 20 drawings each, 4,840 images. Fetch it once with::

    python data_scripts/fetch_omniglot.py

**Split.** Metric learning is evaluated on classes never seen in training, so the
split is by *alphabet* (whole writing systems are unseen at test time, a harder
and cleaner protocol than holding out characters of known alphabets). It is fixed
by name, not computed, so it never changes:

* train: Balinese, Greek, Korean, Sanskrit -- 130 characters, 2,600 images
* test: Early_Aramaic, Japanese_(katakana), Latin, Tagalog -- 112 characters, 2,240 images

For tuning hyperparameters without looking at the test alphabets, the training alphabets split
again: ``"tune"`` (Balinese, Greek, Korean; 88 characters) trains and ``"validation"``
(Sanskrit; 42 characters) evaluates.

Images are 105x105 black-on-white PNGs; they are resized to ``image_size`` and
inverted (strokes bright, background 0), and kept in memory as uint8.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .base import DatasetNotFoundError, ImageTensorDataset, data_root

TRAIN_ALPHABETS = ("Balinese", "Greek", "Korean", "Sanskrit")
TEST_ALPHABETS = ("Early_Aramaic", "Japanese_(katakana)", "Latin", "Tagalog")
VALIDATION_ALPHABETS = ("Sanskrit",)  # held out of the training alphabets for tuning
SPLIT_ALPHABETS = {"train": TRAIN_ALPHABETS, "test": TEST_ALPHABETS,
                   "all": TRAIN_ALPHABETS + TEST_ALPHABETS,
                   "tune": tuple(a for a in TRAIN_ALPHABETS if a not in VALIDATION_ALPHABETS),
                   "validation": VALIDATION_ALPHABETS}
FETCH_COMMAND = "python data_scripts/fetch_omniglot.py --root {root}"


def omniglot_folder(root=None) -> Path:
    """The extracted dataset folder, or a :class:`DatasetNotFoundError` saying how to fetch it."""
    root = data_root(root)
    folder = root / "omniglot"
    if not (folder / "COMPLETE.json").is_file():
        raise DatasetNotFoundError(
            f"Omniglot is not in {folder} (or its extraction did not finish). Fetch it with:\n"
            f"    {FETCH_COMMAND.format(root=root)}\n"
            "(from the repository root; add --mirror DIR to copy the zips from a local folder)")
    return folder


class Omniglot(ImageTensorDataset):
    """Omniglot characters as classes, split by alphabet (see the module docstring).

    Args:
        root: data folder (default: ``$BIERLIB_DATA`` or ``~/.cache/bierlib``).
        split: ``"train"``, ``"test"``, ``"all"``, or ``"tune"`` / ``"validation"`` (the
            training alphabets split for tuning).
        image_size: side of the square images after resizing (28-105).
        transform: applied to each float image (C, H, W) in ``__getitem__``.

    Attributes: ``images`` uint8 (N, 1, H, W), ``targets`` int64 (N,) numbered
    0..C-1 within the split, ``class_names`` ("Alphabet/characterNN"),
    ``alphabet_of_class`` (C,).
    """

    def __init__(self, root=None, split: str = "train", image_size: int = 28, transform=None):
        if split not in SPLIT_ALPHABETS:
            raise ValueError(f"split must be one of {list(SPLIT_ALPHABETS)}, found {split!r}")
        if not 8 <= int(image_size) <= 105:
            raise ValueError(f"image_size must be between 8 and 105 pixels, found {image_size}")
        folder = omniglot_folder(root)
        alphabets = SPLIT_ALPHABETS[split]
        missing = [a for a in alphabets if not (folder / a).is_dir()]
        if missing:
            raise DatasetNotFoundError(f"alphabets {missing} are missing from {folder}; delete "
                                       f"that folder and fetch it again with "
                                       f"{FETCH_COMMAND.format(root=folder.parent)}")
        characters = sorted(c for a in alphabets for c in (folder / a).iterdir() if c.is_dir())
        files, targets = [], []
        for target, character in enumerate(characters):
            pngs = sorted(character.glob("*.png"))
            files += pngs
            targets += [target] * len(pngs)
        images = np.stack([_load(f, int(image_size)) for f in files])[:, None]  # (N, 1, H, W)
        names = [f"{c.parent.name}/{c.name}" for c in characters]
        super().__init__(torch.from_numpy(images), targets, names, transform)
        self.alphabet_of_class = [c.parent.name for c in characters]
        self.split = split
        self.counts = json.loads((folder / "COMPLETE.json").read_text())


def _load(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("L")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BOX)
        return 255 - np.asarray(im, dtype=np.uint8)
