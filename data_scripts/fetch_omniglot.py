#!/usr/bin/env python3
"""Fetch the Omniglot "minimal" background splits used by the quick profile.

Downloads ``images_background_small1.zip`` and ``images_background_small2.zip``
from the dataset's official repository (Lake et al., Science 2015) -- or copies
them from a mirror folder -- verifies their SHA-256, and extracts them into::

    <root>/omniglot/<Alphabet>/<character>/<drawer>.png

Greek and Latin are present, identically, in both zips; they are extracted once,
giving 8 alphabets, 242 characters and 4,840 images.

Safe to interrupt and to re-run: downloads go to ``<root>/downloads/`` (an
interrupted one is resumed) and are verified before use, the extraction happens in
a temporary folder that is renamed into place only when complete, and a second run
notices the finished dataset and does nothing.

Usage::

    python data_scripts/fetch_omniglot.py [--root DIR] [--mirror DIR]

``--root`` defaults to ``$BIERLIB_DATA`` or ``~/.cache/bierlib``;
``--mirror`` defaults to ``$BIERLIB_OMNIGLOT_MIRROR`` (a folder holding the two zips).

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=fetchlib.default_root(),
                        help="data folder (default: $BIERLIB_DATA or ~/.cache/bierlib)")
    parser.add_argument("--mirror", type=Path,
                        default=os.environ.get("BIERLIB_OMNIGLOT_MIRROR") or None,
                        help="folder with the two zips, used instead of downloading "
                             "(default: $BIERLIB_OMNIGLOT_MIRROR)")
    args = parser.parse_args(argv)
    return fetchlib.run(lambda: fetch(args.root.expanduser(), args.mirror))


if __name__ == "__main__":
    sys.exit(main())
