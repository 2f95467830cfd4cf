"""What the first code cell of every chapter calls: device, expected run time, data.

:func:`chapter_setup` prints the profile, the device and how long the chapter is
expected to take there; refuses, with a clear message, to start a ``paper``-profile
chapter without a GPU (instead of silently running for hours); and, on Colab,
fetches the chapter's data when it is missing.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from ..data import DatasetNotFoundError
from ..oneshot import runs_folder
from ..profiles import get_profile, load_datasets
from ..utils import select_device

#: Every chapter's first code cell, written by ``python -m bierlib.book.student`` from
#: ``_config.yml``'s ``repository.url`` (the one place the book's address is spelled).
SETUP_CELL = """\
# Setup. On Colab: install bierlib from the book's repository (Colab's torch and numpy
# are kept) and fetch the data. Everywhere: the device and the expected run time.
# (Written from _config.yml's repository.url by python -m bierlib.book.student.)
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    REPOSITORY = "{url}"
    REPO_DIR = "/content/" + REPOSITORY.rstrip("/").rsplit("/", 1)[-1]
    if not os.path.isdir(REPO_DIR):
        subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, REPO_DIR], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", REPO_DIR], check=True)
    os.chdir(f"{{REPO_DIR}}/book")

from bierlib.book.notebook import chapter_setup

device = chapter_setup("{chapter}", PROFILE)"""

#: Seconds each chapter took to execute on the quick profile in a book build from clean on the
#: project's 2-core CPU machine, as ``python benchmarks/book_time.py --json`` wrote them from
#: that build's own execution records (chapters later in the book load the runs of earlier ones).
CHAPTER_TIMES = Path(__file__).with_name("chapter_times.json")
FETCH_SCRIPTS = {"omniglot": "fetch_omniglot.py", "cub200": "fetch_cub200.py",
                 "cars196": "fetch_cars196.py", "sop": "fetch_sop.py", "inshop": "fetch_inshop.py"}


def book_config(start: Path | None = None) -> Path | None:
    """The book's ``_config.yml``: in the source tree this module belongs to, else in the working
    folder or one of its parents (an installed ``bierlib`` run from a clone); None if neither."""
    here = (start or Path.cwd()).resolve()
    for folder in (Path(__file__).resolve().parents[2], here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "book").is_dir():
            return folder / "_config.yml"
    return None


def repository_url(config: Path | None = None) -> str:
    """The book's repository address: ``repository.url`` of ``_config.yml``."""
    import yaml

    config = config or book_config()
    if config is None:
        raise FileNotFoundError("the book's _config.yml was not found (it names the repository); "
                                "run this from a clone of the book's repository")
    url = (yaml.safe_load(config.read_text()).get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{config} has no repository.url; set it to the address of the "
                         "repository the book is published from")
    return url


def setup_cell(chapter: str, url: str) -> str:
    """The first code cell of ``chapter`` for the book published from ``url``."""
    return SETUP_CELL.format(url=url, chapter=chapter)


def in_colab() -> bool:
    return "google.colab" in sys.modules


def chapter_times() -> dict:
    """The committed record of a cold book build (see :data:`CHAPTER_TIMES`); {} if absent."""
    return json.loads(CHAPTER_TIMES.read_text()) if CHAPTER_TIMES.is_file() else {}


def measured_seconds(chapter: str) -> float | None:
    """The chapter's cold execution time on the reference machine (see :data:`CHAPTER_TIMES`)."""
    rows = chapter_times().get("chapters", [])
    return next((r["seconds"] for r in rows if r["docname"] == f"book/{chapter}"), None)


