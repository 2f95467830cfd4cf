#!/usr/bin/env python3
"""Forward + backward time of bierlib's losses vs pytorch-metric-learning's and bare cdist.

For each batch size B (D = 512, P x K batches with K = 4) it times, in one process,
one forward and backward pass of:

* ``cdist``: ``torch.cdist(x, x).sum()`` -- the floor every pair loss pays;
* bierlib's contrastive (pml form), triplet and lifted structured losses (the
  last on normalised embeddings, the formula pytorch-metric-learning implements);
* pytorch-metric-learning's ContrastiveLoss, TripletMarginLoss, LiftedStructureLoss.

It prints the median of repeated runs (at least 3, more while the budget per cell
lasts) and the ratios ours / cdist and PML / ours.

    python benchmarks/losses.py [--sizes 64 128 256 512] [--budget 2.0] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from bierlib.losses import contrastive_loss, lifted_structured_loss, triplet_loss


def timed(fn, x, y, budget: float, min_runs: int = 3, max_runs: int = 200) -> float:
    """Median seconds of ``fn(x, y).backward()`` over repeated runs (after one warm-up)."""
    fn(x, y).backward()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < budget and len(times) < max_runs):
        x.grad = None
        tic = time.perf_counter()
        fn(x, y).backward()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per cell")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from pytorch_metric_learning import losses as pml

    ours = {
        "contrastive": lambda x, y: contrastive_loss(x, y, margin=1.0, form="pml"),
        "triplet": lambda x, y: triplet_loss(x, y, margin=0.2),
        "lifted": lambda x, y: lifted_structured_loss(x, y, margin=1.0, normalize=True),
    }
    theirs = {
        "contrastive": pml.ContrastiveLoss(pos_margin=0, neg_margin=1),
        "triplet": pml.TripletMarginLoss(margin=0.2),
        "lifted": pml.LiftedStructureLoss(neg_margin=1, pos_margin=0),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, D = {args.dim}, "
          "median seconds of one forward + backward")
    header = (f"{'B':>5} {'loss':<12} {'cdist':>9} {'bierlib':>9} {'PML':>9} {'ours/cdist':>11} "
              f"{'PML/ours':>9}")
    print(header)
    print("-" * len(header))
    for b in args.sizes:
        g = torch.Generator().manual_seed(b)
        x = torch.randn(b, args.dim, generator=g).requires_grad_()
        y = torch.arange(b) // 4  # P x K batch, K = 4
        floor = timed(lambda x, y: torch.cdist(x, x).sum(), x, y, args.budget)
        for name in ours:
            a = timed(ours[name], x, y, args.budget)
            p = timed(theirs[name], x, y, args.budget, min_runs=1 if b >= 512 else 3)
            print(f"{b:>5} {name:<12} {floor:>9.5f} {a:>9.5f} {p:>9.5f} {a / floor:>11.1f} "
                  f"{p / a:>9.1f}")


if __name__ == "__main__":
    main()
