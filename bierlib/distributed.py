"""Data-parallel training with ``torchrun``: N processes compute what one process computes.

``torchrun --nproc_per_node N -m bierlib.cli --config ...`` starts N processes; each trains a
copy of the model wrapped in :class:`torch.nn.parallel.DistributedDataParallel` (NCCL on
GPUs, gloo on CPUs), which averages the gradients. What this module adds keeps the paper's
batch semantics:

* **One global batch.** :class:`ShardedBatchSampler` cuts every P x K batch of the run's
  sampler into N contiguous parts, one per rank; since the sampler lists each class's K
  images together, the ranks see disjoint classes whenever N divides P. The batches still
  depend only on ``(seed, epoch)``, so resumption stays exact.
* **Losses on the gathered batch.** :func:`gather_batch` all-gathers the embeddings (keeping
  the gradient of every rank's part), the
  labels and the per-item extras, so every rank computes the loss of the whole global batch.
  The gathered tensor's backward sums the gradients every rank sends to a part, N times the
  loss's gradient, and DDP's average divides by N: the gradient is the one-process gradient.
  Losses with parameters (A-BIER's regressors) see identical inputs on every rank and so
  compute identical gradients without any communication.
* **Batch statistics of the global batch.** :func:`synchronise_batchnorm` replaces the
  trainable BatchNorm layers by ``torch.nn.SyncBatchNorm`` on GPUs; torch's refuses CPU
  tensors, so CPU processes get :class:`GlobalBatchNorm2d`, the same two-pass statistics
  all-reduced with gloo.
* **Shared randomness, own augmentation.** Every rank seeds the global RNG alike each epoch,
  so that whatever draws on the gathered batch (the margin loss's negative sampling) draws
  the same on every rank; :func:`rank_batches` fetches each batch under a random state of
  its own rank (and :func:`seed_worker` seeds data-loading workers by rank), so that the
  ranks do not crop and flip their images alike.
* **One evaluation, one clustering, one writer.** :func:`embed_shards` embeds a part of the
  dataset per rank and gathers them in order; :func:`on_main` computes on rank 0 (faiss
  metrics, divide and conquer's k-means) and broadcasts the result; checkpoints, metrics and
  progress bars are rank 0's (:func:`is_main`), followed by a :func:`barrier`.

Nothing here runs in a single process: every function is the identity (or the plain
computation) when no process group is initialised, so one-process runs are unchanged.
"""
from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process; ``(0, 1)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one that writes files and shows progress."""
    return world()[0] == 0


def launched_processes() -> int:
    """How many processes ``torchrun`` started (its ``WORLD_SIZE``); 1 without ``torchrun``."""
    value = os.environ.get("WORLD_SIZE", "1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"WORLD_SIZE must be a positive integer (torchrun sets it), "
                         f"found {value!r}")
    return int(value)


def check_global_batch(classes_per_batch: int, images_per_class: int, processes: int) -> None:
    """Refuse a global batch of P x K images that ``processes`` ranks cannot share as disjoint
    classes: N must divide P (so N <= P). Raised before any process trains."""
    if processes > 1 and classes_per_batch % processes:
        raise ValueError(
            f"the global batch of classes_per_batch={classes_per_batch} classes x "
            f"images_per_class={images_per_class} images cannot be split into {processes} "
            f"processes of whole classes: classes_per_batch must be a multiple of the number "
            f"of processes (and at least as large); change classes_per_batch or --nproc_per_node")


def setup(device: str | None = None) -> torch.device:
    """Join the process group ``torchrun`` describes (its environment variables) and return
    this rank's device: ``cuda:LOCAL_RANK`` with NCCL where CUDA is available (and ``device``
    is not "cpu"), else the CPU with gloo. Without ``torchrun`` (WORLD_SIZE unset or 1) nothing
    is initialised and ``device`` is returned as given (None: the best available)."""
    from .utils import select_device

    if launched_processes() == 1 or (dist.is_available() and dist.is_initialized()):
        return select_device(device)
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if device is not None and device.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"torchrun training runs on cuda (NCCL) or cpu (gloo), found {device!r}")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
        return torch.device("cuda", local)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if world()[1] > 1:
        dist.barrier()


def on_main(compute: Callable[[], object]) -> object:
    """``compute()`` on rank 0, its (picklable) result broadcast to every rank."""
    if world()[1] == 1:
        return compute()
    box = [compute() if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class ShardedBatchSampler(Sampler[list[int]]):
    """This rank's contiguous part of every batch of ``sampler`` (a batch sampler with
    ``set_epoch``), the parts as equal as possible (sizes differ by at most one)."""

    def __init__(self, sampler, rank: int, processes: int):
        if not 0 <= rank < processes:
            raise ValueError(f"rank must lie in [0, {processes}), found {rank}")
        self.sampler, self.rank, self.processes = sampler, rank, processes

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler:
            if len(batch) < self.processes:
                raise ValueError(f"a batch of {len(batch)} images cannot feed {self.processes} "
                                 "processes; use fewer processes or larger batches")
            yield np.array_split(np.asarray(batch), self.processes)[self.rank].tolist()


def _rank_seed(*key: int) -> int:
    return int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0])


def rank_batches(loader, seed: int, epoch: int) -> Iterator:
    """The batches of ``loader``, each fetched under a random state of this rank's own, from
    ``(seed, epoch, rank, step)``: what the data pipeline draws (random crops, flips) differs
    between ranks and stays resumable, while the global RNG, shared by the ranks, is left as
    a single process leaves it. The batches of ``loader`` unchanged in a single process."""
    rank, processes = world()
    batches = iter(loader)  # draws the workers' base seed from the global RNG, as one process
    if processes == 1:
        yield from batches
        return
    for step in range(len(loader)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_rank_seed(seed, epoch, rank, step))
            batch = next(batches)
        yield batch


def seed_worker(worker: int, rank: int) -> None:
    """``worker_init_fn`` (with ``functools.partial(seed_worker, rank=rank)``) for the
    data-loading workers of a rank: their torch, numpy and ``random`` seeds depend on the rank
    too (a DataLoader gives every rank's workers the same seeds)."""
    worker_seed = _rank_seed(torch.initial_seed(), rank)  # initial_seed: base seed + worker
    torch.manual_seed(worker_seed)
    np.random.seed(worker_seed % 2**32)
    random.seed(worker_seed)


class _AllGather(torch.autograd.Function):
    """All-gather whose backward hands each rank the sum, over the ranks, of the gradients
    of its part (``torch.distributed.nn.functional.all_gather`` does this but is deprecated)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(world()[1])]
        dist.all_gather(parts, tensor.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[world()[0]]


class _AllReduce(torch.autograd.Function):
    """Sum over the ranks; the gradient is summed over the ranks too."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _sizes(length: int, device: torch.device) -> list[int]:
    """Every rank's ``length``, in rank order."""
    size = torch.tensor([length], device=device)
    sizes = [torch.empty_like(size) for _ in range(world()[1])]
    dist.all_gather(sizes, size)
    return [int(s) for s in sizes]


def _gather(tensor: torch.Tensor, differentiable: bool, sizes: list[int]) -> torch.Tensor:
    """Every rank's ``tensor`` (``sizes[r]`` rows on rank r) concatenated in rank order."""
    padding = [0, 0] * (tensor.ndim - 1) + [0, max(sizes) - len(tensor)]  # last dim first
    padded = torch.nn.functional.pad(tensor, padding)
    if differentiable:
        parts = _AllGather.apply(padded)
    else:
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


def _gather_items(value, sizes: list[int], device: torch.device):
    """Gather ``value`` if it holds one entry per item of the local batch (a tensor, not a
    parameter, with this rank's number of rows in ``sizes``, or a list/tuple/dict of them) on
    ``device``; leave it otherwise."""
    if isinstance(value, (list, tuple)):
        return type(value)(_gather_items(v, sizes, device) for v in value)
    if isinstance(value, dict):
        return {k: _gather_items(v, sizes, device) for k, v in value.items()}
    if (isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter)
            and value.ndim >= 1 and value.shape[0] == sizes[world()[0]]):
        return _gather(value.to(device), value.requires_grad, sizes)
    return value


