#!/usr/bin/env python3
"""Training throughput of the paper setups on synthetic JPEGs (images/second, peak GPU memory).

Writes synthetic JPEGs with CUB-200-2011's typical geometry (long side 500 px, aspect
ratio 0.66-1; noise plus shapes, so that JPEG decoding costs what it costs on photos)
into a temporary folder laid out like a fetched CUB, then measures in one process:

* ``loader``: the data pipeline alone (decode, resize 256, random crop 224, flip,
  normalise; P x K batches; ``--workers`` processes, pinned memory);
* for each configuration of ``configs/paper`` given with ``--configs``: optimisation
  steps on one batch kept on the device (the model's compute alone) and steps fed
  by the loader (end to end). Each method runs next to its plain counterpart --
  the same backbone and embedding size without the method's head -- so the table
  shows what the head costs: ``bier``/``abier`` vs ``binomial`` (one learner),
  ``divide_and_conquer`` vs ``margin`` (K = 1).

Models are randomly initialised (``pretrained=False``): the speed is the same.

    python benchmarks/paper_throughput.py [--device cuda] [--steps 20] [--workers 8]
        [--configs bier_cub200 abier_cub200 dc_cub200] [--batch-scale 1.0]

On a CPU use tiny settings, e.g. ``--image-size 64 --steps 2 --images 64 --batch-scale 0.25``.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from bierlib.boosting import EnsembleEmbedder
from bierlib.data import CUB200
from bierlib.divide import ClusteredDataset
from bierlib.losses import DivideAndConquerLoss
from bierlib.sampling import PKSampler
from bierlib.cli import load_config
from bierlib.training import _loader, _optimizer, _to_device, grad_scaler, training_step
from bierlib.utils import select_device

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "paper"
PLAIN = {"bier": "binomial", "abier": "binomial", "divide_and_conquer": "margin"}


def synthetic_cub(root: Path, n_images: int, seed: int = 0) -> Path:
    """A fetched-CUB folder of ``n_images`` synthetic JPEGs in 100 train classes."""
    rng = np.random.default_rng(seed)
    base = root / "cub200"
    rows = []
    for i in range(n_images):
        cls = 1 + i % 100
        w = 500
        h = int(w * rng.uniform(0.66, 1.0))
        if rng.random() < 0.5:
            w, h = h, w
        pixels = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).resize((w, h), Image.BILINEAR)
        draw = ImageDraw.Draw(image)
        for _ in range(5):
            x, y = rng.integers(0, w), rng.integers(0, h)
            draw.ellipse((x, y, x + rng.integers(20, 200), y + rng.integers(20, 200)),
                         fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        rel = f"images/{cls:03d}/{i}.jpg"
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        image.save(base / rel, quality=90)
        rows.append((rel, cls, "-"))
    with open(base / "index.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "class", "subset"), *rows])
    (base / "COMPLETE.json").write_text(json.dumps({"synthetic": n_images}))
    return root


def steps_per_second(step, steps: int, sync) -> float:
    step()  # warm-up: cuDNN autotuning, allocator
    step()
    sync()
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return steps / (time.perf_counter() - tic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--configs", nargs="+",
                        default=["lifted_cub200", "bier_cub200", "abier_cub200", "dc_cub200"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-scale", type=float, default=1.0,
                        help="scale P (classes per batch)")
    args = parser.parse_args()
    device = select_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = (torch.cuda.get_device_name() if device.type == "cuda"
            else f"cpu ({torch.get_num_threads()} threads)")
    print(f"device: {name}; torch {torch.__version__}; image size {args.image_size}; "
          f"{args.workers} loader workers")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = CUB200(synthetic_cub(Path(tmp), args.images), "train", image_size=args.image_size)
        todo = []
        for stem in args.configs:
            config = load_config(CONFIGS / f"{stem}.yaml",
                                 {"pretrained": False, "image_size": args.image_size})
            plain = config.with_method(PLAIN[config.method]) if config.method in PLAIN else None
            todo += [c for c in (plain, config) if c is not None and c not in todo]
        loaded = None
        for config in todo:
            p = config.resolved_profile()
            tc = dataclasses.replace(p.train_config(config.seed), num_workers=args.workers)
            pk = max(2, round(tc.classes_per_batch * args.batch_scale)), tc.images_per_class
            sampler = PKSampler(data.targets, *pk, num_batches=10 ** 6)
            if loaded != pk:  # the loader alone, once per batch shape
                batches = iter(_loader(data, args.workers, device, batch_sampler=sampler))
                ips = steps_per_second(lambda: _to_device(next(batches)[0], device, True),
                                       args.steps, sync)
                rows.append(("loader alone", f"{pk[0]}x{pk[1]}", ips * pk[0] * pk[1],
                             float("nan"), float("nan")))
                loaded = pk
            model, loss = config.build()
            dataset = data
            if isinstance(loss, DivideAndConquerLoss):  # slices of one cluster's batch
                model = EnsembleEmbedder(model, loss.slice_sizes(p.embedding_dim))
                dataset = ClusteredDataset(data)
            model.to(device).train()
            if tc.channels_last:
                model.to(memory_format=torch.channels_last)
            if isinstance(loss, torch.nn.Module):
                loss.to(device)
            optimizer, scaler = _optimizer(model, loss, tc), grad_scaler(tc, device)
            batches = iter(_loader(dataset, args.workers, device, batch_sampler=sampler))

            def fed(fixed=None):
                images, labels, *extra = fixed or next(batches)
                training_step(model, loss, optimizer, scaler,
                              _to_device(images, device, tc.channels_last),
                              labels.to(device), extra[0] if extra else {}, tc, device)

            first = next(batches)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            compute = steps_per_second(lambda: fed(first), args.steps, sync)
            memory = (torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda"
                      else float("nan"))
            end_to_end = steps_per_second(fed, args.steps, sync)
            b = pk[0] * pk[1]
            label = f"{config.method} ({p.model}, D = {p.embedding_dim})"
            rows.append((label, f"{pk[0]}x{pk[1]}", end_to_end * b, compute * b, memory))
    print(f"\n{'setup':<42}{'batch':>7}{'img/s e2e':>11}{'img/s compute':>15}{'GPU GiB':>9}")
    print("-" * 84)
    for label, batch, e2e, comp, mem in rows:
        print(f"{label:<42}{batch:>7}{e2e:>11.1f}{comp:>15.1f}{mem:>9.2f}")


if __name__ == "__main__":
    main()
