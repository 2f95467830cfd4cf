#!/usr/bin/env python3
"""Fetch CUB-200-2011 (Wah et al. 2011) for the paper profile.

Downloads ``CUB_200_2011.tgz`` from CaltechDATA (or uses ``--archive``/``--mirror``),
verifies its MD5, extracts it safely and writes ``index.csv`` (path, class, subset)
into ``<root>/cub200/``. The metric-learning split (Song et al. 2016): classes
1-100 train (5,864 images), 101-200 test (5,924 images).

Usage::

    python data_scripts/fetch_cub200.py [--root DIR] [--archive CUB_200_2011.tgz | --mirror DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import fetchlib

ARCHIVE = "CUB_200_2011.tgz"
URLS = ["https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1"]
MD5 = "97eceeb196236b17998738112f37df78"
STANDARD = {"train": (100, 5864), "test": (100, 5924)}


def split_of(cls: int, subset: str) -> str:
    return "train" if cls <= 100 else "test"


def build(staging: Path, archive: Path) -> dict:
    fetchlib.extract(archive, staging)
    base = staging / "CUB_200_2011"
    try:
        paths = dict(line.split() for line in (base / "images.txt").read_text().splitlines()
                     if line.strip())
        labels = dict(line.split()
                      for line in (base / "image_class_labels.txt").read_text().splitlines()
                      if line.strip())
    except (OSError, ValueError) as err:
        raise fetchlib.FetchError(f"the archive lacks CUB_200_2011/images.txt or "
                                  f"image_class_labels.txt in the official format ({err})") from err
    rows = [(f"CUB_200_2011/images/{paths[i]}", int(labels[i]), "-")
            for i in sorted(paths, key=int)]
    return fetchlib.write_index(staging, rows, split_of, STANDARD)


def main(argv=None) -> int:
    return fetchlib.main_single_archive(sys.modules[__name__], "cub200", argv)


if __name__ == "__main__":
    sys.exit(main())
