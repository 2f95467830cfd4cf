"""Divide and conquer the embedding space (Sanakoyeu, Tschernezki, Büchler & Ommer, CVPR 2019).

The data *and* the embedding are split into M parts (M learners; the paper's K):

1. every ``recluster_every`` epochs, k-means (faiss) on the L2-normalised backbone
   features cuts the training images into M clusters; cluster ids are matched to
   the previous clustering with the Hungarian algorithm (scipy's
   ``linear_sum_assignment`` on the overlap counts), so slice m keeps seeing
   roughly the same part of the data;
2. the D-dimensional embedding layer is cut into M slices of D / M; a batch is
   drawn from one cluster at a time, clusters taking turns, and trains only its
   slice (L2-normalised) with the margin loss (:mod:`bierlib.losses.margin`);
3. from ``finetune_epoch`` on, the whole embedding is trained on all the data.

Optionally (``whole_embedding_epoch``), the whole embedding already trains on the clusters'
batches from an earlier epoch on: the official code's entry point (``experiment.py``) runs
the slice loss until epoch ``finetune_epoch * 8 / 19`` (80 of its 200), the whole embedding
on the clusters' batches until ``finetune_epoch`` (190), then on all the data. The other
settings that the official code fixes are options here too (``cluster_images``, ``kmeans``,
``epoch_length``); :mod:`bierlib.deviations` lists them.

At test time each slice is L2-normalised and the slices are concatenated with
equal weight (:func:`bierlib.boosting.ensemble_embedding` with equal sizes).

:func:`train_divide_and_conquer` runs this schedule as a sequence of
:func:`bierlib.training.train` calls on one checkpoint folder: the model, the
optimiser and the history carry over between stages, each clustering is saved
(atomically) before its stage trains, and an interrupted run resumes where it
stopped.
"""
from __future__ import annotations

import dataclasses
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.utils.data import Dataset, Sampler

from . import distributed
from .boosting import EnsembleEmbedder
from .evaluation import kmeans as kmeans_ids
from .losses.divide import FINETUNE, DivideAndConquerLoss
from .sampling import PKSampler
from .training import History, TrainConfig, embed, train
from .utils import atomic_torch_save, check_labels, check_positive_int, select_device

def cluster_data(features, num_clusters: int, seed: int = 0) -> np.ndarray:
    """Cluster ids (N,) of k-means on the L2-normalised ``features`` (N, F)."""
    return kmeans_ids(features, check_positive_int(num_clusters, "num_clusters"),
                      normalize=True, seed=seed)


def match_clusters(previous, current, num_clusters: int) -> np.ndarray:
    """Rename the ids of ``current`` (N,) so that they overlap ``previous`` (N,) the most.

    The renaming is the maximum-weight matching of the M x M table of overlap counts
    (Hungarian algorithm), so re-clustering does not hand a slice someone else's data.
    """
    previous = check_labels(previous, "previous").numpy()
    current = check_labels(current, "current", length=len(previous)).numpy()
    for name, ids in (("previous", previous), ("current", current)):
        if len(ids) and (ids.min() < 0 or ids.max() >= num_clusters):
            raise ValueError(f"{name} cluster ids must lie in [0, {num_clusters}), found "
                             f"[{ids.min()}, {ids.max()}]")
    overlap = np.zeros((num_clusters, num_clusters), dtype=np.int64)
    np.add.at(overlap, (previous, current), 1)
    old, new = linear_sum_assignment(overlap, maximize=True)
    rename = np.empty(num_clusters, dtype=np.int64)
    rename[new] = old
    return rename[current]


def cluster_statistics(clusters, labels) -> dict[str, object]:
    """Sizes (images and classes) of each cluster and how well clusters keep classes together:
    ``class_consistency`` is the mean over classes of the fraction of a class's images that
    lie in its most common cluster (1 = no class is split)."""
    labels = check_labels(labels).numpy()
    clusters = check_labels(clusters, "clusters", length=len(labels)).numpy()
    ids = np.unique(clusters)
    counts = np.array([[np.sum((clusters == k) & (labels == c)) for k in ids]
                       for c in np.unique(labels)])
    return {"clusters": ids.tolist(), "images": counts.sum(0).tolist(),
            "classes": (counts > 0).sum(0).tolist(),
            "class_consistency": float((counts.max(1) / counts.sum(1)).mean())}


