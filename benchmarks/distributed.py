#!/usr/bin/env python3
"""Training throughput of 1 vs N data-parallel processes (torchrun), as a table.

For each method and each process count, a run of the library's own training step (the
sharded P x K sampler, the DDP model with synchronised BatchNorm, the loss on the gathered
global batch) on the quick profile's Omniglot data, timed after a warm-up:

    python benchmarks/distributed.py [--methods contrastive bier] [--processes 1 2]
        [--steps 30] [--warmup 5] [--device cpu|cuda] [--threads 2] [--options key=value ...]

On the CPU the cores are shared: each of N processes gets ``--threads / N`` torch threads,
so the comparison is the same machine used by one process or by N. On GPUs each process
gets one GPU (``--processes`` at most the number of GPUs). Images/second counts the global
batch (P x K images a step, whatever N is); ``x 1 process`` is the ratio to one process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bierlib import distributed
from bierlib.cli import parse_overrides
from bierlib.experiments import ExperimentConfig
from bierlib.profiles import load_datasets
from bierlib.sampling import PKSampler
from bierlib.training import (_loader, _optimizer, _place, _to_device, grad_scaler,
                              training_step)


def worker(method: str, steps: int, warmup: int, device: str, out: Path,
           options: list[str]) -> None:
    """Time ``steps`` training steps of ``method`` in this process (one rank under torchrun)."""
    device = distributed.setup(device)
    rank, processes = distributed.world()
    config = ExperimentConfig(method, steps_per_epoch=steps + warmup, **parse_overrides(options))
    p = config.resolved_profile()
    train_config = p.train_config(config.seed)
    train_set, _ = load_datasets(p)
    model, loss_fn = config.build()
    _place(model, loss_fn, train_config, device)
    optimizer = _optimizer(model, loss_fn, train_config)
    net = distributed.data_parallel(model, device)
    sampler = PKSampler(train_set.targets, train_config.classes_per_batch,
                        train_config.images_per_class, steps + warmup, seed=0)
    if processes > 1:
        sampler = distributed.ShardedBatchSampler(sampler, rank, processes)
    sampler.set_epoch(1)
    scaler = grad_scaler(train_config, device)
    net.train()
    for i, (images, labels, *extras) in enumerate(_loader(train_set, 0, device,
                                                          batch_sampler=sampler)):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            distributed.barrier()
            tic = time.perf_counter()
        images = _to_device(images, device, train_config.channels_last)
        training_step(net, loss_fn, optimizer, scaler, images, labels.to(device),
                      extras[0] if extras else {}, train_config, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    distributed.barrier()
    seconds = time.perf_counter() - tic
    if distributed.is_main():
        batch = train_config.classes_per_batch * train_config.images_per_class
        out.write_text(json.dumps({"seconds_per_step": seconds / steps,
                                   "images_per_second": batch * steps / seconds,
                                   "batch": batch, "device": str(device)}))
    if processes > 1:
        torch.distributed.destroy_process_group()


def measure(method: str, processes: int, args) -> dict:
    """One timed run in fresh processes (one per rank)."""
    env = dict(os.environ)
    if args.device != "cuda":
        env["OMP_NUM_THREADS"] = str(max(1, args.threads // processes))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                     "--nproc_per_node", str(processes)] if processes > 1 else [sys.executable])
        command = [*launcher, __file__, "--worker", method, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--device", args.device, "--out", str(out),
                   "--options", *args.options]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["contrastive", "bier"])
    parser.add_argument("--processes", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="CPU threads shared by the processes (default: every core)")
    parser.add_argument("--options", nargs="*", default=[], metavar="key=value",
                        help="settings of every run, as on the command line (e.g. "
                             "embedding_dim=512 frozen_batchnorm=true)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.warmup, args.device, args.out, args.options)
        return
    print(f"{'method':<20}{'processes':>10}{'threads each':>14}{'global batch':>14}"
          f"{'s/step':>9}{'images/s':>10}{'x 1 process':>13}")
    for method in args.methods:
        base = None
        for n in args.processes:
            r = measure(method, n, args)
            base = base or (r["images_per_second"] if n == 1 else None)
            threads = "1 GPU" if args.device == "cuda" else str(max(1, args.threads // n))
            ratio = f"{r['images_per_second'] / base:.2f}" if base else "-"
            print(f"{method:<20}{n:>10}{threads:>14}{r['batch']:>14}"
                  f"{r['seconds_per_step']:>9.3f}{r['images_per_second']:>10.0f}{ratio:>13}")


if __name__ == "__main__":
    main()
