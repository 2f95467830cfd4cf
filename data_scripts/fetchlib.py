"""What the fetch scripts share (standard library only): resumable downloads, checksums,
safe extraction and atomic installation of a dataset folder.

Every ``fetch_<dataset>.py`` script next to this file follows the same steps:

1. obtain each archive: an explicit ``--archive`` file, else the file of that name in a
   ``--mirror`` folder, else a download from the official address into
   ``<root>/downloads/`` (a ``.part`` file that a later run resumes with an HTTP
   ``Range`` request);
2. verify its checksum where one is known (MD5 as published by the usual loaders);
3. extract into a temporary folder inside ``<root>``, refusing any member that would
   land outside it (absolute paths, ``..``, links), check the expected layout and
   count the split;
4. write ``COMPLETE.json`` and rename the folder into place: the dataset appears
   complete or not at all, and a second run finds it and does nothing.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

MARKER = "COMPLETE.json"


class FetchError(RuntimeError):
    """A download, an archive or a layout that cannot be used; the message says what to do."""


def default_root() -> Path:
    return Path(os.environ.get("BIERLIB_DATA") or Path.home() / ".cache" / "bierlib")


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, target: Path, timeout: float = 60) -> Path:
    """Download ``url`` to ``target``, resuming a previous ``target.part`` when the server
    honours ``Range``; ``target`` appears only when the transfer has finished."""
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = have and response.status == 206
            print(f"{'resuming' if resumed else 'downloading'} {url}"
                  + (f" at byte {have}" if resumed else ""))
            with open(part, "ab" if resumed else "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to fetch: the .part is complete
            pass
        else:
            raise FetchError(f"could not download {url}: HTTP {err.code} {err.reason}. Official "
                             "links move; download the file by hand and pass --archive PATH "
                             "(or --mirror DIR)") from err
    except OSError as err:
        raise FetchError(f"could not download {url}: {err}. The partial file {part} is kept and "
                         "a new run resumes it; without internet access pass --archive PATH "
                         "or --mirror DIR") from err
    os.replace(part, target)
    return target


HASH_NAMES = {"md5": "MD5", "sha256": "SHA-256"}


def obtain(name: str, root: Path, urls: list[str], archive: Path | None = None,
           mirror: Path | None = None, checksum: tuple[str, str] | None = None) -> Path:
    """The verified archive ``name``: ``archive`` if given, else ``mirror/name``, else a
    (resumable) download into ``root/downloads``. ``checksum``: (``"md5"`` or ``"sha256"``, hex)."""
    if archive is not None:
        path = Path(archive)
        if not path.is_file():
            raise FetchError(f"--archive {path} does not exist")
    elif mirror is not None:
        path = Path(mirror) / name
        if not path.is_file():
            raise FetchError(f"mirror folder {mirror} has no file {name}")
    else:
        path = root / "downloads" / name
        if not path.is_file():
            errors = []
            for url in urls:
                try:
                    download(url, path)
                    break
                except FetchError as err:
                    errors.append(str(err))
            else:
                raise FetchError("; ".join(errors) or f"no download address is known for {name}; "
                                 "pass --archive PATH")
    if checksum is not None:
        algorithm, expected = checksum
        found = file_hash(path, algorithm)
        if found != expected:
            hint = "fetch it again from the official address"
            if archive is None and mirror is None:
                path.unlink()  # a corrupted download must not be trusted by the next run
                hint = "the download was deleted; run again to download it afresh"
            raise FetchError(f"{path} is corrupted or truncated: {HASH_NAMES[algorithm]} {found}, "
                             f"expected {expected}; {hint}")
    return path


def _inside(dest: Path, name: str) -> Path:
    target = (dest / name).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise FetchError(f"refusing archive member {name!r}: it would be written outside "
                         f"{dest}; the archive is not the official one")
    return target


def extract(archive: Path, dest: Path) -> None:
    """Extract a .zip or .tar(.gz) into ``dest``, refusing members that escape it."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.infolist():
                    _inside(dest, member.filename)
                zf.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _inside(dest, member.name)
                tf.extractall(dest, filter="data")  # also refuses links and devices
        else:
            raise FetchError(f"{archive} is neither a zip nor a tar archive (truncated or "
                             "corrupted download?); delete it and fetch it again")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise FetchError(f"{archive} could not be extracted ({type(err).__name__}: {err}); it is "
                         "truncated or corrupted: delete it and fetch it again") from err


