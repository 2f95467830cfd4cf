"""Run by ``tests/test_distributed.py`` under ``torchrun --nproc_per_node 2`` (gloo, CPU): each
rank exercises :mod:`bierlib.distributed` on its part of fixed data and saves what it got to
``OUT/rank<r>.pt``; the test compares that with one process computing on the whole data."""
import functools
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from bierlib import distributed

SIZES = (3, 5)  # rows per rank: unequal, to exercise the padding of the gather


def data() -> dict:
    """The fixed whole-batch data both the ranks and the test use."""
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(8, 3, 5, 5, generator=g) * 2 + 1,
            "bn_target": torch.randn(8, 3, 5, 5, generator=g),
            "embeddings": torch.randn(sum(SIZES), 4, generator=g),
            "labels": torch.arange(sum(SIZES)) % 3,
            "weight": torch.randn(4, 2, generator=g)}


class Noise(Dataset):
    """Four items, each a random draw: a stand-in for random augmentation."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.rand(())


def embedding_loss(embeddings: torch.Tensor, labels: torch.Tensor,
                   weight: torch.Tensor) -> torch.Tensor:
    """A loss of the whole batch that mixes items (so a per-rank loss could not give it)."""
    similarity = embeddings @ embeddings.T
    same = (labels[:, None] == labels[None, :]).float()
    return ((similarity - same) ** 2).mean() + (embeddings @ weight).pow(2).mean()


def main(out: Path) -> None:
    device = distributed.setup("cpu")
    rank, processes = distributed.world()
    assert processes == 2, processes
    d = data()
    result = {}

    # BatchNorm over the global batch: half the images per rank.
    bn = distributed.synchronise_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)),
                                           device)[0]
    x = d["x"][4 * rank: 4 * rank + 4].clone().requires_grad_()
    y = bn(x)
    (y * d["bn_target"][4 * rank: 4 * rank + 4]).sum().backward()
    result["bn"] = {"type": type(bn).__name__, "y": y.detach(), "x_grad": x.grad,
                    "weight_grad": bn.weight.grad, "running_mean": bn.running_mean.clone(),
                    "running_var": bn.running_var.clone()}

    # The gathered batch: unequal parts, gradient back to each rank's own rows.
    start = sum(SIZES[:rank])
    part = d["embeddings"][start: start + SIZES[rank]].clone().requires_grad_()
    labels = d["labels"][start: start + SIZES[rank]]
    weight = torch.nn.Parameter(d["weight"].clone())
    extras = {"per_item": [part.detach() * 2], "weight": weight}
    emb, lab, gathered_extras = distributed.gather_batch(part, labels, extras)
    loss = embedding_loss(emb, lab, gathered_extras["weight"])
    loss.backward()
    result["gather"] = {"embeddings": emb.detach(), "labels": lab, "loss": loss.detach(),
                        "grad": part.grad, "weight_grad": weight.grad,
                        "per_item": gathered_extras["per_item"][0],
                        "weight_kept": gathered_extras["weight"] is weight}

    # Computed on rank 0 only, received by every rank; shards embedded in order.
    result["on_main"] = distributed.on_main(lambda: {"rank": rank, "value": [1, 2, 3]})
    result["shards"] = distributed.embed_shards(
        lambda idx: (torch.as_tensor(idx, dtype=torch.float32)[:, None].repeat(1, 2),
                     torch.as_tensor(idx)), 7)

    # Augmentation: each rank draws its own, reproducibly; the shared global RNG stays in step.
    torch.manual_seed(0)
    loader = DataLoader(Noise(), batch_size=2)
    draws = torch.cat(list(distributed.rank_batches(loader, seed=0, epoch=1)))
    again = torch.cat(list(distributed.rank_batches(loader, seed=0, epoch=1)))
    workers = DataLoader(Noise(), batch_size=2, num_workers=1,
                         worker_init_fn=functools.partial(distributed.seed_worker, rank=rank))
    result["augmentation"] = {"draws": draws, "again": again, "shared": torch.rand(3),
                              "worker_draws": torch.cat(list(workers))}
    torch.save(result, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
