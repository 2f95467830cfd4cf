"""Omniglot's official 20-way one-shot classification task: an external benchmark.

Lake, Salakhutdinov & Tenenbaum (Science 2015) evaluate one-shot learning on 20 *runs* (the
official repository's ``python/one-shot-classification/all_runs.zip``). Each run holds 20
training drawings, one of each of 20 characters of one alphabet, and 20 test drawings of the
same characters by another drawer; ``class_labels.txt`` names, for each test drawing, the
training drawing of its character. A method sees one drawing per class and must say which
class each test drawing belongs to: chance is 19/20 = 95% error. Fetch the runs once with::

    python data_scripts/fetch_omniglot.py

**Disjoint from the quick profile.** The runs are drawn from Omniglot's *evaluation*
alphabets (10 of its 20, by the paper's account). The quick profile trains and tests on the
two "minimal" background sets (``images_background_small1/2.zip``: Balinese, Early_Aramaic,
Greek, Korean, Latin; Greek, Japanese_(katakana), Latin, Sanskrit, Tagalog; its split is in
:mod:`bierlib.data.omniglot`), which are subsets of the 30 *background* alphabets, and the
background and evaluation sets share no alphabet. So every run is new to a quick-profile
model: new alphabets, new characters and new drawers (no drawing of the runs is
pixel-identical to one of the quick profile's 4,840). The backbone's *pretraining* glyphs are
another matter: :func:`script_overlap` lists those printed in the script of an evaluation
alphabet (Cyrillic letters, Old Church Slavonic's script, are among them).

**Preprocessing** is the quick profile's Omniglot dataset's own (its loader is reused): each
105x105 drawing is converted to 8-bit grey, box-resized to ``image_size`` (28 for the quick
profile) and inverted (strokes bright, background 0), then divided by 255, so a trained model
sees exactly what it was trained on.

**Scoring.** The 40 drawings of each run are embedded; the embeddings are L2-normalised and
each test drawing takes the class of the training drawing with the highest cosine similarity
(the nearest neighbour of the book's retrieval evaluation, which also normalises). The error
of a run is the fraction of its 20 test drawings assigned the wrong class. The official demo
scores the same way with another distance, the modified Hausdorff distance between the inked
pixels (38.8% error). Ties go to the first training drawing (``argmax``): a constant embedding
therefore assigns every test drawing to class 1 and gets exactly 19 of 20 wrong in every run,
the chance level. :func:`raw_pixels` is the "no learning" baseline: the preprocessed image,
flattened, as the embedding.
"""
from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.base import DatasetNotFoundError, ImageTensorDataset, data_root
from .data.omniglot import _load  # the quick profile's own preprocessing
from .utils import check_embeddings, check_labels

FOLDER = "omniglot_oneshot"  # under the data folder, as data_scripts/fetch_omniglot.py writes it
NUM_RUNS = 20
WAYS = 20  # classes per run: one training drawing each, and one test drawing each
FETCH_COMMAND = "python data_scripts/fetch_omniglot.py --root {root}"
#: Omniglot's 20 evaluation alphabets, the runs' source, with the Unicode name prefix of each
#: real script (None: an invented script, which Unicode does not encode).
EVALUATION_SCRIPTS = {
    "Angelic": None, "Atemayar_Qelisayer": None, "Atlantean": None, "Aurek-Besh": None,
    "Avesta": "AVESTAN", "Ge_ez": "ETHIOPIC", "Glagolitic": "GLAGOLITIC", "Gurmukhi": "GURMUKHI",
    "Kannada": "KANNADA", "Keble": None, "Malayalam": "MALAYALAM", "Manipuri": "MEETEI MAYEK",
    "Mongolian": "MONGOLIAN", "Old_Church_Slavonic_(Cyrillic)": "CYRILLIC", "Oriya": "ORIYA",
    "Sylheti": "SYLOTI NAGRI", "Syriac_(Serto)": "SYRIAC", "Tengwar": None, "Tibetan": "TIBETAN",
    "ULOG": None}


@dataclasses.dataclass(frozen=True)
class OneShotRun:
    """One run of the task: ``train_images`` (C, 1, H, W) uint8, row c the only drawing of
    class c (``training/class{c+1:02d}.png``); ``test_images`` (Q, 1, H, W) uint8
    (``test/item{q+1:02d}.png``); ``test_labels`` (Q,) int64, the class of each test drawing."""

    name: str
    train_images: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


@dataclasses.dataclass(frozen=True)
class OneShotResult:
    """Error rates (fractions in [0, 1]) of a run set: ``errors`` one per run, their ``mean``
    and ``std`` (sample standard deviation over the runs, ddof = 1) and ``num_runs``."""

    errors: tuple[float, ...]
    mean: float
    std: float
    num_runs: int

    def __str__(self) -> str:
        return f"{100 * self.mean:.1f}% ± {100 * self.std:.1f}% error over {self.num_runs} runs"


