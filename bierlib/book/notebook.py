"""What the first code cell of every chapter calls: device, expected run time, data.

:func:`chapter_setup` prints the profile, the device and how long the chapter is
expected to take there; refuses, with a clear message, to start a ``paper``-profile
chapter without a GPU (instead of silently running for hours); and, on Colab,
fetches the chapter's data when it is missing.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from ..data import DatasetNotFoundError
from ..profiles import get_profile, load_datasets
from ..utils import select_device

REPOSITORY = "https://github.com/bierlib/metric-learning-book"

# Minutes to execute each chapter from a clean kernel on the quick profile, measured in
# the CI book build of 2026-11-23 on the project's 2-core CPU machine (myst-nb's "Executed
# notebook in" lines); chapters 4 and 6 reuse the checkpoints of 3 and 1-5 that ran before.
QUICK_CPU_MINUTES = {"01_contrastive": 1.8, "02_lifted": 5.5, "03_bier": 3.5, "04_abier": 3.1,
                     "05_divide_and_conquer": 6.1, "06_comparison": 0.5, "07_reproducing": 0.2}
FETCH_SCRIPTS = {"omniglot": "fetch_omniglot.py", "cub200": "fetch_cub200.py",
                 "cars196": "fetch_cars196.py", "sop": "fetch_sop.py", "inshop": "fetch_inshop.py"}


def in_colab() -> bool:
    return "google.colab" in sys.modules


def expected_time(chapter: str, profile_name: str, device: torch.device) -> str:
    """A sentence on how long ``chapter`` takes on ``device`` with this profile."""
    if profile_name == "quick":
        minutes = QUICK_CPU_MINUTES.get(chapter)
        if minutes is None:
            return "no run time has been measured for this chapter"
        measured = f"about {minutes:g} min on a 2-core CPU, measured in the CI book build"
        return measured if device.type == "cpu" else f"{measured}; not measured on {device.type}"
    return ("not measured yet: the paper profile fine-tunes ImageNet backbones on a GPU; "
            "benchmarks/paper_throughput.py measures its speed (no paper-profile time has been measured yet)")


def _fetch(dataset: str) -> None:
    here = Path.cwd().resolve()
    scripts = next((p / "data_scripts" for p in (here, *here.parents) if (p / "data_scripts").is_dir()), None)
    if scripts is None:
        raise DatasetNotFoundError(f"data_scripts/ not found above {here}; clone {REPOSITORY}")
    subprocess.run([sys.executable, str(scripts / FETCH_SCRIPTS[dataset])], check=True)


def chapter_setup(chapter: str, profile_name: str, fetch_missing: bool | None = None) -> torch.device:
    """Print the profile, device and expected time of ``chapter``; return the device.

    Raises RuntimeError for a profile that needs a GPU when none is present. With
    ``fetch_missing`` (default: only on Colab) a missing dataset is fetched with its script.
    """
    profile = get_profile(profile_name)
    device = select_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type.upper()
    print(f"chapter {chapter} | profile {profile.name} ({profile.dataset}, {profile.model}) | device: {name}")
    if profile.needs_gpu and device.type != "cuda":
        raise RuntimeError(
            f"the {profile.name!r} profile needs a CUDA GPU and this machine has none: it would run "
            "for days on a CPU. On Colab choose Runtime > Change runtime type > GPU and run again; "
            "elsewhere set PROFILE = 'quick'")
    if device.type == "cpu" and in_colab():
        print("(the quick profile runs on a CPU; for the paper profile choose Runtime > Change "
              "runtime type > GPU)")
    print(f"expected run time: {expected_time(chapter, profile.name, device)}; a finished training "
          "run is loaded from its checkpoint instead of retrained")
    if fetch_missing if fetch_missing is not None else in_colab():
        try:
            load_datasets(profile)
        except DatasetNotFoundError:
            _fetch(profile.dataset)
    return device
