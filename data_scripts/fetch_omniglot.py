#!/usr/bin/env python3
"""Fetch the Omniglot "minimal" background splits used by the quick profile, and the
official 20-way one-shot classification runs.

Downloads ``images_background_small1.zip`` and ``images_background_small2.zip``
from the dataset's official repository (Lake et al., Science 2015) -- or copies
them from a mirror folder -- verifies their SHA-256, and extracts them into::

    <root>/omniglot/<Alphabet>/<character>/<drawer>.png

Greek and Latin are present, identically, in both zips; they are extracted once,
giving 8 alphabets, 242 characters and 4,840 images.

Then the same for ``one-shot-classification/all_runs.zip`` (the paper's one-shot task,
read by ``bierlib.oneshot``): 20 runs, each of 20 test drawings to classify against 20
training drawings (one per character, from the *evaluation* alphabets), extracted into::

    <root>/omniglot_oneshot/run01/{class_labels.txt, test/itemNN.png, training/classNN.png}

Safe to interrupt and to re-run: downloads go to ``<root>/downloads/`` (an
interrupted one is resumed) and are verified before use, the extraction happens in
a temporary folder that is renamed into place only when complete, and a second run
notices the finished dataset and does nothing.

Usage::

    python data_scripts/fetch_omniglot.py [--root DIR] [--mirror DIR]

``--root`` defaults to ``$BIERLIB_DATA`` or ``~/.cache/bierlib``;
``--mirror`` defaults to ``$BIERLIB_OMNIGLOT_MIRROR`` (a folder holding the three zips).

Standard library only (with ``fetchlib.py`` beside it, shared by every fetch script).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import fetchlib
from fetchlib import FetchError

URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/{name}"
FILES = {
    "images_background_small1.zip":
        "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
    "images_background_small2.zip":
        "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
}
EXPECTED = {"alphabets": 8, "characters": 242, "images": 4840}
MARKER = fetchlib.MARKER

RUNS_URL = ("https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
            "one-shot-classification/{name}")
RUNS_FILE = ("all_runs.zip", "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325")
RUNS_FOLDER = "omniglot_oneshot"
RUNS_EXPECTED = {"runs": 20, "test": 400, "training": 400}
WAYS = 20  # drawings per run and side: 20 test drawings, 20 training drawings (one per class)


def extract(zips: list[Path], dest: Path) -> dict:
    """Extract the alphabets of every zip into ``dest``, each alphabet once."""
    for archive in zips:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                parts = Path(member.filename).parts
                if member.is_dir() or len(parts) != 4 or not parts[3].endswith(".png"):
                    continue
                alphabet, character, filename = parts[1:]
                target = dest / alphabet / character / filename
                if target.exists():  # Greek and Latin: the same drawing in both zips
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(member))
    return count(dest)


def count(dest: Path) -> dict:
    alphabets = [p for p in dest.iterdir() if p.is_dir()]
    characters = [c for a in alphabets for c in a.iterdir() if c.is_dir()]
    images = sum(len(list(c.glob("*.png"))) for c in characters)
    return {"alphabets": len(alphabets), "characters": len(characters), "images": images}


def fetch(root: Path, mirror: Path | None = None) -> Path:
    """Make ``root/omniglot`` hold the de-duplicated dataset; return its path."""
    dest = root / "omniglot"
    if (dest / MARKER).is_file():
        counts = json.loads((dest / MARKER).read_text())
        print(f"Omniglot already present in {dest} ({counts['characters']} characters, "
              f"{counts['images']} images); nothing to do")
        return dest
    if dest.exists():
        raise FetchError(f"{dest} exists but is not a complete Omniglot extraction "
                         f"(no {MARKER}); delete that folder and run this script again")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".omniglot-", dir=root) as tmp:
        tmp = Path(tmp)
        zips = [fetchlib.obtain(name, root, [URL.format(name=name)], mirror=mirror,
                                checksum=("sha256", FILES[name])) for name in FILES]
        staging = tmp / "omniglot"
        staging.mkdir()
        counts = extract(zips, staging)
        if counts != EXPECTED:
            raise FetchError(f"extracted {counts}, expected {EXPECTED}; the archives do not "
                             "have the official layout")
        (staging / MARKER).write_text(json.dumps({**counts, "sha256": FILES}, indent=1))
        os.replace(staging, dest)  # atomic: the dataset appears complete or not at all
    print(f"Omniglot ready in {dest}: {counts['alphabets']} alphabets, "
          f"{counts['characters']} characters, {counts['images']} images")
    return dest


def check_runs(dest: Path) -> dict:
    """Count the runs in ``dest`` after checking each one's layout: ``class_labels.txt`` pairs
    each of its 20 test drawings with one of its 20 training drawings, all present."""
    runs = sorted(p for p in dest.iterdir() if p.is_dir())
    for run in runs:
        labels = run / "class_labels.txt"
        if not labels.is_file():
            raise FetchError(f"{run.name} has no class_labels.txt; the archive is not the "
                             "official all_runs.zip")
        pairs = [line.split() for line in labels.read_text().splitlines() if line.strip()]
        tests, trains = {p[0] for p in pairs}, {p[-1] for p in pairs}
        test_files = {f"{run.name}/test/{f.name}" for f in run.glob("test/*.png")}
        train_files = {f"{run.name}/training/{f.name}" for f in run.glob("training/*.png")}
        if (len(pairs) != WAYS or any(len(p) != 2 for p in pairs) or tests != test_files
                or trains != train_files or len(tests) != WAYS or len(trains) != WAYS):
            raise FetchError(f"{labels} does not pair {WAYS} test drawings with {WAYS} training "
                             "drawings of that run; the archive is not the official all_runs.zip")
    return {"runs": len(runs), "test": sum(len(list(r.glob("test/*.png"))) for r in runs),
            "training": sum(len(list(r.glob("training/*.png"))) for r in runs)}


def fetch_runs(root: Path, mirror: Path | None = None) -> Path:
    """Make ``root/omniglot_oneshot`` hold the 20 one-shot runs; return its path."""
    dest = root / RUNS_FOLDER
    if (dest / MARKER).is_file():
        counts = json.loads((dest / MARKER).read_text())
        print(f"Omniglot one-shot runs already present in {dest} ({counts['runs']} runs); "
              "nothing to do")
        return dest
    if dest.exists():
        raise FetchError(f"{dest} exists but is not a complete extraction of the one-shot runs "
                         f"(no {MARKER}); delete that folder and run this script again")
    root.mkdir(parents=True, exist_ok=True)
    name, sha256 = RUNS_FILE
    with tempfile.TemporaryDirectory(prefix=f".{RUNS_FOLDER}-", dir=root) as tmp:
        archive = fetchlib.obtain(name, root, [RUNS_URL.format(name=name)], mirror=mirror,
                                  checksum=("sha256", sha256))
        staging = Path(tmp) / RUNS_FOLDER
        fetchlib.extract(archive, staging)  # refuses members that would land outside staging
        counts = check_runs(staging)
        if counts != RUNS_EXPECTED:
            raise FetchError(f"extracted {counts}, expected {RUNS_EXPECTED}; the archive does "
                             "not have the official layout")
        (staging / MARKER).write_text(json.dumps({**counts, "sha256": {name: sha256}}, indent=1))
        os.replace(staging, dest)  # atomic: the runs appear complete or not at all
    print(f"Omniglot one-shot runs ready in {dest}: {counts['runs']} runs, {counts['test']} test "
          f"and {counts['training']} training drawings")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=fetchlib.default_root(),
                        help="data folder (default: $BIERLIB_DATA or ~/.cache/bierlib)")
    parser.add_argument("--mirror", type=Path,
                        default=os.environ.get("BIERLIB_OMNIGLOT_MIRROR") or None,
                        help="folder with the three zips, used instead of downloading "
                             "(default: $BIERLIB_OMNIGLOT_MIRROR)")
    args = parser.parse_args(argv)
    root = args.root.expanduser()
    return fetchlib.run(lambda: (fetch(root, args.mirror), fetch_runs(root, args.mirror)))


if __name__ == "__main__":
    sys.exit(main())