def script_overlap(code_points: Sequence[int],
                   scripts: Mapping[str, str | None] = EVALUATION_SCRIPTS) -> dict[str, str]:
    """The characters of ``code_points`` (e.g. the pretraining glyphs' classes) written in the
    script of each alphabet of ``scripts`` (alphabet -> Unicode name prefix), as a string per
    alphabet that has any. Unassigned code points are an error."""
    names = {}
    for cp in code_points:
        try:
            names[cp] = unicodedata.name(chr(cp))
        except (ValueError, TypeError) as err:
            raise ValueError(f"code point {cp!r} has no Unicode name: expected assigned code "
                             "points (ints)") from err
    overlap = {}
    for alphabet, prefix in scripts.items():
        chars = "".join(chr(cp) for cp, name in names.items()
                        if prefix is not None and name.startswith(prefix + " "))
        if chars:
            overlap[alphabet] = chars
    return overlap


def runs_folder(root=None) -> Path:
    """The extracted runs, or a :class:`~bierlib.data.base.DatasetNotFoundError` naming the
    command that fetches them."""
    root = data_root(root)
    folder = root / FOLDER
    if not (folder / "COMPLETE.json").is_file():
        raise DatasetNotFoundError(
            f"the Omniglot one-shot runs are not in {folder} (or their extraction did not "
            f"finish). Fetch them with:\n    {FETCH_COMMAND.format(root=root)}\n(from the "
            "repository root; add --mirror DIR to copy all_runs.zip from a local folder)")
    return folder


def load_runs(root=None, image_size: int = 28) -> list[OneShotRun]:
    """The 20 official runs, preprocessed as the quick profile's Omniglot dataset (see the
    module docstring). Raises :class:`~bierlib.data.base.DatasetNotFoundError` naming the fetch
    command when the runs are missing or incomplete."""
    if isinstance(image_size, bool) or not 8 <= int(image_size) <= 105:
        raise ValueError(f"image_size must be between 8 and 105 pixels, found {image_size}")
    folder = runs_folder(root)
    return [_load_run(folder, f"run{r:02d}", int(image_size)) for r in range(1, NUM_RUNS + 1)]


def _load_run(folder: Path, name: str, size: int) -> OneShotRun:
    labels_file = folder / name / "class_labels.txt"
    pairs = ([line.split() for line in labels_file.read_text().splitlines() if line.strip()]
             if labels_file.is_file() else [])
    tests = sorted(p[0] for p in pairs if len(p) == 2)
    trains = sorted({p[1] for p in pairs if len(p) == 2})
    files = [folder / f for f in tests + trains]
    if len(pairs) != WAYS or len(tests) != WAYS or len(trains) != WAYS or not all(
            f.is_file() for f in files):
        raise DatasetNotFoundError(
            f"{folder / name} is incomplete (expected {labels_file.name} pairing {WAYS} test "
            f"drawings with {WAYS} training drawings, all present); delete {folder} and fetch "
            f"the runs again with {FETCH_COMMAND.format(root=folder.parent)}")
    answer = dict(p for p in pairs)  # test file -> training file of its class
    images = torch.from_numpy(np.stack([_load(f, size) for f in files])[:, None])  # (2W, 1, H, W)
    labels = torch.tensor([trains.index(answer[t]) for t in tests])
    return OneShotRun(name, images[WAYS:], images[:WAYS], labels)


def raw_pixels(images: torch.Tensor) -> torch.Tensor:
    """The "no learning" embedding: each (C, H, W) image flattened, (N, C, H, W) -> (N, C*H*W)."""
    return images.flatten(1)