def calibrate(device: torch.device | str = "cpu", steps: int = 8) -> float:
    """Median seconds of one training step of the quick profile's network (a batch of 128
    images, forward + backward + Adam) on ``device``: a 1-3 s measurement of this machine's
    speed. The global random state is left as it was."""
    import time

    from ..experiments import ExperimentConfig

    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model = ExperimentConfig("contrastive").build()[0].to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        images = torch.rand(128, 1, 28, 28, device=device)
        times = []
        for step in range(steps + 3):  # three warm-up steps
            start = time.perf_counter()
            optimizer.zero_grad()
            model(images).pow(2).mean().backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 3:
                times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def calibrate_fresh(runs: int = 3) -> float:
    """:func:`calibrate` as a chapter's setup cell meets it, in a fresh process (just after
    importing torch), the median of ``runs`` processes: how a build records its machine."""
    code = "from bierlib.book.notebook import calibrate; print(calibrate())"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout) for _ in range(runs)]
    return sorted(times)[len(times) // 2]


def speed_factor(device: torch.device | str = "cpu", seconds: float | None = None) -> float:
    """This machine's time per second of the reference machine (where :data:`CHAPTER_TIMES`
    was recorded): :func:`calibrate` here (or ``seconds``, its result) over the calibration
    recorded there; 1 if none."""
    reference = chapter_times().get("calibration_seconds")
    if not reference:
        return 1.0
    return (calibrate(device) if seconds is None else seconds) / reference


def expected_time(chapter: str, profile_name: str, device: torch.device,
                  speed: float | None = None) -> str:
    """A sentence on how long ``chapter`` takes on ``device`` with this profile: its cold time
    on the reference machine scaled by this machine's measured ``speed`` (calibrated if None)."""
    if profile_name != "quick":
        return ("not measured yet: the paper profile fine-tunes ImageNet backbones on a GPU;\n"
                "  benchmarks/paper_throughput.py measures its speed")
    seconds = measured_seconds(chapter)
    if seconds is None:
        return "no run time has been measured for this chapter"
    machine = chapter_times().get("machine", "a 2-core CPU")
    if device.type != "cpu":
        return (f"at most about {_minutes(seconds)}, the cold time on the reference machine\n"
                f"  ({machine}); training runs faster on this {device.type.upper()}")
    speed = speed_factor(device) if speed is None else speed
    # two lines, each short enough for the rendered page's code-output column
    return (f"about {_minutes(seconds * speed)} here ({_minutes(seconds)} from a cold start on "
            f"the reference\n  machine, {machine}; this CPU takes {speed:.2f}x its time per "
            "training step)")


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _fetch(dataset: str) -> None:
    here = Path.cwd().resolve()
    scripts = next((p / "data_scripts" for p in (here, *here.parents)
                    if (p / "data_scripts").is_dir()), None)
    if scripts is None:
        config = book_config(here)
        where = repository_url(config) if config else "the book's repository"
        raise DatasetNotFoundError(f"data_scripts/ not found above {here}; clone {where}")
    subprocess.run([sys.executable, str(scripts / FETCH_SCRIPTS[dataset])], check=True)


def chapter_setup(chapter: str, profile_name: str,
                  fetch_missing: bool | None = None) -> torch.device:
    """Print the profile, device and expected time of ``chapter``; return the device.

    Raises RuntimeError for a profile that needs a GPU when none is present. With
    ``fetch_missing`` (default: only on Colab) a missing dataset is fetched with its script.
    """
    profile = get_profile(profile_name)
    device = select_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type.upper()
    print(f"chapter {chapter} | profile {profile.name} ({profile.dataset}, {profile.model}) | "
          f"device: {name}")
    if profile.needs_gpu and device.type != "cuda":
        raise RuntimeError(
            f"the {profile.name!r} profile needs a CUDA GPU and this machine has none: it would "
            "run for days on a CPU. On Colab choose Runtime > Change runtime type > GPU and run "
            "again; elsewhere set PROFILE = 'quick'")
    if device.type == "cpu" and in_colab():
        print("(the quick profile runs on a CPU; for the paper profile choose Runtime > Change "
              "runtime type > GPU)")
    print(f"expected run time: {expected_time(chapter, profile.name, device)}")
    print("(a finished training run is loaded from its run folder instead of retrained)")
    if fetch_missing if fetch_missing is not None else in_colab():
        try:
            load_datasets(profile)
            if profile.dataset == "omniglot":
                runs_folder()  # the one-shot runs (Chapter 6), fetched by the same script
        except DatasetNotFoundError:
            _fetch(profile.dataset)
    return device
