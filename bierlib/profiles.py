"""The two run profiles, in one place.

* ``quick`` -- what the rendered book and CI execute: Omniglot at 28 px (offline),
  a small CNN from scratch, about 20 seconds per trained model on a 2-core CPU
  (a chapter trains a few models).
* ``paper`` -- the papers' setups, for a GPU: CUB-200-2011 at 224 px with an
  ImageNet-pretrained GoogLeNet, 512-d embedding, Adam 1e-5 with a x10 learning
  rate on the embedding layer (Song et al. 2016; Opitz et al. 2017/2018). The
  chapters' methods adjust what differs (for instance divide-and-conquer uses
  ResNet-50 with frozen BatchNorm and a 128-d embedding).

Usage::

    profile = get_profile("quick", epochs=5)        # overrides are checked
    model = build_model(profile.model, profile.embedding_dim, profile.in_channels,
                        pretrained=profile.pretrained)
    history = train(model, loss, train_set, test_set, profile.train_config())
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
    classes_per_batch: int  # P
    images_per_class: int  # K
    epochs: int
    steps_per_epoch: int | None
    lr: float
    embedding_lr_multiplier: float
    weight_decay: float
    eval_ks: tuple[int, ...]
    needs_gpu: bool
    expected_minutes_cpu: float | None  # one chapter's training, measured on a 2-core CPU
    num_workers: int = 0  # data-loading processes
    eval_every: int = 1  # epochs between evaluations
    clustering: bool = True  # NMI/F1 at each evaluation (impractical for SOP's 11k classes on a CPU)

    def train_config(self, seed: int = 0, **overrides) -> TrainConfig:
        """The :class:`~bierlib.training.TrainConfig` of this profile (with overrides)."""
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in fields}
        return TrainConfig(**{**values, "seed": seed, **overrides})


PROFILES = {
    "quick": Profile(
        name="quick", dataset="omniglot", image_size=28, in_channels=1, model="small_cnn",
        pretrained=False, embedding_dim=64, classes_per_batch=32, images_per_class=4,
        epochs=12, steps_per_epoch=20, lr=1e-3, embedding_lr_multiplier=1.0, weight_decay=1e-4,
        eval_ks=(1, 2, 4, 8), needs_gpu=False, expected_minutes_cpu=0.4),
    "paper": Profile(
        name="paper", dataset="cub200", image_size=224, in_channels=3, model="googlenet",
        pretrained=True, embedding_dim=512, classes_per_batch=64, images_per_class=2,
        epochs=60, steps_per_epoch=None, lr=1e-5, embedding_lr_multiplier=10.0,
        weight_decay=2e-4, eval_ks=(1, 2, 4, 8), needs_gpu=True, expected_minutes_cpu=None,
        num_workers=8),
}


def get_profile(name: str, **overrides) -> Profile:
    """The profile ``name`` (``"quick"`` or ``"paper"``), with fields replaced by ``overrides``."""
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, found {name!r}")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Profile)}
    if unknown:
        raise ValueError(f"unknown profile fields {sorted(unknown)}; valid fields: "
                         f"{[f.name for f in dataclasses.fields(Profile)]}")
    return dataclasses.replace(PROFILES[name], **overrides)


def load_datasets(profile: Profile, root=None):
    """The (train, test) datasets of ``profile``, with disjoint classes.

    Raises :class:`~bierlib.data.base.DatasetNotFoundError` (naming the fetch command) when
    the data are not on disk.
    """
    from .data import DATASETS, Omniglot

    if profile.dataset == "omniglot":
        return (Omniglot(root, "train", profile.image_size),
                Omniglot(root, "test", profile.image_size))
    if profile.dataset == "inshop":
        raise ValueError("In-Shop is evaluated query against gallery: build InShop(root, 'train'), "
                         "InShop(root, 'query') and InShop(root, 'gallery') and use "
                         "bierlib.evaluation.query_gallery_recall; the training loop's "
                         "within-set evaluation does not apply")
    if profile.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {profile.dataset!r}; known: omniglot, {', '.join(DATASETS)}")
    cls = DATASETS[profile.dataset]
    return cls(root, "train", image_size=profile.image_size), cls(root, "test", image_size=profile.image_size)
