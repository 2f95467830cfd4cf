"""Pretrain the quick profile's backbone as a classifier of font glyphs (its "ImageNet")::

    python -m bierlib.pretrain                      # the shipped weights (about 6 min on 2 cores)
    python -m bierlib.pretrain --steps 20 --out /tmp/w   # a smoke run

Trains :class:`~bierlib.models.SmallConvNet`'s convolutional blocks with a linear classifier
on :class:`~bierlib.data.glyphs.FontGlyphs` (Adam with a one-cycle schedule, label
smoothing), then measures top-1 accuracy on held-out renderings of the same classes and, as a
check that the features transfer, Recall@1 of the raw features on the Omniglot test alphabets
(if Omniglot is on disk). Writes ``<out>/<name>.pt`` (the blocks' state dict) and
``<out>/<name>.json`` (classes, images, steps, accuracy, seed, command, seconds, versions,
sha256), each atomically; an interrupted run resumes from ``<out>/<name>.partial.pt``.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .data.glyphs import FontGlyphs
from .models import PRETRAINED, WEIGHTS_FOLDER, SmallConvNet, pretrained_metadata
from .training import embed
from .utils import atomic_torch_save, atomic_write, check_positive_int


def pretrain(out=WEIGHTS_FOLDER, name: str = PRETRAINED, num_classes: int = 1000,
             renderings: int = 24, steps: int = 2000, batch_size: int = 256, lr: float = 2e-3,
             seed: int = 0, progress: bool = True, command: str | None = None) -> dict:
    """Pretrain, write ``<out>/<name>.pt`` and ``.json``, return the metadata."""
    for value, label in ((num_classes, "num_classes"), (renderings, "renderings"),
                         (steps, "steps"), (batch_size, "batch_size")):
        check_positive_int(value, label)
    if lr <= 0:
        raise ValueError(f"lr must be > 0, found {lr}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    train_set = FontGlyphs("train", num_classes, renderings, seed=seed)
    heldout = FontGlyphs("heldout", num_classes, 4, seed=seed)
    net = SmallConvNet(in_channels=1).to(memory_format=torch.channels_last)
    classifier = nn.Linear(net.feature_dim, num_classes)
    params = list(net.features.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    settings = {"num_classes": num_classes, "renderings": renderings, "steps": steps,
                "batch_size": batch_size, "lr": lr, "seed": seed}
    partial, step, seconds = out / f"{name}.partial.pt", 0, 0.0
    if partial.is_file():
        state = torch.load(partial, weights_only=False)
        if state["settings"] == settings:
            for obj, key in ((net.features, "features"), (classifier, "classifier"),
                             (optimizer, "optimizer"), (schedule, "schedule")):
                obj.load_state_dict(state[key])
            step, seconds = state["step"], state["seconds"]
            torch.set_rng_state(state["rng"])
    images = train_set.images.float().div_(255)  # (N, 1, 28, 28): 75 MB for 24,000 images
    targets = train_set.targets
    smoothing = nn.CrossEntropyLoss(label_smoothing=0.1)
    net.train()
    with tqdm(total=steps, initial=step, disable=not progress, desc="pretraining",
              unit="step") as bar:
        while step < steps:
            tic = time.perf_counter()
            index = torch.randint(len(images), (batch_size,))
            batch = images[index].contiguous(memory_format=torch.channels_last)
            loss = smoothing(classifier(net.features(batch)), targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            seconds += time.perf_counter() - tic
            bar.update()
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if step % 100 == 0 and step < steps:
                atomic_torch_save({"settings": settings, "features": net.features.state_dict(),
                                   "classifier": classifier.state_dict(),
                                   "optimizer": optimizer.state_dict(),
                                   "schedule": schedule.state_dict(), "step": step,
                                   "seconds": seconds, "rng": torch.get_rng_state()}, partial)
    net.eval()
    with torch.no_grad():
        feats, labels = embed(net, heldout, forward=net.features)
        accuracy = (classifier(feats).argmax(1) == labels).float().mean().item()
    meta = {"name": name, "file": f"{name}.pt",
            "architecture": {"widths": list(net.widths), "in_channels": 1},
            "source": {"dataset": "bierlib.data.glyphs.FontGlyphs", "classes": num_classes,
                       "images": len(train_set), "renderings_per_class": renderings,
                       "seed": seed},
            "training": {**settings, "optimizer": "Adam, one-cycle, weight decay 1e-4",
                         "label_smoothing": 0.1, "seconds": round(seconds, 1)},
            "heldout_accuracy": round(accuracy, 4), "heldout_images": len(heldout),
            "omniglot_test_recall@1": _transfer(net),
            "command": command or f"python -m bierlib.pretrain --name {name}",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "versions": {"python": platform.python_version(), "torch": torch.__version__}}
    weights = out / meta["file"]
    atomic_torch_save(net.features.state_dict(), weights)
    meta["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    atomic_write(out / f"{name}.json", lambda f: f.write(json.dumps(meta, indent=2) + "\n"),
                 binary=False)
    partial.unlink(missing_ok=True)
    return meta


def _transfer(net: SmallConvNet) -> float | None:
    """Recall@1 of the raw features on Omniglot's test alphabets (None without Omniglot)."""
    per_class = features_per_class(net)
    return None if per_class is None else round(float(per_class.mean()), 4)


def features_per_class(net: SmallConvNet | None = None):
    """Each test class's Recall@1 (C,), in class order, of the raw features of ``net``
    (default: the shipped pretrained weights) on Omniglot's test alphabets: the free baseline
    every method must beat, per class for a bootstrap over classes. Every class has the same
    number of drawings, so the mean is the features' Recall@1. None without Omniglot."""
    from .data import DatasetNotFoundError, Omniglot
    from .evaluation import per_class_recall
    from .models import load_pretrained

    try:
        test = Omniglot(split="test")
    except DatasetNotFoundError:
        return None
    if net is None:
        net = load_pretrained(SmallConvNet(widths=tuple(pretrained_metadata()["architecture"]
                                                        ["widths"])))
    feats, labels = embed(net, test, forward=net.features)
    return per_class_recall(feats, labels)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bierlib.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(WEIGHTS_FOLDER), help="folder for the weights")
    parser.add_argument("--name", default=PRETRAINED)
    parser.add_argument("--classes", type=int, default=1000, dest="num_classes")
    parser.add_argument("--renderings", type=int, default=24)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "bierlib.pretrain", *sys.argv[1:]])
    meta = pretrain(args.out, args.name, args.num_classes, args.renderings, args.steps,
                    args.batch_size, args.lr, args.seed, command=command)
    print(json.dumps({k: meta[k] for k in ("heldout_accuracy", "omniglot_test_recall@1",
                                             "sha256")}, indent=2))


if __name__ == "__main__":
    main()
