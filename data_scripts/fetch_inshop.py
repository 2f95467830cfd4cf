#!/usr/bin/env python3
r"""Set up In-Shop Clothes Retrieval (DeepFashion, Liu et al. 2016) for the paper profile.

The files are distributed through Google Drive (no stable direct address), so this
script does not download: get ``img.zip`` (In-shop Clothes Retrieval Benchmark / Img)
and ``list_eval_partition.txt`` (/ Eval) from the DeepFashion page and pass them
with ``--archive`` (twice) or ``--mirror DIR``. It extracts the images safely and
writes ``index.csv`` into ``<root>/inshop/``. The split is the official partition:
train 3,997 items / 25,882 images; test query 14,218 and gallery 12,612 images
(3,985 items).

Usage::

    python data_scripts/fetch_inshop.py [--root DIR] \
        --archive img.zip --archive list_eval_partition.txt
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import fetchlib

IMAGES, PARTITION = "img.zip", "list_eval_partition.txt"
STANDARD = {"train": (3997, 25882), "query": (3985, 14218), "gallery": (3985, 12612)}


def split_of(cls: int, subset: str) -> str:
    return subset


def build(staging: Path, images: Path, partition: Path) -> dict:
    fetchlib.extract(images, staging)
    shutil.copyfile(partition, staging / PARTITION)
    rows = []
    for line in partition.read_text().splitlines()[2:]:  # count, then header
        if line.strip():
            path, item, status = line.split()
            if status not in STANDARD or not item.startswith("id_"):
                raise fetchlib.FetchError(f"{PARTITION}: unexpected line {line!r}")
            rows.append((path, int(item[3:]), status))
    return fetchlib.write_index(staging, rows, split_of, STANDARD)


def main(argv=None) -> int:
    args = fetchlib.parser(__doc__.split("\n\n")[0], [IMAGES, PARTITION]).parse_args(argv)
    root = args.root.expanduser()

    def go():
        given = fetchlib.pick_archives([IMAGES, PARTITION], args.archive)
        files = {n: fetchlib.obtain(n, root, [], given[n], args.mirror)
                 for n in (IMAGES, PARTITION)}
        fetchlib.install(root, "inshop",
                         lambda staging: build(staging, files[IMAGES], files[PARTITION]))

    return fetchlib.run(go)


if __name__ == "__main__":
    sys.exit(main())
