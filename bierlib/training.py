"""One training loop for every chapter and both profiles.

``train(model, loss_fn, train_set, test_set, config)`` draws P x K batches,
minimises ``loss_fn(embeddings, labels)`` with Adam, evaluates retrieval on the
test classes after every ``eval_every`` epochs (and once before training) and
returns a :class:`History`. With ``select_on="validation"`` and a ``validation_set`` (classes
held out of the training classes) every evaluation measures that set too, recorded under
``val_`` keys, and :attr:`History.chosen` is the evaluation where validation Recall@1 peaked:
a stopping point picked without looking at the test classes.

With a ``checkpoint_dir`` it is resumable: after every epoch the model, the
optimiser and the history are written atomically to ``checkpoint_dir/last.pt``.
Calling ``train`` again with the same arguments continues from there and ends
exactly where an uninterrupted run ends (batches depend only on ``(seed, epoch)``
and the global torch RNG is re-seeded at the start of every epoch); a finished
run is loaded instead of retrained; a larger ``epochs`` extends it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from . import distributed
from .evaluation import evaluate, per_class_recall
from .sampling import PKSampler
from .utils import atomic_torch_save, check_positive_int, select_device

CHECKPOINT_FORMAT = 2  # 2: the checkpoint stores the run's identity (see train's `identity`)


#: The forms of weight decay (see ``TrainConfig.weight_decay_form``).
WEIGHT_DECAY_FORMS = ("adam", "l2-weights")
#: What a run's stopping point is chosen on (see ``TrainConfig.select_on``).
SELECT_ON = ("test", "validation")
#: The prefix of the validation metrics in a record ("val_recall@1", "val_map@r", ...).
VALIDATION_PREFIX = "val_"
PER_CLASS = "per_class_recall@1"  # a record's per-class test Recall@1 (see _evaluate)


@dataclasses.dataclass
class TrainConfig:
    """Hyperparameters of :func:`train`; the profiles in :mod:`bierlib.profiles` fill them."""

    epochs: int = 10
    steps_per_epoch: int | None = None  # None: about one pass over the training images
    classes_per_batch: int = 32  # P
    images_per_class: int = 4  # K
    lr: float = 1e-3
    embedding_lr_multiplier: float = 1.0  # lr factor for ``model.embedding`` (x10 in BIER)
    weight_decay: float = 1e-4
    # "adam": Adam's weight_decay on every parameter (gradient weight_decay * w); "l2-weights":
    # a loss weight_decay * sum(w^2) on the model's convolution and linear weights only
    # (gradient 2 weight_decay * w; biases, BatchNorm and a loss's parameters undecayed), as
    # BIER's official code (see bierlib.deviations)
    weight_decay_form: str = "adam"
    lr_anneal: int | None = None  # every lr_anneal steps all learning rates x lr_decay
    lr_decay: float = 0.1  # (staircase; None: constant learning rates)
    # "test": evaluate the test classes only (History.oracle is the test peak, an upper bound);
    # "validation": also evaluate held-out validation classes at every evaluation (train's
    # validation_set; the profiles train on the training classes without them), so that
    # History.chosen picks the stopping point on validation
    select_on: str = "test"
    seed: int = 0
    eval_every: int = 1
    eval_ks: Sequence[int] = (1, 2, 4, 8)
    clustering: bool = True  # NMI and F1 at every evaluation
    keep_embeddings: bool = False  # store the test embeddings of every evaluation
    num_workers: int = 0  # data-loading processes (the paper profile decodes JPEGs: use several)
    amp: bool = True  # mixed precision on CUDA (bf16 where supported)
    channels_last: bool = True  # NHWC memory layout (about 1.8x faster steps on a 2-core CPU too)

    def __post_init__(self):
        for name in ("epochs", "classes_per_batch", "images_per_class", "eval_every"):
            check_positive_int(getattr(self, name), name)
        if self.steps_per_epoch is not None:
            check_positive_int(self.steps_per_epoch, "steps_per_epoch")
        if self.lr <= 0 or self.embedding_lr_multiplier <= 0 or self.weight_decay < 0:
            raise ValueError(f"lr and embedding_lr_multiplier must be > 0 and weight_decay >= 0, "
                             f"found {self.lr}, {self.embedding_lr_multiplier}, "
                             f"{self.weight_decay}")
        if self.weight_decay_form not in WEIGHT_DECAY_FORMS:
            raise ValueError(f"weight_decay_form must be one of {WEIGHT_DECAY_FORMS}, "
                             f"found {self.weight_decay_form!r}")
        if self.select_on not in SELECT_ON:
            raise ValueError(f"select_on must be one of {SELECT_ON}, found {self.select_on!r}")
        if self.lr_anneal is not None:
            check_positive_int(self.lr_anneal, "lr_anneal")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], found {self.lr_decay}")
        self.eval_ks = tuple(int(k) for k in self.eval_ks)
        for name in ("lr", "embedding_lr_multiplier", "weight_decay",
                     "lr_decay"):  # 1 and 1.0: one identity
            setattr(self, name, float(getattr(self, name)))


class History:
    """Per-evaluation records (plain dicts: epoch, step, loss, seconds, test metrics and, with
    ``select_on="validation"``, the validation metrics under ``val_`` keys) and, optionally,
    the test embeddings of each evaluation (for scrubbing through epochs)."""

    def __init__(self, records: list[dict] | None = None,
                 embeddings: list[torch.Tensor] | None = None):
        self.records = records or []
        self.embeddings = embeddings or []

    def __getitem__(self, key: str) -> list:
        """The values of ``key`` over the records, e.g. ``history["recall@1"]``."""
        if not self.records or key not in self.records[-1]:
            raise KeyError(f"{key!r} is not recorded; available: "
                           f"{sorted(self.records[-1]) if self.records else []}")
        return [r.get(key, float("nan")) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def final(self) -> dict:
        """The last record."""
        return self.records[-1]

    @property
    def oracle(self) -> dict:
        """The record with the highest test Recall@1 (the earliest on ties). It is picked on
        the classes it is measured on: an optimistic upper bound, never a result to claim."""
        return max(self.records, key=lambda r: r.get("recall@1", float("-inf")))

    @property
    def chosen(self) -> dict:
        """The record where validation Recall@1 (``val_recall@1``) peaked, the earliest on
        ties: the stopping point chosen without the test classes. A ValueError when no
        validation metric was recorded (train with ``select_on="validation"``)."""
        key = VALIDATION_PREFIX + "recall@1"
        scored = [r for r in self.records if r.get(key) is not None and r[key] == r[key]]
        if not scored:
            raise ValueError(f"History.chosen needs {key!r} in the records, found none in "
                             f"{len(self.records)} records: train with select_on='validation' "
                             "and a validation_set")
        return max(scored, key=lambda r: r[key])  # max keeps the first of equal values

    def __repr__(self) -> str:
        return f"History({len(self.records)} records, final={self.final if self.records else None})"


def _loader(dataset: Dataset, num_workers: int, device: torch.device, **kwargs) -> DataLoader:
    workers = {"persistent_workers": True, "prefetch_factor": 4} if num_workers > 0 else {}
    rank, processes = distributed.world()
    if num_workers > 0 and processes > 1:
        workers["worker_init_fn"] = functools.partial(distributed.seed_worker, rank=rank)
    return DataLoader(dataset, num_workers=num_workers, pin_memory=device.type == "cuda",
                      **workers, **kwargs)


def _to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    if channels_last and images.ndim == 4:  # NHWC: faster convolutions on CPUs and GPUs alike
        images = images.contiguous(memory_format=torch.channels_last)
    return images


@torch.no_grad()
def embed(model: nn.Module, dataset: Dataset, batch_size: int = 512, device=None,
          amp: bool = True, num_workers: int = 0, channels_last: bool = True,
          forward: Callable[[torch.Tensor], torch.Tensor] | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (N, D) float32 on the CPU and labels (N,) of a whole dataset, in order.

    ``forward`` replaces ``model(images)``, e.g. ``model.features`` for backbone features;
    ``model`` is put in eval mode meanwhile either way. Under ``torchrun`` each process embeds
    a part and every process receives the whole (:func:`bierlib.distributed.embed_shards`).
    """
    device = select_device(device) if device is None or isinstance(device, str) else device

    def embed_part(indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        part = dataset if len(indices) == len(dataset) else Subset(dataset, indices.tolist())
        outputs, labels = [], []
        for images, targets, *_ in _loader(part, num_workers, device, batch_size=batch_size):
            with _autocast(device, amp):
                outputs.append((forward or model)(_to_device(images, device, channels_last))
                               .float().cpu())
            labels.append(targets)
        return torch.cat(outputs), torch.cat(labels)

    was_training = model.training
    model.eval()
    try:
        return distributed.embed_shards(embed_part, len(dataset))
    finally:
        model.train(was_training)


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _optimizer(model: nn.Module, loss_fn, config: TrainConfig) -> torch.optim.Optimizer:
    head = getattr(model, "embedding", None)
    head_ids = {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if id(p) not in head_ids], "lr": config.lr},
              {"params": [p for p in params if id(p) in head_ids],
               "lr": config.lr * config.embedding_lr_multiplier}]
    if isinstance(loss_fn, nn.Module):  # losses with parameters (A-BIER's regressors, proxies)
        groups.append({"params": [p for p in loss_fn.parameters() if p.requires_grad],
                       "lr": config.lr * getattr(loss_fn, "lr_multiplier", 1.0)})
    if config.weight_decay_form == "l2-weights":
        groups = _l2_weight_groups(model, groups, config.weight_decay)
    groups = [g for g in groups if g["params"]]
    if config.lr_anneal is not None:
        for group in groups:
            group["base_lr"] = group["lr"]
    return torch.optim.Adam(groups, weight_decay=config.weight_decay)