class ClusteredDataset(Dataset):
    """Wraps a dataset so that item i is ``(image, label, {"cluster": clusters[i]})``;
    the training loop passes the batch's cluster ids to the loss."""

    def __init__(self, dataset: Dataset, clusters=None):
        self.dataset, self.targets = dataset, dataset.targets
        self.clusters = np.zeros(len(dataset), dtype=np.int64) if clusters is None else clusters

    @property
    def clusters(self) -> np.ndarray:
        return self._clusters

    @clusters.setter
    def clusters(self, clusters) -> None:
        self._clusters = np.asarray(check_labels(clusters, "clusters", length=len(self.dataset)))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index][:2]
        return image, label, {"cluster": int(self._clusters[index])}


class ClusterBatchSampler(Sampler[list[int]]):
    """P x K batches drawn from one cluster at a time, clusters taking turns.

    Within a cluster only classes with at least two images there are used (a class
    seen once in a cluster has no positive pair in it), and P shrinks to the number
    of such classes when the cluster has fewer. A cluster with fewer than two usable
    classes (no negatives) is skipped with a warning. Deterministic in (seed, epoch).
    ``num_batches`` None: (number of clusters) x (usable images of the largest cluster //
    (P x K)), the epoch of divide and conquer's official code.
    """

    def __init__(self, labels, clusters, classes_per_batch: int, images_per_class: int,
                 num_batches: int | None, seed: int = 0):
        labels = check_labels(labels).numpy()
        clusters = check_labels(clusters, "clusters", length=len(labels)).numpy()
        if num_batches is not None:
            check_positive_int(num_batches, "num_batches")
        self.cluster_ids, self.members, n_classes = [], [], []
        for k in np.unique(clusters):
            idx = np.flatnonzero(clusters == k)
            classes, counts = np.unique(labels[idx], return_counts=True)
            usable = classes[counts >= 2]
            if len(usable) < 2:
                warnings.warn(f"cluster {k} has {len(usable)} class(es) with two or more images; "
                              "it cannot form negative pairs and is skipped this stage",
                              stacklevel=2)
                continue
            self.cluster_ids.append(int(k))
            self.members.append(idx[np.isin(labels[idx], usable)])
            n_classes.append(len(usable))
        if not self.members:
            raise ValueError("no cluster has two classes with two or more images each: "
                             "use fewer clusters")
        turns = len(self.members)  # cluster i serves batches i, i + turns, i + 2 turns, ...
        batch = classes_per_batch * images_per_class
        self.num_batches = (num_batches if num_batches is not None
                            else turns * max(1, max(len(m) for m in self.members) // batch))
        self.samplers = [PKSampler(labels[idx], min(classes_per_batch, n), images_per_class,
                                   max(1, -(-(self.num_batches - i) // turns)),
                                   seed=seed * 1009 + k + 1)
                         for i, (idx, n, k)
                         in enumerate(zip(self.members, n_classes, self.cluster_ids))]

    def set_epoch(self, epoch: int) -> None:
        for sampler in self.samplers:
            sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        streams = [iter(s) for s in self.samplers]
        for b in range(self.num_batches):
            i = b % len(streams)
            yield self.members[i][next(streams[i])].tolist()


@dataclasses.dataclass
class DivideAndConquerResult:
    model: EnsembleEmbedder  # eval mode: equal-weight concatenation of normalised slices
    history: History
    # {"epoch": e, "clusters": (N,) ids[, "features": (N, F)]}; -1: fine-tuning
    clusterings: list[dict]


@dataclasses.dataclass(frozen=True)
class Stage:
    """Epochs ``start`` to ``end`` trained on one clustering (or fine-tuning on all data);
    ``whole``: the clusters' batches train the whole embedding, not their slices."""

    start: int
    end: int
    finetune: bool
    whole: bool = False


def stage_starts(epochs: int, recluster_every: int, finetune_epoch: int,
                 whole_embedding_epoch: int | None = None) -> list[int]:
    """First epochs of the stages: clusterings at 0, T, 2T, ... before ``finetune_epoch``
    (and one at ``whole_embedding_epoch`` if it is not among them), then the fine-tuning stage
    (when ``finetune_epoch < epochs``)."""
    starts = set(range(0, finetune_epoch, recluster_every)) or {0}
    if whole_embedding_epoch is not None and whole_embedding_epoch < finetune_epoch:
        starts.add(whole_embedding_epoch)
    return sorted(starts) + ([finetune_epoch] if finetune_epoch < epochs else [])


def schedule(epochs: int, recluster_every: int, finetune_epoch: int,
             whole_embedding_epoch: int | None = None) -> list[Stage]:
    """The stages of a run of ``epochs`` epochs (see :func:`stage_starts`)."""
    whole = finetune_epoch if whole_embedding_epoch is None else whole_embedding_epoch
    starts = stage_starts(epochs, recluster_every, finetune_epoch, whole_embedding_epoch)
    return [Stage(start, end, start >= finetune_epoch, whole <= start < finetune_epoch)
            for start, end in zip(starts, starts[1:] + [epochs])]


#: Divide and conquer's choices of clustering and epoch length (see
#: :func:`train_divide_and_conquer`).
CLUSTER_IMAGES = ("train", "evaluation")
KMEANS = ("k-means++", "faiss")
EPOCH_LENGTHS = ("dataset", "largest-cluster")


def _checkpoint_epoch(path: Path) -> int:
    if not path.is_file():
        return 0
    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])


def train_divide_and_conquer(net: nn.Module, train_set: Dataset, test_set: Dataset,
                             config: TrainConfig, loss_fn: DivideAndConquerLoss | None = None,
                             recluster_every: int = 2, finetune_epoch: int | None = None,
                             checkpoint_dir=None, device=None, progress: bool = True,
                             keep_features: bool = False, identity=None,
                             whole_embedding_epoch: int | None = None,
                             cluster_images: str = "train", kmeans: str = "k-means++",
                             epoch_length: str = "dataset",
                             validation_set: Dataset | None = None) -> DivideAndConquerResult:
    """Train ``net`` (with ``features`` and an ``embedding`` Linear, D divisible by M) by
    divide and conquer with ``loss_fn`` (default ``DivideAndConquerLoss(4)``: M = 4, margin
    0.2, beta 1.2). With M = 1 this is plain margin-loss training.

    Args:
        recluster_every: T, epochs between clusterings.
        finetune_epoch: from this epoch on the whole embedding trains on all the data; default
            half of ``config.epochs`` (our choice; the official ``experiment.py`` passes 190
            of 200). ``config.epochs``: no fine-tuning.
        whole_embedding_epoch: from this epoch until ``finetune_epoch`` the clusters' batches
            train the whole embedding; default ``finetune_epoch`` (the slices train until
            fine-tuning). The official code: ``finetune_epoch * 8 / 19``.
        cluster_images: cluster the features of the training images as training sees them
            (``"train"``, augmented where the dataset augments) or as evaluation sees them
            (``"evaluation"``, the dataset's ``evaluation_view()``: the official code).
        kmeans: ``"k-means++"`` (50 iterations from k-means++ centres, seed = run seed +
            stage start) or ``"faiss"`` (faiss's own: 100 iterations from random points, one
            run, fixed seed 1234: the official code).
        epoch_length: ``"dataset"`` (``config.steps_per_epoch``, default N / (P x K) batches
            shared by the clusters) or ``"largest-cluster"`` (M x largest cluster / (P x K),
            the official code; then ``config.lr_anneal`` must be None).
        checkpoint_dir: resumable from there (a temporary folder when None).
        keep_features: store the clustered features (float16) with each clustering.
        identity, validation_set: as in :func:`~bierlib.training.train`.
    """
    loss_fn = loss_fn if loss_fn is not None else DivideAndConquerLoss(4)
    if checkpoint_dir is None and distributed.world()[1] > 1:
        raise ValueError("under torchrun, divide and conquer needs a checkpoint_dir that every "
                         "process can read (its stages hand the model over through it)")
    check_positive_int(recluster_every, "recluster_every")
    finetune_epoch = config.epochs // 2 if finetune_epoch is None else finetune_epoch
    if not 1 <= finetune_epoch <= config.epochs:
        raise ValueError(f"finetune_epoch must lie in [1, epochs={config.epochs}], "
                         f"found {finetune_epoch}")
    if whole_embedding_epoch is not None and not 0 <= whole_embedding_epoch <= finetune_epoch:
        raise ValueError(f"whole_embedding_epoch must lie in [0, finetune_epoch="
                         f"{finetune_epoch}], found {whole_embedding_epoch}")
    for name, value, choices in (("cluster_images", cluster_images, CLUSTER_IMAGES),
                                 ("kmeans", kmeans, KMEANS),
                                 ("epoch_length", epoch_length, EPOCH_LENGTHS)):
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, found {value!r}")
    if epoch_length == "largest-cluster" and config.lr_anneal is not None:
        raise ValueError("lr_anneal counts steps of equal epochs; epoch_length="
                         "'largest-cluster' changes the epoch's length at every clustering")
    model = EnsembleEmbedder(net, loss_fn.slice_sizes(net.embedding.out_features))
    device = select_device(device) if device is None or isinstance(device, str) else device
    model.to(device)
    steps = config.steps_per_epoch or max(1, len(train_set) // (config.classes_per_batch *
                                                                config.images_per_class))
    sampler_steps = steps if epoch_length == "dataset" else None
    config = dataclasses.replace(config, steps_per_epoch=steps)
    data = ClusteredDataset(train_set)

    def train_to(epoch: int, sampler=None, show: bool = False) -> History:
        """Train (or, where the checkpoint already is there, load) the model up to ``epoch``."""
        return train(model, loss_fn, data, test_set, dataclasses.replace(config, epochs=epoch),
                     folder, device, progress and show, sampler=sampler, identity=identity,
                     validation_set=validation_set)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(checkpoint_dir if checkpoint_dir is not None else scratch)
        folder.mkdir(parents=True, exist_ok=True)
        store = folder / "clusterings.pt"
        clusterings = torch.load(store, weights_only=True) if store.is_file() else []
        stages = schedule(config.epochs, recluster_every, finetune_epoch, whole_embedding_epoch)
        clustered = train_set if cluster_images == "train" else train_set.evaluation_view()
        done = _checkpoint_epoch(folder / "last.pt")
        for s, stage in enumerate(stages):
            if stage.end <= done and stage is not stages[-1]:
                continue  # finished before an interruption; the last stage loads the model
            if s == len(clusterings):  # this stage's clustering is not made yet
                if stage.start > 0:
                    train_to(stage.start)  # loads the model of the previous stage's end
                clusterings.append(_clustering(model, clustered, config, stage,
                                               loss_fn.num_learners,
                                               clusterings[-1] if clusterings else None,
                                               keep_features, device, kmeans))
                if distributed.is_main():
                    atomic_torch_save(clusterings, store)
                distributed.barrier()
            clusters = clusterings[s]["clusters"]
            # the loss reads each item's cluster: FINETUNE makes it train the whole embedding
            data.clusters = torch.full_like(clusters, FINETUNE) if stage.whole else clusters
            sampler = ClusterBatchSampler(train_set.targets, clusters, config.classes_per_batch,
                                          config.images_per_class, sampler_steps,
                                          seed=config.seed + stage.start)
            history = train_to(stage.end, sampler, show=stage.end > done)
    model.eval()
    return DivideAndConquerResult(model, history, clusterings)


def _clustering(model: EnsembleEmbedder, train_set: Dataset, config: TrainConfig, stage: Stage,
                k: int, previous: dict | None, keep_features: bool, device,
                kmeans: str = "k-means++") -> dict:
    """The clustering a stage trains on: k-means on the backbone features now, its ids matched
    to ``previous``; every item ``FINETUNE`` for the fine-tuning stage."""
    if stage.finetune or k == 1:  # nothing to cluster
        ids = torch.full((len(train_set),), FINETUNE if stage.finetune else 0, dtype=torch.int64)
        return {"epoch": stage.start, "clusters": ids}
    features, _ = embed(model, train_set, device=device, amp=config.amp,
                        num_workers=config.num_workers, channels_last=config.channels_last,
                        forward=model.net.features)
    if kmeans == "faiss":  # faiss's defaults: random initial points, one run, seed 1234
        def run():
            return kmeans_ids(features, k, normalize=True, seed=1234, niter=100,
                              plusplus_limit=0)
    else:
        def run():
            return cluster_data(features, k, seed=config.seed + stage.start)
    ids = distributed.on_main(run)
    if previous is not None:
        ids = match_clusters(previous["clusters"], ids, k)
    record = {"epoch": stage.start, "clusters": torch.as_tensor(ids, dtype=torch.int64)}
    if keep_features:
        record["features"] = features.half()
    return record
