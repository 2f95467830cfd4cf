"""The one run path: every model the book, the command line and a reader train.

An :class:`ExperimentConfig` names a method, a profile and a seed, and changes any
setting by its field name: a field of the profile or of its
:class:`~bierlib.training.TrainConfig` (``epochs``, ``embedding_dim``, ...) or an option
of the method's loss (``margin``, ``shrinkage``, ``num_learners``, ...). The same names
are used by a notebook, a YAML file and the command line (:mod:`bierlib.cli`)::

    config = ExperimentConfig("bier", seed=1, shrinkage=0.1)
    result = run_experiment(config)          # trains it, or loads it if it was trained
    result.history.final["recall@1"], result.run_dir

A run is identified by its complete resolved configuration (:meth:`ExperimentConfig.resolved`:
every profile, training and loss setting, defaults included, plus the checkpoint format;
settings added after the committed studies appear once they differ from the behaviour that
preceded them, :data:`LATER_SETTINGS`). Its
folder, ``runs/<method>-<profile>-seed<seed>-<hash>``, is derived from that identity, so a
changed setting trains a new run and an unchanged one loads the finished run; a folder that
holds another configuration is refused with the differing fields named. Methods and their
options (defaults):

======================  ========================================================  =======
method                  model and loss (options)                                  chapter
======================  ========================================================  =======
``contrastive``         contrastive loss (``margin`` 1, ``form`` "pml")           1, 2
``triplet``             triplet loss over all valid triplets (``margin`` 0.2)     2
``lifted``              lifted structured loss, raw embedding (``margin`` 1)      2
``binomial``            one embedding, binomial deviance (BIER with M = 1)        3
``bier``                learners 96:160:256 of D, boosted binomial deviance       3
``abier``               BIER + adversarial diversity (``lambda_div``, ...)        4
``margin``              margin loss, distance-weighted sampling (D&C with M = 1)  5
``divide_and_conquer``  M clusters / M embedding slices, margin loss              5
``multi_similarity``    multi-similarity loss with its pair mining (``epsilon``)  --
``proxy_anchor``        proxy-anchor loss, one proxy per training class           --
======================  ========================================================  =======

The last two came after the book's papers (Wang et al. 2019; Kim et al. 2020). The proxies
of ``proxy_anchor`` are built from the training set's classes when the run starts
(:meth:`ExperimentConfig.build`'s ``train_classes``) and train at ``proxy_lr_multiplier``
times the base learning rate (100, as in the authors' code).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from . import distributed
from .boosting import EnsembleEmbedder
from .divide import train_divide_and_conquer
from .losses import (BIERLoss, ContrastiveLoss, DivideAndConquerLoss, LiftedStructuredLoss,
                     MultiSimilarityLoss, ProxyAnchorLoss, TripletLoss)
from .models import build_model, init_embedding
from .profiles import (PROFILE_FIELDS, TRAIN_FIELDS, Profile, get_profile, load_datasets,
                       load_validation)
from .training import CHECKPOINT_FORMAT, NOT_IDENTITY, History, differing_fields, train
from .training import LATER_FIELDS as TRAIN_LATER_FIELDS
from .utils import atomic_write, select_device

_BINOMIAL = {"alpha": 2.0, "beta": 0.5, "C": 25.0}
_BIER = {"learner_fractions": (96 / 512, 160 / 512, 256 / 512), "shrinkage": 0.06, **_BINOMIAL}
_MARGIN = {"margin": 0.2, "beta": 1.2, "normalizer": "active-hinges",
           "sampler": "distance-weighted"}
#: Divide and conquer's schedule and clustering (see bierlib.divide.train_divide_and_conquer).
_SCHEDULE = {"recluster_every": 2, "finetune_epoch": None, "whole_embedding_epoch": None,
             "cluster_images": "train", "kmeans": "k-means++", "epoch_length": "dataset",
             "whole_normalization": "whole"}
#: Every method's loss options and their defaults (the papers' values, see DESIGN.md; where
#: bierlib and the authors' code differ, bierlib.deviations says how and why).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "contrastive": {"margin": 1.0, "form": "pml"},
    "triplet": {"margin": 0.2},
    "lifted": {"margin": 1.0},
    "binomial": dict(_BINOMIAL),
    "bier": dict(_BIER),
    # the authors' released weights (run.sh); Chapter 4 teaches with lambda_div 0.1, lambda_w 100
    "abier": {**_BIER, "diversity": "adversarial", "lambda_div": 5e-5, "lambda_w": 1e5,
              "hidden": 512, "unit_norm": "per-learner", "regressor_init": "xavier"},
    "margin": dict(_MARGIN),
    "divide_and_conquer": {"num_learners": 4, **_SCHEDULE, "keep_features": False, **_MARGIN},
    # after the book's papers; lambda is "base" (pytorch-metric-learning's name), epsilon None:
    # no mining (see bierlib.losses.multi_similarity for where each value comes from)
    "multi_similarity": {"alpha": 2.0, "beta": 50.0, "base": 0.5, "epsilon": 0.1},
    "proxy_anchor": {"margin": 0.1, "alpha": 32.0, "proxy_lr_multiplier": 100.0},
}
METHODS = tuple(METHOD_OPTIONS)
#: Model options of every method. They set BatchNorm, dropout before the embedding layer
#: (backbones only) and the embedding layer's initialisation per learner or slice.
COMMON_OPTIONS = {"frozen_batchnorm": False, "train_batchnorm_affine": False,
                  "embedding_dropout": 0.0, "embedding_init": "pytorch"}
#: Settings added after the committed studies (results/study), with the values that compute
#: what bierlib computed before they existed. A run's resolved configuration leaves them out
#: while they hold these values, so that those runs keep their names and folders; any other
#: value is part of the configuration. (A-BIER's ``unit_norm`` and ``regressor_init`` are not
#: here: their defaults changed what A-BIER computes, so its runs are new runs.)
LATER_SETTINGS: dict[str, Any] = {
    **TRAIN_LATER_FIELDS, "augmentation": "resize-random-crop",
    **{k: v for k, v in COMMON_OPTIONS.items() if k != "frozen_batchnorm"},
    **{k: v for k, v in _MARGIN.items() if k in ("normalizer", "sampler")},
    **{k: v for k, v in _SCHEDULE.items() if k not in ("recluster_every", "finetune_epoch")}}
#: Settings that change only speed or what is kept in memory, not what a run computes.
SPEED_ONLY = tuple(set(NOT_IDENTITY) - {"epochs"})


def _as_default_type(value, default):
    """Lists as tuples; a whole number given for a float option as a float (1 -> 1.0), so that
    equal settings give equal identities."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _identity(resolved: dict, checkpoint_format) -> dict:
    return {**{k: v for k, v in resolved.items() if k not in SPEED_ONLY},
            "checkpoint_format": checkpoint_format}