def decayed_weights(model: nn.Module) -> list[nn.Parameter]:
    """The weights of ``model``'s convolution and linear layers: what an L2 loss on the
    weights decays (``weight_decay_form="l2-weights"``)."""
    return [m.weight for m in model.modules()
            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m.weight.requires_grad]


def _l2_weight_groups(model: nn.Module, groups: list[dict], weight_decay: float) -> list[dict]:
    """Split each group into the decayed weights, with Adam's coupled decay 2 * weight_decay
    (the gradient of weight_decay * sum(w^2)), and the rest, undecayed."""
    decayed = {id(w) for w in decayed_weights(model)}
    out = []
    for group in groups:
        for keep, decay in ((True, 2 * weight_decay), (False, 0.0)):
            out.append({**group, "params": [p for p in group["params"]
                                            if (id(p) in decayed) == keep],
                        "weight_decay": decay})
    return out


def anneal_learning_rates(optimizer: torch.optim.Optimizer, config: TrainConfig,
                          step: int) -> None:
    """Set each group's learning rate to its base rate x ``lr_decay ** (step // lr_anneal)``
    before optimisation step ``step`` (counted from 0); nothing when ``lr_anneal`` is None."""
    if config.lr_anneal is None:
        return
    factor = config.lr_decay ** (step // config.lr_anneal)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


#: TrainConfig fields that change only speed or the length of a run, not what a checkpoint holds.
NOT_IDENTITY = ("epochs", "num_workers", "keep_embeddings", "channels_last")


#: TrainConfig fields added after runs were committed, with the values that train as before
#: they existed: an identity leaves them out while they hold these values, so that those runs
#: keep their checkpoints and folders (see ``bierlib.experiments.LATER_SETTINGS``).
LATER_FIELDS = {"weight_decay_form": "adam", "lr_anneal": None, "lr_decay": 0.1,
                "select_on": "test"}


def _comparable(config: TrainConfig) -> dict:
    return {k: v for k, v in dataclasses.asdict(config).items()
            if k not in NOT_IDENTITY and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}


def training_step(model: nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer, scaler,
                  images: torch.Tensor, labels: torch.Tensor, data_extras: dict,
                  config: TrainConfig, device: torch.device) -> torch.Tensor:
    """One optimisation step on a batch already on ``device``; returns the (detached) loss.

    A model may return ``(embeddings, extras)``: the extras go to the loss as keywords, with
    the dataset's per-item ``data_extras``. Under ``torchrun`` the loss sees the global batch
    (:func:`bierlib.distributed.gather_batch`) and ``model`` is the DDP-wrapped one.
    """
    with _autocast(device, config.amp):
        output = model(images)
    embeddings, extras = output if isinstance(output, tuple) else (output, {})
    embeddings, labels, data_extras, extras = distributed.gather_batch(
        embeddings.float(), labels, data_extras, extras)  # the global batch under torchrun
    loss = loss_fn(embeddings, labels, **data_extras, **extras)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def grad_scaler(config: TrainConfig, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for float16 autocast (CUDA without bf16); a no-op otherwise."""
    return torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda"
                                and not torch.cuda.is_bf16_supported())


def train(model: nn.Module, loss_fn: Callable, train_set: Dataset, test_set: Dataset,
          config: TrainConfig | None = None, checkpoint_dir=None, device=None,
          progress: bool = True, callbacks: Sequence[Callable[[dict, nn.Module], None]] = (),
          sampler=None, identity: Mapping | None = None,
          validation_set: Dataset | None = None) -> History:
    """Train ``model`` with ``loss_fn(embeddings, labels)`` and evaluate on ``test_set``.

    Args:
        model: maps images (B, C, H, W) to embeddings (B, D).
        loss_fn: any loss of :mod:`bierlib.losses` (an ``nn.Module`` loss's own
            parameters are trained too, at ``lr`` times the loss's ``lr_multiplier``
            attribute if it has one: the proxy-anchor loss's proxies).
        train_set, test_set: datasets with a ``targets`` (N,) attribute, disjoint classes.
        config: a :class:`TrainConfig`; default ``TrainConfig()``.
        checkpoint_dir: folder for ``last.pt``; resume from it if present.
        device: ``"cuda"``, ``"mps"``, ``"cpu"``; default: the best available.
        progress: show a tqdm progress bar.
        callbacks: called as ``callback(record, model)`` after every epoch.
        sampler: a batch sampler with ``set_epoch(epoch)`` and ``len``; default a
            :class:`~bierlib.sampling.PKSampler` of ``config``'s P x K batches.
        identity: what the checkpoint must have been written for (e.g. a run's whole resolved
            configuration, see :mod:`bierlib.experiments`); default: ``config``'s fields other
            than ``epochs`` and the speed-only ones. A checkpoint written for another identity
            is refused with a ValueError naming the differing fields.
        validation_set: classes held out of ``train_set``'s, evaluated with the test classes
            at every evaluation (metrics recorded as ``val_recall@1``, ...); required by, and
            only allowed with, ``config.select_on == "validation"``.

    A dataset item may be ``(image, label, extras)`` with a dict of per-item extras
    (e.g. divide-and-conquer's cluster id); the batched extras go to the loss as
    keywords, as do those of a model that returns ``(embeddings, extras)``.

    Returns:
        a :class:`History` whose first record (epoch 0) is the untrained model.
    """
    config = config or TrainConfig()
    device = select_device(device) if device is None or isinstance(device, str) else device
    _check_datasets(train_set, test_set, validation_set, config.select_on)
    _place(model, loss_fn, config, device)
    optimizer = _optimizer(model, loss_fn, config)
    identity = _plain_identity(identity if identity is not None else _comparable(config))
    path = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    history, start_epoch, elapsed = History(), 0, 0.0  # elapsed: training seconds so far
    if path is not None and path.is_file():
        start_epoch, history, elapsed = _resume(path, model, loss_fn, optimizer, config, identity,
                                                device)
    if sampler is None:
        sampler = PKSampler(train_set.targets, config.classes_per_batch, config.images_per_class,
                            config.steps_per_epoch, seed=config.seed)
    rank, processes = distributed.world()
    if processes > 1:  # under torchrun: this rank's part of every global batch, a DDP model
        distributed.check_global_batch(config.classes_per_batch, config.images_per_class,
                                       processes)
        sampler = distributed.ShardedBatchSampler(sampler, rank, processes)
    net = distributed.data_parallel(model, device)
    loader = _loader(train_set, config.num_workers, device, batch_sampler=sampler)
    scaler = grad_scaler(config, device)
    if start_epoch == 0:
        _evaluate(model, test_set, validation_set, config, device, history, epoch=0, step=0,
                  loss=float("nan"), seconds=0.0)
    bar = tqdm(total=(config.epochs - start_epoch) * len(sampler),
               disable=not (progress and distributed.is_main()), desc="training", unit="step")
    for epoch in range(start_epoch + 1, config.epochs + 1):
        loss, seconds = _train_epoch(net, loss_fn, optimizer, scaler, loader, sampler, config,
                                     device, epoch, bar)
        elapsed += seconds
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            record = _evaluate(model, test_set, validation_set, config, device, history, epoch,
                               epoch * len(sampler), loss, elapsed)
            bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}", R1=f"{record['recall@1']:.3f}")
        if path is not None:  # one writer; no rank reads on before it is written
            if distributed.is_main():
                atomic_torch_save(_state(model, loss_fn, optimizer, identity, epoch, history,
                                         elapsed), path)
            distributed.barrier()
        for callback in callbacks:
            callback(history.final, model)
    bar.close()
    model.eval()
    return history


def _check_datasets(train_set: Dataset, test_set: Dataset, validation_set: Dataset | None,
                    select_on: str) -> None:
    if (validation_set is None) != (select_on == "test"):
        raise ValueError(f"select_on='validation' needs a validation_set, and a validation_set "
                         f"is evaluated only then; found select_on={select_on!r} and "
                         f"validation_set={'None' if validation_set is None else 'a dataset'}")
    named = [("train_set", train_set), ("test_set", test_set)]
    if validation_set is not None:
        named.append(("validation_set", validation_set))
    for name, ds in named:
        if not hasattr(ds, "targets") or len(ds) == 0:
            raise ValueError(f"{name} must be a non-empty dataset with a `targets` attribute, "
                             f"found {type(ds).__name__} of length {len(ds)}")


def _place(model: nn.Module, loss_fn, config: TrainConfig, device: torch.device) -> None:
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)


def _train_epoch(model, loss_fn, optimizer, scaler, loader, sampler, config: TrainConfig,
                 device: torch.device, epoch: int, bar) -> tuple[float, float]:
    """One epoch of steps; returns the mean loss and the seconds it took."""
    tic, losses = time.perf_counter(), []
    model.train()
    sampler.set_epoch(epoch)
    torch.manual_seed(config.seed * 1_000_003 + epoch)  # augmentation, dropout: resumable
    batches = distributed.rank_batches(loader, config.seed, epoch)
    for i, (images, labels, *data_extras) in enumerate(batches):
        anneal_learning_rates(optimizer, config, (epoch - 1) * len(sampler) + i)
        images, labels = _to_device(images, device, config.channels_last), labels.to(device)
        losses.append(training_step(model, loss_fn, optimizer, scaler, images, labels,
                                    data_extras[0] if data_extras else {}, config, device))
        bar.update()  # the loss stays on the device: no host sync per step
        if len(losses) % 10 == 1:
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1].item():.4f}")
    mean_loss = torch.stack(losses).mean().item()
    if not np.isfinite(mean_loss):
        raise FloatingPointError(f"the loss became {mean_loss} in epoch {epoch}; lower the "
                                 f"learning rate (the checkpoint of epoch {epoch - 1} is kept)")
    return mean_loss, time.perf_counter() - tic


def _evaluate(model, test_set, validation_set, config: TrainConfig, device, history: History,
              epoch: int, step: int, loss: float, seconds: float) -> dict:
    """Evaluate on the test classes (and the validation classes, their metrics prefixed
    ``val_``) and append the record to ``history``. With a validation set the record also
    holds the test classes' own Recall@1 (``per_class_recall@1``, in class order): the
    bootstrap over classes of a run's chosen evaluation needs them."""

    def metrics(dataset, per_class=False):
        emb, labels = embed(model, dataset, device=device, amp=config.amp,
                            num_workers=config.num_workers, channels_last=config.channels_last)

        def scores():
            out = evaluate(emb, labels, config.eval_ks, clustering=config.clustering)
            if per_class:
                out[PER_CLASS] = np.round(per_class_recall(emb, labels), 4).tolist()
            return out

        return emb, distributed.on_main(scores)

    emb, test = metrics(test_set, per_class=validation_set is not None)
    record = {"epoch": epoch, "step": step, "loss": loss, "seconds": seconds, **test}
    if validation_set is not None:
        record.update({VALIDATION_PREFIX + k: v for k, v in metrics(validation_set)[1].items()})
    history.records.append(record)
    if config.keep_embeddings:
        history.embeddings.append(emb.half())
    return record


def _plain_identity(identity: Mapping) -> dict:
    """JSON-like values (tuples as lists) so that a stored identity compares equal to a fresh
    one."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(identity).items()}


def _state(model, loss_fn, optimizer, identity, epoch, history, elapsed) -> dict:
    return {"format": CHECKPOINT_FORMAT, "epoch": epoch, "config": identity, "seconds": elapsed,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "loss_fn": loss_fn.state_dict() if isinstance(loss_fn, nn.Module) else {},
            "records": history.records, "embeddings": history.embeddings}


def differing_fields(stored: Mapping, wanted: Mapping) -> dict:
    """``{field: (stored value, wanted value)}`` for every field where the two differ."""
    return {k: (stored.get(k), wanted.get(k)) for k in sorted(set(stored) | set(wanted))
            if stored.get(k) != wanted.get(k)}


def _resume(path: Path, model, loss_fn, optimizer, config, identity, device
            ) -> tuple[int, History, float]:
    state = torch.load(path, map_location=device, weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} has checkpoint format {state.get('format')}, expected "
                         f"{CHECKPOINT_FORMAT}; delete it to train from scratch")
    diff = differing_fields(state["config"], identity)
    if diff:
        raise ValueError(f"{path} was written for a different configuration (checkpoint vs "
                         f"now: {diff}); nothing was loaded or overwritten: use another folder "
                         "or delete this one")
    if state["epoch"] > config.epochs:
        raise ValueError(f"{path} holds {state['epoch']} epochs, more than epochs={config.epochs}; "
                         "raise epochs or use another checkpoint_dir")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{path} holds a model or optimiser of another shape than the one given "
                         f"({str(err).splitlines()[0]}); use another checkpoint_dir or delete "
                         "it") from err
    if isinstance(loss_fn, nn.Module):
        loss_fn.load_state_dict(state["loss_fn"])
    return state["epoch"], History(state["records"], state["embeddings"]), state["seconds"]
