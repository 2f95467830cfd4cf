"""Command line: train any method of the book on any profile, to the end, resumably.

::

    python -m bierlib.cli --config configs/paper/bier_cub200.yaml [key=value ...] [--out DIR]

The configuration is a flat YAML (or JSON) mapping whose keys are fields of
:class:`bierlib.experiments.ExperimentConfig` (``method``, ``profile``, ``seed``,
``num_learners``, ...) or of the chosen :class:`bierlib.profiles.Profile`
(``dataset``, ``epochs``, ``lr``, ...); ``key=value`` arguments override it (values
are read as YAML: ``epochs=2``, ``eval_ks=[1,10]``). Unknown keys are refused.

The run folder (default ``runs/<config name>-seed<seed>``) receives:

* ``config.yaml`` -- the resolved configuration (every field, defaults included) and
  the command line; a second run in the same folder must resolve to the same
  configuration, and then continues where the first stopped;
* ``checkpoint/`` -- the training checkpoints (written atomically every epoch);
* ``metrics.json`` -- every evaluation record and the final metrics, written
  atomically when the run ends (the book's "Reproducing the papers" page reads it).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from pathlib import Path

import torch
import yaml

from .experiments import ExperimentConfig, run_experiment
from .profiles import Profile
from .utils import atomic_write, select_device

EXPERIMENT_KEYS = {f.name for f in dataclasses.fields(ExperimentConfig)} - {"overrides"}
PROFILE_KEYS = {f.name for f in dataclasses.fields(Profile)} - {"name"}


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
    """An :class:`~bierlib.experiments.ExperimentConfig` from a YAML/JSON file and overrides, rejecting unknown keys."""
    values = {}
    if path is not None:
        text = Path(path).read_text()
        values = yaml.safe_load(text) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping of key: value, found {type(values).__name__}")
    values.update(overrides)
    unknown = set(values) - EXPERIMENT_KEYS - PROFILE_KEYS
    if unknown:
        raise ValueError(f"unknown configuration keys {sorted(unknown)}; valid keys: "
                         f"{sorted(EXPERIMENT_KEYS)} and profile fields {sorted(PROFILE_KEYS)}")
    if "method" not in values:
        raise ValueError("the configuration must set method (one of bierlib.experiments.METHODS)")
    profile_values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in PROFILE_KEYS}
    experiment = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in EXPERIMENT_KEYS}
    return ExperimentConfig(**experiment, overrides=profile_values)


def resolved(config: ExperimentConfig) -> dict:
    """Every setting of a run, defaults included, as plain YAML-friendly values."""
    out = {k: v for k, v in dataclasses.asdict(config).items() if k != "overrides"}
    out.update({k: v for k, v in dataclasses.asdict(config.resolved_profile()).items() if k != "name"})
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _plain(value):
    """JSON without NaN: NaN (the untrained model's loss) becomes null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bierlib.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML or JSON file (e.g. configs/paper/bier_cub200.yaml)")
    parser.add_argument("--out", type=Path, help="run folder (default runs/<config name>-seed<seed>)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--data-root", help="data folder (default $BIERLIB_DATA or ~/.cache/bierlib)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, parse_overrides(args.overrides))
    except (ValueError, TypeError, OSError) as err:
        parser.error(str(err))
    name = Path(args.config).stem if args.config else config.method
    out = args.out or Path("runs") / f"{name}-seed{config.seed}"
    settings = resolved(config)
    record = out / "config.yaml"
    if record.is_file():
        before = yaml.safe_load(record.read_text())["config"]
        if before != settings:
            diff = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
            parser.error(f"{out} holds a run of another configuration (before vs now: {diff}); "
                         "use another --out")
    command = " ".join(["python -m bierlib.cli", *(argv if argv is not None else sys.argv[1:])])
    text = yaml.safe_dump({"config": settings, "command": command}, sort_keys=False)
    atomic_write(record, lambda f: f.write(text), binary=False)
    if args.data_root:
        os.environ["BIERLIB_DATA"] = args.data_root
    device = select_device(args.device)
    print(f"{config.method} on {settings['dataset']} ({config.profile} profile), seed {config.seed}, "
          f"device {device}; run folder {out}")
    result = run_experiment(config, checkpoint_dir=out / "checkpoint", device=device)
    metrics = {"name": name, "config": settings, "command": command, "final": result.history.final,
               "records": result.history.records,
               "environment": {"torch": torch.__version__, "python": platform.python_version(),
                               "device": torch.cuda.get_device_name() if device.type == "cuda" else str(device)}}
    atomic_write(out / "metrics.json", lambda f: json.dump(_plain(metrics), f, indent=1), binary=False)
    final = {k: round(v, 4) for k, v in result.history.final.items() if isinstance(v, float)}
    print(f"done: {final}; metrics in {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
