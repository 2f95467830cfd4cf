"""The two run profiles, in one place.

* ``quick`` -- what the rendered book and CI execute: a miniature of the papers' regime on
  Omniglot at 28 px (offline). A 4-block CNN pretrained on 1,000 font glyphs (the shipped
  weights of ``python -m bierlib.pretrain``, its "ImageNet") gives F = 256 features to a
  D = 128 embedding layer (F = 2D, as GoogLeNet's 1024 features feed BIER's 512), trained like
  the papers: Adam with a low backbone learning rate (1e-4), x10 on the embedding layer, weight
  decay 2e-4, batches of 32 classes x 4 images; 160 steps, about 20 seconds per model on a
  2-core CPU. ``pretrained=False`` trains the same network from scratch, and the validation
  split (``dataset="omniglot-validation"``) holds out a training alphabet for tuning.
  ``select_on="validation"`` trains on the training alphabets without that held-out one and
  evaluates it beside the test alphabets, to choose the stopping point on it
  (:func:`load_validation`, :attr:`bierlib.training.History.chosen`).
* ``paper`` -- the papers' setups, for a GPU: CUB-200-2011 at 224 px with an
  ImageNet-pretrained GoogLeNet, 512-d embedding, Adam 1e-5 with a x10 learning
  rate on the embedding layer (Song et al. 2016; Opitz et al. 2017/2020). The
  chapters' methods adjust what differs (for instance divide-and-conquer uses
  ResNet-50 with frozen BatchNorm and a 128-d embedding).

A :class:`Profile` names the data and the model and holds the
:class:`~bierlib.training.TrainConfig` that trains it. :func:`get_profile` takes
overrides of either by their field names (one flat namespace, the one that
:class:`~bierlib.experiments.ExperimentConfig`, the YAML files and the command line use)::

    profile = get_profile("quick", epochs=24, embedding_dim=128)   # checked
    profile.train.epochs   # 24
"""
from __future__ import annotations

import dataclasses

from .training import TrainConfig


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    dataset: str  # "omniglot", "cub200", ...
    image_size: int
    in_channels: int
    model: str  # "small_cnn" or a backbone of bierlib.models.BACKBONES
    pretrained: bool
    embedding_dim: int
    needs_gpu: bool
    train: TrainConfig  # how a model of this profile is trained (seed: the run's)
    # training augmentation of the paper datasets (bierlib.data.files.AUGMENTATIONS);
    # Omniglot at 28 px has none
    augmentation: str = "resize-random-crop"

    def train_config(self, seed: int = 0) -> TrainConfig:
        """The profile's ``train`` configuration with the run's ``seed``."""
        return dataclasses.replace(self.train, seed=seed)


PROFILES = {
    "quick": Profile(
        name="quick", dataset="omniglot", image_size=28, in_channels=1, model="small_cnn",
        pretrained=True, embedding_dim=128, needs_gpu=False,
        train=TrainConfig(epochs=8, steps_per_epoch=20, classes_per_batch=32, images_per_class=4,
                          lr=1e-4, embedding_lr_multiplier=10.0, weight_decay=2e-4,
                          eval_every=2, eval_ks=(1, 2, 4, 8))),
    "paper": Profile(
        name="paper", dataset="cub200", image_size=224, in_channels=3, model="googlenet",
        pretrained=True, embedding_dim=512, needs_gpu=True,
        train=TrainConfig(epochs=60, steps_per_epoch=None, classes_per_batch=64,
                          images_per_class=2, lr=1e-5, embedding_lr_multiplier=10.0,
                          weight_decay=2e-4, eval_ks=(1, 2, 4, 8), num_workers=8)),
}
#: The field names that a profile override may set, the profile's own and its TrainConfig's
#: (not the seed, which belongs to the run).
PROFILE_FIELDS = tuple(f.name for f in dataclasses.fields(Profile)
                       if f.name not in ("name", "train"))
TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "seed")


def get_profile(name: str, **overrides) -> Profile:
    """The profile ``name`` (``"quick"`` or ``"paper"``), with fields of the profile or of its
    :class:`~bierlib.training.TrainConfig` replaced by ``overrides`` (validated)."""
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, found {name!r}")
    unknown = set(overrides) - set(PROFILE_FIELDS) - set(TRAIN_FIELDS)
    if unknown:
        raise ValueError(f"unknown profile fields {sorted(unknown)}; valid fields: "
                         f"{list(PROFILE_FIELDS)} and training fields {list(TRAIN_FIELDS)}")
    profile = PROFILES[name]
    train = {k: tuple(v) if isinstance(v, list) else v
             for k, v in overrides.items() if k in TRAIN_FIELDS}
    own = {k: v for k, v in overrides.items() if k in PROFILE_FIELDS}
    profile = dataclasses.replace(profile, train=dataclasses.replace(profile.train, **train),
                                  **own)
    if profile.train.select_on == "validation" and profile.dataset != "omniglot":
        raise ValueError(f"select_on='validation' needs a dataset with held-out validation "
                         f"classes: 'omniglot' (its Sanskrit alphabet), found dataset="
                         f"{profile.dataset!r}")
    return profile


def load_datasets(profile: Profile, root=None):
    """The (train, test) datasets of ``profile``, with disjoint classes; with
    ``select_on="validation"`` the training set leaves out the validation classes
    (:func:`load_validation`).

    Raises :class:`~bierlib.data.base.DatasetNotFoundError` (naming the fetch command) when
    the data are not on disk.
    """
    from .data import DATASETS, Omniglot

    if profile.dataset in ("omniglot", "omniglot-validation"):
        if profile.augmentation != "resize-random-crop":
            raise ValueError(f"augmentation={profile.augmentation!r} applies to the paper "
                             "datasets; the quick profile's Omniglot is not augmented")
        train, test = {"omniglot": ("train", "test"),
                       "omniglot-validation": ("tune", "validation")}[profile.dataset]
        if profile.train.select_on == "validation":
            train = "tune"  # the training alphabets without the validation alphabet
        return (Omniglot(root, train, profile.image_size),
                Omniglot(root, test, profile.image_size))
    if profile.dataset == "inshop":
        raise ValueError("In-Shop is evaluated query against gallery: build InShop(root, 'train'), "
                         "InShop(root, 'query') and InShop(root, 'gallery') and use "
                         "bierlib.evaluation.query_gallery_recall; the training loop's "
                         "within-set evaluation does not apply")
    if profile.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {profile.dataset!r}; "
                         f"known: omniglot, omniglot-validation, {', '.join(DATASETS)}")
    cls = DATASETS[profile.dataset]
    return (cls(root, "train", image_size=profile.image_size, augmentation=profile.augmentation),
            cls(root, "test", image_size=profile.image_size))


def load_validation(profile: Profile, root=None):
    """The held-out validation classes that a run with ``select_on="validation"`` evaluates at
    every evaluation (Omniglot's validation alphabet, left out of :func:`load_datasets`'s
    training set); None for ``select_on="test"``."""
    from .data import Omniglot

    if profile.train.select_on == "test":
        return None
    if profile.dataset != "omniglot":
        raise ValueError(f"select_on='validation' needs dataset 'omniglot', found "
                         f"{profile.dataset!r}")
    return Omniglot(root, "validation", profile.image_size)