class ExperimentConfig:
    """One run: ``ExperimentConfig(method, profile="quick", seed=0, **settings)``.

    ``settings`` are fields of the profile or of its training configuration, or options of
    the method (:data:`METHOD_OPTIONS`); anything else raises a ValueError listing the
    valid names. Configurations are immutable; :meth:`replace` makes a changed copy.
    """

    def __init__(self, method: str, profile: str = "quick", seed: int = 0, **settings):
        if method not in METHOD_OPTIONS:
            raise ValueError(f"method must be one of {METHODS}, found {method!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, found {seed!r}")
        options = {**COMMON_OPTIONS, **METHOD_OPTIONS[method]}
        unknown = set(settings) - set(options) - set(PROFILE_FIELDS) - set(TRAIN_FIELDS)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)} for method {method!r}; valid: "
                             f"its options {sorted(options)}, profile fields "
                             f"{list(PROFILE_FIELDS)} and training fields {list(TRAIN_FIELDS)}")
        self.method, self.profile, self.seed = method, profile, seed
        self.settings = {k: _as_default_type(v, options.get(k)) for k, v in settings.items()}
        self.options = {**options, **{k: v for k, v in self.settings.items() if k in options}}
        # validates the profile, its overrides and the options now (the proxy-anchor loss's
        # classes come with the data: one stands in for them here)
        self.build_loss(train_classes=1)

    def replace(self, **changes) -> ExperimentConfig:
        """A copy with ``changes`` (``method``, ``profile``, ``seed`` or any setting)."""
        fields = {"method": self.method, "profile": self.profile, "seed": self.seed,
                  **self.settings, **changes}
        return ExperimentConfig(**fields)

    def with_method(self, method: str) -> ExperimentConfig:
        """The same profile, training and common settings for another method, whose own
        options take their defaults (e.g. BIER's single-embedding baseline)."""
        keep = set(PROFILE_FIELDS) | set(TRAIN_FIELDS) | set(COMMON_OPTIONS)
        return ExperimentConfig(method, self.profile, self.seed,
                                **{k: v for k, v in self.settings.items() if k in keep})

    @classmethod
    def from_mapping(cls, values: dict) -> ExperimentConfig:
        """From a flat mapping (a YAML file's): ``method`` plus any settings."""
        if "method" not in values:
            raise ValueError(f"the configuration must set method (one of {METHODS})")
        return cls(**values)

    def resolved_profile(self) -> Profile:
        return get_profile(self.profile, **{k: v for k, v in self.settings.items()
                                            if k in PROFILE_FIELDS or k in TRAIN_FIELDS})

    def resolved(self) -> dict[str, Any]:
        """Every setting of the run, defaults included, as plain YAML-friendly values; a
        setting of :data:`LATER_SETTINGS` only where it differs from its value there."""
        p = self.resolved_profile()
        values = {"method": self.method, "profile": self.profile, "seed": self.seed,
                  **{k: getattr(p, k) for k in PROFILE_FIELDS},
                  **{k: getattr(p.train, k) for k in TRAIN_FIELDS}, **self.options}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()
                if not (k in LATER_SETTINGS and v == LATER_SETTINGS[k])}

    def identity(self) -> dict[str, Any]:
        """What a run's checkpoint must match: :meth:`resolved` without the speed-only fields,
        plus the checkpoint format."""
        return _identity(self.resolved(), CHECKPOINT_FORMAT)

    @property
    def name(self) -> str:
        """The run folder's name, readable, with a short hash of :meth:`identity` at the end."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()
        return f"{self.method}-{self.profile}-seed{self.seed}-{digest[:8]}"

    def learner_sizes(self) -> tuple[int, ...]:
        """BIER's learner sizes for this embedding size: the fractions rounded, the last
        learner taking the rest (96, 160, 256 for D = 512; 12, 20, 32 for D = 64)."""
        d = self.resolved_profile().embedding_dim
        fractions = tuple(float(f) for f in self.options.get("learner_fractions", (1.0,)))
        if abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
            raise ValueError(f"learner_fractions must be positive and sum to 1, found {fractions}")
        head = tuple(int(round(d * f)) for f in fractions[:-1])
        return head + (d - sum(head),)

    def build_loss(self, train_classes=None) -> nn.Module:
        """The loss of this run, built from its options (which it validates).

        ``train_classes``: the training set's class ids (or their number), which the
        proxy-anchor loss needs for its proxies (``train_set.targets.unique()``); the other
        methods ignore it."""
        p, o = self.resolved_profile(), self.options
        if self.method == "contrastive":
            return ContrastiveLoss(margin=o["margin"], form=o["form"])
        if self.method == "triplet":
            return TripletLoss(margin=o["margin"])
        if self.method == "lifted":
            return LiftedStructuredLoss(margin=o["margin"])
        if self.method == "multi_similarity":
            return MultiSimilarityLoss(o["alpha"], o["beta"], o["base"], o["epsilon"])
        if self.method == "proxy_anchor":
            if train_classes is None:
                raise ValueError("the proxy-anchor loss needs the training classes (one proxy "
                                 "each): pass train_classes=train_set.targets.unique() to "
                                 "build or build_loss, or train it with run_experiment")
            return ProxyAnchorLoss(train_classes, p.embedding_dim, o["margin"], o["alpha"],
                                   o["proxy_lr_multiplier"])
        if self.method in ("binomial", "bier", "abier"):
            sizes = (p.embedding_dim,) if self.method == "binomial" else self.learner_sizes()
            return BIERLoss(sizes, shrinkage=o.get("shrinkage", 0.06), alpha=o["alpha"],
                            beta=o["beta"], C=o["C"], diversity=o.get("diversity"),
                            lambda_div=o.get("lambda_div", 0.0), lambda_w=o.get("lambda_w", 100.0),
                            hidden=o.get("hidden", 512),
                            unit_norm=o.get("unit_norm", "per-learner"),
                            regressor_init=o.get("regressor_init", "xavier"))
        loss = DivideAndConquerLoss(o.get("num_learners", 1), o["margin"], o["beta"],
                                    o["normalizer"], o["sampler"],
                                    o.get("whole_normalization", "whole"))
        loss.slice_sizes(p.embedding_dim)  # D must split into M equal slices
        return loss

    def build(self, train_classes=None) -> tuple[nn.Module, nn.Module]:
        """The (model, loss) of this run, the initial weights of both (the loss's: A-BIER's
        regressors, the proxy-anchor loss's proxies) seeded by ``seed``, so every process builds
        the same run. ``train_classes`` as in :meth:`build_loss`. Divide and conquer's model is
        the network, which :func:`~bierlib.divide.train_divide_and_conquer` wraps into slices."""
        p = self.resolved_profile()
        torch.manual_seed(self.seed)
        loss = self.build_loss(train_classes)
        torch.manual_seed(self.seed)
        o = self.options
        net = build_model(p.model, p.embedding_dim, p.in_channels, pretrained=p.pretrained,
                          frozen_batchnorm=o["frozen_batchnorm"],
                          train_batchnorm_affine=o["train_batchnorm_affine"],
                          dropout=o["embedding_dropout"])
        blocks = (loss.sizes if isinstance(loss, BIERLoss)
                  else loss.slice_sizes(p.embedding_dim)
                  if isinstance(loss, DivideAndConquerLoss) else (p.embedding_dim,))
        init_embedding(net.embedding, blocks, o["embedding_init"])
        if isinstance(loss, BIERLoss):
            diversity = loss.diversity is not None
            return EnsembleEmbedder(net, loss.sizes, diversity_outputs=diversity), loss
        return net, loss

    def __eq__(self, other) -> bool:
        return isinstance(other, ExperimentConfig) and self.identity() == other.identity()

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        changes = "".join(f", {k}={v!r}" for k, v in self.settings.items())
        return (f"ExperimentConfig({self.method!r}, profile={self.profile!r}, seed={self.seed}"
                f"{changes})")


@dataclasses.dataclass
class ExperimentResult:
    config: ExperimentConfig
    model: nn.Module  # in eval mode: gives the test-time embedding
    history: History
    extras: dict  # e.g. divide and conquer's clusterings
    run_dir: Path  # config.yaml, checkpoint/, metrics.json


def default_runs_dir() -> Path:
    """Where runs live: ``$BIERLIB_RUNS``, else ``runs/`` in the working directory."""
    return Path(os.environ.get("BIERLIB_RUNS", "runs"))


def run_experiment(config: ExperimentConfig, runs_dir=None, run_dir=None, device=None,
                   progress: bool = True, datasets=None, command: str | None = None,
                   label: str | None = None) -> ExperimentResult:
    """Train ``config`` to the end, or load it if its run folder holds the finished run.

    Args:
        runs_dir: parent of the run folders (default :func:`default_runs_dir`).
        run_dir: the run folder itself (default ``runs_dir / config.name``).
        datasets: the (train, test) pair, default :func:`~bierlib.profiles.load_datasets`;
            with ``select_on="validation"`` the (train, test, validation) triple, default
            also :func:`~bierlib.profiles.load_validation`.
        command: recorded in ``config.yaml`` (the command line passes its own).
        label: the name ``metrics.json`` records (default ``config.name``; the command line
            passes its YAML file's name, which the "Reproducing the papers" page groups by).

    The folder receives ``config.yaml`` (the resolved configuration) before training,
    ``checkpoint/`` (written atomically every epoch; an interrupted run resumes) and
    ``metrics.json`` at the end: every evaluation, the final one, the test peak ("oracle", an
    upper bound) and, with ``select_on="validation"``, the validation-chosen one ("chosen").
    """
    if run_dir is None:
        run_dir = Path(runs_dir or default_runs_dir()) / config.name
    run_dir = Path(run_dir)
    p = config.resolved_profile()
    device = select_device(device) if device is None or isinstance(device, str) else device
    if p.needs_gpu and device.type == "cpu":
        raise RuntimeError(f"the {p.name!r} profile is meant for a GPU and none was found "
                           f"(device {device}); use profile 'quick' or run where CUDA is available")
    if distributed.is_main():  # under torchrun: one writer, the others wait for it
        _claim(run_dir, config, command)
    distributed.barrier()
    train_set, test_set, validation_set = _datasets(p, datasets)
    model, loss = config.build(train_classes=torch.as_tensor(train_set.targets).unique())
    common = dict(checkpoint_dir=run_dir / "checkpoint", device=device, progress=progress,
                  identity=config.identity(), validation_set=validation_set)
    if not isinstance(loss, DivideAndConquerLoss):
        history = train(model, loss, train_set, test_set, p.train_config(config.seed), **common)
        result = ExperimentResult(config, model, history, {}, run_dir)
    else:
        o = config.options
        dc = train_divide_and_conquer(
            model, train_set, test_set, p.train_config(config.seed), loss_fn=loss,
            **{k: o.get(k, v) for k, v in _SCHEDULE.items() if k != "whole_normalization"},
            keep_features=o.get("keep_features", False), **common)
        result = ExperimentResult(config, dc.model, dc.history, {"clusterings": dc.clusterings},
                                  run_dir)
    if distributed.is_main():
        _write_metrics(result, device, label or config.name)
    return result


def _datasets(p: Profile, datasets) -> tuple:
    """(train, test, validation or None) of profile ``p``, from ``datasets`` if given."""
    if datasets is None:
        return (*load_datasets(p), load_validation(p))
    wanted = 3 if p.train.select_on == "validation" else 2
    if len(datasets) != wanted:
        raise ValueError(f"datasets must be the (train, test{', validation' * (wanted == 3)}) "
                         f"{'triple' if wanted == 3 else 'pair'} for select_on="
                         f"{p.train.select_on!r}, found {len(datasets)} datasets")
    return (*datasets, None) if wanted == 2 else tuple(datasets)


def _claim(run_dir: Path, config: ExperimentConfig, command: str | None) -> None:
    """Write ``config.yaml``, or check that the folder's holds this very configuration."""
    record = run_dir / "config.yaml"
    wanted = config.identity()
    if record.is_file():
        stored = yaml.safe_load(record.read_text())
        stored = _identity(stored["config"], stored.get("checkpoint_format"))
        diff = differing_fields(stored, wanted)
        if diff:
            raise ValueError(f"{run_dir} holds a run of another configuration (stored vs "
                             f"now: {diff}); nothing was loaded or overwritten: use another "
                             "folder or delete this one")
        return
    text = yaml.safe_dump({"name": config.name, "config": config.resolved(),
                           "checkpoint_format": CHECKPOINT_FORMAT, "command": command},
                          sort_keys=False)
    atomic_write(record, lambda f: f.write(text), binary=False)


def _write_metrics(result: ExperimentResult, device: torch.device, label: str) -> None:
    path = result.run_dir / "metrics.json"
    if path.is_file():
        return  # a finished run, loaded
    env = {"torch": torch.__version__, "python": platform.python_version(),
           "device": torch.cuda.get_device_name() if device.type == "cuda" else str(device)}
    metrics = {"name": label, "run": result.config.name, "config": result.config.resolved(),
               "final": result.history.final, "oracle": result.history.oracle,
               **({"chosen": result.history.chosen}
                  if result.config.resolved_profile().train.select_on == "validation" else {}),
               "records": result.history.records,
               "environment": env}
    atomic_write(path, lambda f: json.dump(_plain(metrics), f, indent=1), binary=False)


def _plain(value):
    """JSON without NaN: NaN (the untrained model's loss) becomes null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