def nearest_neighbor_errors(train_embeddings: torch.Tensor, test_embeddings: torch.Tensor,
                            test_labels: torch.Tensor) -> torch.Tensor:
    """Error rate of each run when every test item takes the class of its most cosine-similar
    training item (first one on ties).

    Args:
        train_embeddings: (R, C, D), row c of run r the embedding of its class c.
        test_embeddings: (R, Q, D).
        test_labels: (R, Q) integer classes in [0, C).

    Returns:
        (R,) float64 error rates in [0, 1].
    """
    for name, x in (("train_embeddings", train_embeddings), ("test_embeddings", test_embeddings)):
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point or x.ndim != 3:
            raise ValueError(f"{name} must be a floating tensor (runs, items, D), found "
                             f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    r, c, d = train_embeddings.shape
    if test_embeddings.shape[0] != r or test_embeddings.shape[2] != d:
        raise ValueError(f"test_embeddings must be (R = {r}, Q, D = {d}) to match "
                         f"train_embeddings, found {tuple(test_embeddings.shape)}")
    if (not isinstance(test_labels, torch.Tensor) or test_labels.dtype.is_floating_point
            or test_labels.shape != test_embeddings.shape[:2]):
        raise ValueError(f"test_labels must be an integer tensor of shape (R, Q) = "
                         f"{tuple(test_embeddings.shape[:2])}, found "
                         f"{tuple(getattr(test_labels, 'shape', ()))}")
    if test_labels.numel() and (test_labels.min() < 0 or test_labels.max() >= c):
        raise ValueError(f"test_labels must lie in [0, C = {c}), found values from "
                         f"{int(test_labels.min())} to {int(test_labels.max())}")
    train = nn.functional.normalize(train_embeddings.double(), dim=2)
    test = nn.functional.normalize(test_embeddings.double(), dim=2)
    similarity = test @ train.transpose(1, 2)  # (R, Q, C)
    predicted = similarity.argmax(dim=2)  # (R, Q): the first maximum on ties
    return (predicted != test_labels.to(predicted.device)).double().mean(dim=1).cpu()


Embedding = nn.Module | Callable[[torch.Tensor], torch.Tensor]


def embed_images(embedding: Embedding, images: torch.Tensor, device=None) -> torch.Tensor:
    """Embeddings (N, D) float32 on the CPU of uint8 images (N, C, H, W).

    A module is run as the book evaluates its models (:func:`bierlib.training.embed`: eval
    mode, no gradients, on ``device`` or the best available one); a plain function gets the
    images as float32 in [0, 1] on the CPU.
    """
    from .training import embed  # imported here: training imports the data loaders

    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), found {images.dtype} "
                         f"{tuple(images.shape)}")
    if isinstance(embedding, nn.Module):
        labels = torch.zeros(len(images), dtype=torch.long)
        out, _ = embed(embedding, ImageTensorDataset(images, labels, ["-"]), device=device)
    elif callable(embedding):
        with torch.no_grad():
            out = embedding(images.float().div(255))
    else:
        raise ValueError("embedding must be an nn.Module or a function mapping images "
                         f"(N, C, H, W) to embeddings (N, D), found {type(embedding).__name__}")
    out = check_embeddings(out, "the embedding's output")
    if len(out) != len(images):
        raise ValueError(f"the embedding must map (N, C, H, W) to (N, D): it gave "
                         f"{tuple(out.shape)} for {len(images)} images")
    if not torch.isfinite(out).all():
        raise ValueError("the embedding's output contains NaN or infinite values")
    return out.detach().float().cpu()


def one_shot_error(embedding: Embedding, runs: Sequence[OneShotRun], device=None) -> OneShotResult:
    """Score ``embedding`` on ``runs`` (from :func:`load_runs`) by nearest-neighbour
    classification (cosine similarity, see the module docstring).

    Args:
        embedding: an ``nn.Module`` or a function mapping images (N, C, H, W), float in
            [0, 1], to embeddings (N, D); e.g. a trained model, ``model.features`` for
            backbone features, or :func:`raw_pixels`.
        runs: the runs to score, all of one image size.
        device: where a module runs (default: the best available).

    Returns:
        a :class:`OneShotResult`: the error of each run, their mean and std, the number of runs.
    """
    runs = list(runs)
    if not runs or not all(isinstance(r, OneShotRun) for r in runs):
        raise ValueError("runs must be a non-empty sequence of OneShotRun (from "
                         f"bierlib.oneshot.load_runs), found {[type(r).__name__ for r in runs]}")
    shapes = {tuple(r.train_images.shape[1:]) for r in runs} | {
        tuple(r.test_images.shape[1:]) for r in runs}
    if len(shapes) != 1:
        raise ValueError(f"all runs' images must have one shape (C, H, W), found {sorted(shapes)}")
    ways, queries = {len(r.train_images) for r in runs}, {len(r.test_images) for r in runs}
    if len(ways) != 1 or len(queries) != 1:
        raise ValueError(f"all runs must have as many classes and test drawings, found {ways} "
                         f"classes and {queries} test drawings")
    c, q = ways.pop(), queries.pop()
    labels = torch.stack([check_labels(r.test_labels, "test_labels", length=q) for r in runs])
    images = torch.cat([torch.cat([r.train_images, r.test_images]) for r in runs])
    emb = embed_images(embedding, images, device).view(len(runs), c + q, -1)  # (R, C + Q, D)
    errors = nearest_neighbor_errors(emb[:, :c], emb[:, c:], labels).tolist()
    std = float(np.std(errors, ddof=1)) if len(errors) > 1 else 0.0
    return OneShotResult(tuple(errors), float(np.mean(errors)), std, len(errors))