def install(root: Path, name: str, build: Callable[[Path], dict]) -> Path:
    """Make ``root/name`` by ``build(staging_folder) -> counts`` in a temporary folder that is
    renamed into place with its ``COMPLETE.json``; do nothing if it is already complete."""
    dest = root / name
    if (dest / MARKER).is_file():
        counts = json.loads((dest / MARKER).read_text())
        print(f"{name} already present in {dest}: {summary(counts)}; nothing to do")
        return dest
    if dest.exists():
        raise FetchError(f"{dest} exists but is not a complete extraction (no {MARKER}); "
                         "delete that folder and run this script again")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=root) as tmp:
        staging = Path(tmp) / name
        staging.mkdir()
        counts = build(staging)
        (staging / MARKER).write_text(json.dumps(counts, indent=1))
        try:
            os.replace(staging, dest)
        except OSError:  # another process (a notebook, a test worker) installed it meanwhile
            if not (dest / MARKER).is_file():
                raise
            counts = json.loads((dest / MARKER).read_text())
    print(f"{name} ready in {dest}: {summary(counts)}")
    return dest


def summary(counts: dict) -> str:
    return "; ".join(f"{split}: {c['classes']:,} classes, {c['images']:,} images"
                     for split, c in counts.items() if isinstance(c, dict))


def warn_if_not_standard(counts: dict, standard: dict) -> None:
    """Say so when the split differs from the official release's (a partial or other copy)."""
    got = {k: (v["classes"], v["images"]) for k, v in counts.items() if isinstance(v, dict)}
    if got != standard:
        print(f"warning: the standard split has {standard} (classes, images); this copy gives "
              f"{got}. Check that the archive is the complete official release", file=sys.stderr)


def split_counts(labels_by_split: dict[str, list]) -> dict:
    return {split: {"classes": len(set(labels)), "images": len(labels)}
            for split, labels in labels_by_split.items()}


def parser(description: str, archives: list[str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--root", type=Path, default=default_root(),
                   help="data folder (default: $BIERLIB_DATA or ~/.cache/bierlib)")
    p.add_argument("--mirror", type=Path, default=None,
                   help=f"folder that already holds {', '.join(archives)}")
    p.add_argument("--archive", type=Path, action="append", default=None,
                   help=f"an already downloaded archive ({', '.join(archives)}); "
                        "repeat for several")
    return p


def pick_archives(names: list[str], given: list[Path] | None) -> dict[str, Path | None]:
    """Match ``--archive`` files to the expected archive names (by file name)."""
    chosen: dict[str, Path | None] = dict.fromkeys(names)
    for path in given or []:
        match = [n for n in names if Path(path).name == n]
        if not match:
            if len(names) != 1:
                raise FetchError(f"--archive {path}: expected a file named one of {names}")
            match = names
        chosen[match[0]] = Path(path)
    return chosen


def main_single_archive(script, folder: str, argv=None) -> int:
    """The whole command line of a dataset with one archive. ``script`` is the fetch module:
    its ``__doc__``, ``ARCHIVE``, ``URLS``, ``MD5`` and ``build(staging, archive) -> counts``."""
    args = parser(script.__doc__.split("\n\n")[0], [script.ARCHIVE]).parse_args(argv)
    root = args.root.expanduser()

    def go():
        given = pick_archives([script.ARCHIVE], args.archive)[script.ARCHIVE]
        archive = obtain(script.ARCHIVE, root, script.URLS, given, args.mirror, ("md5", script.MD5))
        install(root, folder, lambda staging: script.build(staging, archive))

    return run(go)


def run(main: Callable[[], object]) -> int:
    try:
        main()
    except FetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def write_index(staging: Path, rows: list[tuple[str, int, str]],
                split_of: Callable[[int, str], str], standard: dict) -> dict:
    """Check that every listed image exists, write ``index.csv`` (path, class, subset) and
    return the counts of the metric-learning split (warning when not the standard ones)."""
    if not rows:
        raise FetchError("the annotations list no images; the archive is not the official one")
    missing = [p for p, _, _ in rows if not (staging / p).is_file()]
    if missing:
        raise FetchError(f"{len(missing)} of {len(rows)} listed images are missing from the "
                         f"archive (first: {missing[0]}); the download is incomplete")
    with open(staging / "index.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "class", "subset"])
        writer.writerows(rows)
    by_split: dict[str, list] = {}
    for _, cls, subset in rows:
        by_split.setdefault(split_of(cls, subset), []).append(cls)
    counts = split_counts(by_split)
    warn_if_not_standard(counts, standard)
    return counts
