#!/usr/bin/env python3
r"""Fetch Stanford Online Products (Song et al. 2016) for the paper profile.

Downloads ``Stanford_Online_Products.zip`` from Stanford's FTP server (or uses
``--archive``/``--mirror``), verifies its MD5, extracts it safely and writes
``index.csv`` into ``<root>/sop/``. The split is the official one: ``Ebay_train.txt``
(11,318 classes, 59,551 images) and ``Ebay_test.txt`` (11,316 classes, 60,502 images).

Usage::

    python data_scripts/fetch_sop.py [--root DIR] \
        [--archive Stanford_Online_Products.zip | --mirror DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import fetchlib

ARCHIVE = "Stanford_Online_Products.zip"
URLS = ["https://ftp.cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip",
        "ftp://cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip"]
MD5 = "7f73d41a2f44250d4779881525aea32e"
STANDARD = {"train": (11318, 59551), "test": (11316, 60502)}


def split_of(cls: int, subset: str) -> str:
    return subset


def build(staging: Path, archive: Path) -> dict:
    fetchlib.extract(archive, staging)
    rows = []
    for subset in ("train", "test"):
        listing = staging / "Stanford_Online_Products" / f"Ebay_{subset}.txt"
        if not listing.is_file():
            raise fetchlib.FetchError(f"the archive lacks Stanford_Online_Products/{listing.name}")
        # the first line is a header: image_id class_id super_class_id path
        for line in listing.read_text().splitlines()[1:]:
            if line.strip():
                _, cls, _, path = line.split()
                rows.append((f"Stanford_Online_Products/{path}", int(cls), subset))
    return fetchlib.write_index(staging, rows, split_of, STANDARD)


def main(argv=None) -> int:
    return fetchlib.main_single_archive(sys.modules[__name__], "sop", argv)


if __name__ == "__main__":
    sys.exit(main())