def gather_batch(embeddings: torch.Tensor, labels: torch.Tensor, *extras):
    """The global batch: ``(embeddings, labels, *extras)`` of every rank concatenated in rank
    order; gradients flow back to each rank's own part. Extras (dicts of keyword arguments of
    the loss) have their per-item tensors gathered and everything else (e.g. a weight
    matrix) kept. Unchanged in a single process."""
    if world()[1] == 1:
        return (embeddings, labels, *extras)
    device = embeddings.device  # NCCL gathers on the GPU only
    sizes = _sizes(len(embeddings), device)
    return (_gather(embeddings, True, sizes), _gather(labels.to(device), False, sizes),
            *(_gather_items(e, sizes, device) for e in extras))


def embed_shards(embed_part: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]],
                 length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``embed_part(indices)`` -> (embeddings, labels) on this rank's contiguous part of
    ``range(length)``, gathered in order on every rank: the result of one process embedding
    everything."""
    rank, processes = world()
    if processes == 1:
        return embed_part(np.arange(length))
    emb, labels = embed_part(np.array_split(np.arange(length), processes)[rank])
    device = torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")
    sizes = _sizes(len(emb), device)
    return (_gather(emb.to(device), False, sizes).cpu(),
            _gather(labels.to(device), False, sizes).cpu())


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the global batch for CPU processes (``torch.nn.SyncBatchNorm`` takes
    GPU tensors only): mean, then variance around it (two passes, as one process computes
    them), each summed over the ranks with the autograd-aware all-reduce. In eval mode, or
    without a process group, it is ``BatchNorm2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and world()[1] > 1):
            return super().forward(x)
        dims, shape = [0, 2, 3], (1, -1, 1, 1)
        sums = _AllReduce.apply(torch.cat([x.sum(dims), x.new_tensor([x.numel() / x.shape[1]])]))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        centred = x - mean.view(shape)
        var = _AllReduce.apply((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = (1 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(unbiased.detach(), factor)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def synchronise_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace, in place, every trainable ``BatchNorm2d`` of ``model`` (not a frozen one, not
    one already replaced) by ``SyncBatchNorm`` on CUDA or :class:`GlobalBatchNorm2d` on the
    CPU, sharing its parameters and buffers; returns ``model``."""
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            if device.type == "cuda":
                new = nn.SyncBatchNorm.convert_sync_batchnorm(child)
            else:
                new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum,
                                        child.affine, child.track_running_stats)
                new.load_state_dict(child.state_dict())
                if child.affine:
                    new.weight, new.bias = child.weight, child.bias
            new.train(child.training)
            setattr(model, name, new)
        else:
            synchronise_batchnorm(child, device)
    return model


def data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` wrapped for this process group (BatchNorm synchronised, then
    ``DistributedDataParallel``); ``model`` itself in a single process."""
    if world()[1] == 1:
        return model
    synchronise_batchnorm(model, device)
    ids = [device.index] if device.type == "cuda" else None
    # BatchNorm's running statistics come from the global batch, the same on every rank:
    # nothing to broadcast before each forward pass
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)
