"""Command line: train any method of the book on any profile, to the end, resumably.

::

    python -m bierlib.cli --config configs/paper/bier_cub200.yaml [key=value ...] [--out DIR]
    bierlib-train --config ...        # the same, installed as a console script
    torchrun --nproc_per_node 4 -m bierlib.cli --config ...   # data-parallel, 4 processes

The configuration is a flat YAML (or JSON) mapping with ``method``, ``profile``, ``seed``
and any setting of :class:`bierlib.experiments.ExperimentConfig`: fields of the profile
or of its training configuration (``dataset``, ``epochs``, ``lr``, ...) and the method's
options (``margin``, ``num_learners``, ...); ``key=value`` arguments override it (values
are read as YAML: ``epochs=2``, ``eval_ks=[1,10]``). Unknown keys are refused. A notebook
writes the same run as ``ExperimentConfig(method, **settings)``.

The run folder (default ``runs/<method>-<profile>-seed<seed>-<hash of the configuration>``,
the one a notebook's :func:`~bierlib.experiments.run_experiment` uses too) receives:

* ``config.yaml`` -- the resolved configuration (every field, defaults included) and
  the command line; a second run in the same folder must resolve to the same
  configuration, and then continues where the first stopped;
* ``checkpoint/`` -- the training checkpoints (written atomically every epoch);
* ``metrics.json`` -- every evaluation record and the final metrics, written
  atomically when the run ends (the book's "Reproducing the papers" page reads it).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import yaml

from . import distributed
from .experiments import ExperimentConfig, run_experiment


def parse_overrides(pairs: list[str]) -> dict:
    """``["epochs=2", "lr=1e-4"]`` -> ``{"epochs": 2, "lr": 0.0001}`` (values parsed as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, found {pair!r}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads 1e-5 as a string; numbers stay numbers
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key] = parsed
    return out


def load_config(path: str | os.PathLike | None, overrides: dict) -> ExperimentConfig:
    """An :class:`~bierlib.experiments.ExperimentConfig` from a YAML/JSON file and overrides."""
    values = {}
    if path is not None:
        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping of key: value, "
                             f"found {type(values).__name__}")
    return ExperimentConfig.from_mapping({**values, **overrides})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bierlib.cli",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML or JSON file (e.g. configs/paper/bier_cub200.yaml)")
    parser.add_argument("--out", type=Path, help="run folder (default runs/<name of the run>)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--data-root",
                        help="data folder (default $BIERLIB_DATA or ~/.cache/bierlib)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, parse_overrides(args.overrides))
    except (ValueError, TypeError, OSError) as err:
        parser.error(str(err))
    if args.data_root:
        os.environ["BIERLIB_DATA"] = args.data_root
    settings = config.resolved()
    try:  # under torchrun: refuse a global batch the processes cannot share, before training
        processes = distributed.launched_processes()
        distributed.check_global_batch(settings["classes_per_batch"],
                                       settings["images_per_class"], processes)
    except ValueError as err:
        parser.error(str(err))
    device = distributed.setup(args.device)
    label = Path(args.config).stem if args.config else config.method
    command = " ".join(["python -m bierlib.cli", *(argv if argv is not None else sys.argv[1:])])
    say = print if distributed.is_main() else (lambda *_: None)
    say(f"{config.method} on {settings['dataset']} ({config.profile} profile), "
        f"seed {config.seed}, device {device}"
        + (f", {processes} processes (global batch {settings['classes_per_batch']} x "
           f"{settings['images_per_class']})" if processes > 1 else ""))
    try:
        result = run_experiment(config, run_dir=args.out, device=device, command=command,
                                label=label, progress=distributed.is_main())
    except ValueError as err:  # e.g. the folder holds another configuration
        parser.error(str(err))
    finally:
        if processes > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    final = {k: round(v, 4) for k, v in result.history.final.items() if isinstance(v, float)}
    say(f"done: {final}; metrics in {result.run_dir / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
