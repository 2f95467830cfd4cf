#!/usr/bin/env python3
"""Fetch Cars196 (Stanford Cars, Krause et al. 2013) for the paper profile.

Two layouts are accepted, since the original download links have returned 404 for
years and copies circulate in both forms:

* the original release: ``car_ims.tgz`` + ``cars_annos.mat`` (all 16,185 images, one
  annotation file);
* the devkit release (Kaggle and torchvision copies): ``cars_train.tgz``,
  ``cars_test.tgz``, ``car_devkit.tgz`` and ``cars_test_annos_withlabels.mat``.

Pass the files with ``--archive`` (repeat it) or ``--mirror DIR``; the script tries
the original addresses only when neither is given. No checksum is published, so
the layout and the annotation counts are checked instead. It writes ``index.csv``
into ``<root>/cars196/``; the metric-learning split uses all images: classes 1-98
train (8,054 images), 99-196 test (8,131 images).

Usage::

    python data_scripts/fetch_cars196.py [--root DIR] [--mirror DIR | --archive FILE ...]

Needs SciPy (to read the .mat annotations).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import fetchlib

ORIGINAL = ["car_ims.tgz", "cars_annos.mat"]
DEVKIT = ["cars_train.tgz", "cars_test.tgz", "car_devkit.tgz", "cars_test_annos_withlabels.mat"]
URLS = {"car_ims.tgz": ["http://ai.stanford.edu/~jkrause/car196/car_ims.tgz"],
        "cars_annos.mat": ["http://ai.stanford.edu/~jkrause/car196/cars_annos.mat"]}
STANDARD = {"train": (98, 8054), "test": (98, 8131)}


def split_of(cls: int, subset: str) -> str:
    return "train" if cls <= 98 else "test"


def annotations(path: Path, fields: tuple[str, ...]) -> list[tuple]:
    from scipy.io import loadmat

    try:
        table = loadmat(path, squeeze_me=True)["annotations"]
        return [tuple(row[f] for f in fields) for row in table]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise fetchlib.FetchError(f"{path.name} is not a Cars196 annotation file with fields "
                                  f"{fields} ({type(err).__name__}: {err})") from err


def build(staging: Path, files: dict[str, Path]) -> dict:
    if "car_ims.tgz" in files:
        fetchlib.extract(files["car_ims.tgz"], staging)
        rows = [(str(p), int(c), "test" if t else "train")
                for p, c, t in annotations(files["cars_annos.mat"],
                                           ("relative_im_path", "class", "test"))]
    else:
        for name in ("cars_train.tgz", "cars_test.tgz", "car_devkit.tgz"):
            fetchlib.extract(files[name], staging)
        shutil.copyfile(files["cars_test_annos_withlabels.mat"],
                        staging / "cars_test_annos_withlabels.mat")
        rows = [(f"cars_train/{f}", int(c), "train")
                for f, c in annotations(staging / "devkit" / "cars_train_annos.mat",
                                        ("fname", "class"))]
        rows += [(f"cars_test/{f}", int(c), "test")
                 for f, c in annotations(files["cars_test_annos_withlabels.mat"],
                                         ("fname", "class"))]
    return fetchlib.write_index(staging, rows, split_of, STANDARD)


def main(argv=None) -> int:
    args = fetchlib.parser(__doc__.split("\n\n")[0], ORIGINAL + DEVKIT).parse_args(argv)
    root = args.root.expanduser()

    def go():
        given = fetchlib.pick_archives(ORIGINAL + DEVKIT, args.archive)
        in_mirror = {n for n in ORIGINAL + DEVKIT if args.mirror and (args.mirror / n).is_file()}
        available = {n for n, p in given.items() if p} | in_mirror
        if set(DEVKIT) <= available and not set(ORIGINAL) <= available:
            names = DEVKIT
        elif set(ORIGINAL) <= available or not (args.mirror or args.archive):
            names = ORIGINAL
        else:
            raise fetchlib.FetchError(f"found {sorted(available)}; expected either {ORIGINAL} "
                                      f"(original release) or {DEVKIT} (devkit release)")
        files = {n: fetchlib.obtain(n, root, URLS.get(n, []), given[n],
                                    None if given[n] else args.mirror)
                 for n in names}
        fetchlib.install(root, "cars196", lambda staging: build(staging, files))

    return fetchlib.run(go)


if __name__ == "__main__":
    sys.exit(main())
