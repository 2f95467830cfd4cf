"""Every method of the book behind one configuration: what the chapters' comparison page and
the command line (``python -m bierlib.cli``) run.

An :class:`ExperimentConfig` names a method, a profile (``quick`` or ``paper``) with
optional overrides of its fields, a seed and the method's own options;
:func:`run_experiment` builds the model and the loss exactly as the chapters do and
trains them (resumable from a checkpoint folder). Methods:

======================  =====================================================  =========
method                  model and loss                                         chapter
======================  =====================================================  =========
``contrastive``         contrastive loss, PML form, margin 1                   1, 2
``triplet``             triplet loss over all valid triplets, margin 0.2       2
``lifted``              lifted structured loss, alpha = 1, raw embedding       2
``binomial``            one embedding, binomial deviance (BIER with M = 1)     3
``bier``                learners 96:160:256 of D, boosted binomial deviance    3
``abier``               BIER + adversarial diversity (gradient reversal)       4
``margin``              margin loss, distance-weighted sampling (D&C, K = 1)   5
``divide_and_conquer``  K clusters / K embedding slices, margin loss            5
======================  =====================================================  =========
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from .boosting import BIERLoss, EnsembleEmbedder
from .divide import train_divide_and_conquer
from .losses import ContrastiveLoss, LiftedStructuredLoss, TripletLoss
from .models import build_model
from .profiles import Profile, get_profile, load_datasets
from .training import History, train
from .utils import select_device

METHODS = ("contrastive", "triplet", "lifted", "binomial", "bier", "abier", "margin",
           "divide_and_conquer")


@dataclasses.dataclass
class ExperimentConfig:
    """One training run. ``overrides`` replaces fields of the profile (e.g. ``epochs``)."""

    method: str
    profile: str = "quick"
    seed: int = 0
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    learner_fractions: tuple[float, ...] = (96 / 512, 160 / 512, 256 / 512)  # BIER, A-BIER
    lambda_div: float = 0.1  # A-BIER: weight of the adversarial term
    lambda_w: float = 100.0  # A-BIER: weight of the unit-norm penalties
    num_learners: int = 4  # divide and conquer: K
    recluster_every: int = 2  # divide and conquer: T epochs
    finetune_epoch: int | None = None  # divide and conquer: default half of the epochs
    frozen_batchnorm: bool = False  # backbones only
    keep_features: bool = False  # divide and conquer: keep the clustered features for pictures

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, found {self.method!r}")
        self.learner_fractions = tuple(float(f) for f in self.learner_fractions)
        if abs(sum(self.learner_fractions) - 1) > 1e-6 or min(self.learner_fractions) <= 0:
            raise ValueError(f"learner_fractions must be positive and sum to 1, found "
                             f"{self.learner_fractions}")
        self.resolved_profile()  # rejects unknown profiles and override keys now

    def resolved_profile(self) -> Profile:
        return get_profile(self.profile, **self.overrides)

    def learner_sizes(self) -> tuple[int, ...]:
        """BIER's learner sizes for this embedding size: the fractions rounded, the last
        learner taking the rest (96, 160, 256 for D = 512; 12, 20, 32 for D = 64)."""
        d = self.resolved_profile().embedding_dim
        head = tuple(int(round(d * f)) for f in self.learner_fractions[:-1])
        return head + (d - sum(head),)


@dataclasses.dataclass
class ExperimentResult:
    model: nn.Module  # in eval mode: gives the test-time embedding
    history: History
    extras: dict  # e.g. divide and conquer's clusterings


def build(config: ExperimentConfig) -> tuple[nn.Module, nn.Module]:
    """The (model, loss) of a pair-based or BIER-family method, seeded by ``config.seed``."""
    p = config.resolved_profile()
    torch.manual_seed(config.seed)
    net = build_model(p.model, p.embedding_dim, p.in_channels, pretrained=p.pretrained,
                      frozen_batchnorm=config.frozen_batchnorm)
    if config.method == "contrastive":
        return net, ContrastiveLoss(margin=1.0, form="pml")
    if config.method == "triplet":
        return net, TripletLoss(margin=0.2)
    if config.method == "lifted":
        return net, LiftedStructuredLoss(margin=1.0)
    if config.method in ("binomial", "bier", "abier"):
        sizes = (p.embedding_dim,) if config.method == "binomial" else config.learner_sizes()
        adversarial = config.method == "abier"
        loss = BIERLoss(sizes, diversity="adversarial" if adversarial else None,
                        lambda_div=config.lambda_div if adversarial else 0.0, lambda_w=config.lambda_w)
        return EnsembleEmbedder(net, sizes, diversity_outputs=adversarial), loss
    return net, None  # margin and divide_and_conquer: built by train_divide_and_conquer


def run_experiment(config: ExperimentConfig, checkpoint_dir=None, device=None, progress: bool = True,
                   datasets=None) -> ExperimentResult:
    """Train ``config`` to the end (or load it, if ``checkpoint_dir`` holds the finished run).

    ``datasets``: the (train, test) pair, default :func:`~bierlib.profiles.load_datasets`.
    """
    p = config.resolved_profile()
    device = select_device(device) if device is None or isinstance(device, str) else device
    if p.needs_gpu and device.type == "cpu":
        raise RuntimeError(f"the {p.name!r} profile is meant for a GPU and none was found "
                           f"(device {device}); use profile 'quick' or run where CUDA is available")
    train_set, test_set = datasets if datasets is not None else load_datasets(p)
    model, loss = build(config)
    train_config = p.train_config(seed=config.seed)
    if loss is not None:
        history = train(model, loss, train_set, test_set, train_config, checkpoint_dir=checkpoint_dir,
                        device=device, progress=progress)
        return ExperimentResult(model, history, {})
    k = 1 if config.method == "margin" else config.num_learners
    result = train_divide_and_conquer(model, train_set, test_set, train_config, num_learners=k,
                                      recluster_every=config.recluster_every,
                                      finetune_epoch=config.finetune_epoch,
                                      checkpoint_dir=checkpoint_dir, device=device, progress=progress,
                                      keep_features=config.keep_features)
    return ExperimentResult(result.model, result.history, {"clusterings": result.clusterings})
