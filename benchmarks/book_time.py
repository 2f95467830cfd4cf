#!/usr/bin/env python3
"""Execution time of the book's chapters and cells, cold and warm, against the time budget.

Every book build records each chapter's cells in ``_build/cell_times.json``
(:mod:`bierlib.book.execution`): the wall time of each cell as the build waited for it, the
kernel's own time, and the calibration of the machine (seconds per training step of the
quick network, :func:`bierlib.book.notebook.calibrate`). This script reads such records:

    python benchmarks/book_time.py [--times _build/cell_times.json]    # one build's table
    python benchmarks/book_time.py --compare COLD.json WARM.json        # cold and warm
    python benchmarks/book_time.py --newcomer [--keep DIR]              # measure both, as a
                                                                        # newcomer meets them
    python benchmarks/book_time.py --cold 3 [--keep DIR]               # 3 newcomer builds in a
                                                                        # row against the goal
    python benchmarks/book_time.py --times COLD.json --json bierlib/book/chapter_times.json

``--newcomer`` clones the repository's HEAD into a fresh folder and runs the README's
``make book`` there with a fresh venv, an empty data folder and empty matplotlib and numba
caches (cold), then builds again in that clone (warm), and prints both side by side with
the cells where the cold build spent the most beyond the warm one. ``--json`` writes the
record the chapters' setup cells quote (it should come from a cold build). Budgets are
those of the reference machine (60 s per chapter, 300 s for the book) times the measured
machine's speed relative to it. Exit code 0 (whatever the times; ``--cold``: 1 when a build
missed the goal), 2 when a record is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bierlib.book.notebook import chapter_times
from bierlib.utils import atomic_write

REPO = Path(__file__).resolve().parents[1]
CHAPTER_BUDGET, BOOK_BUDGET = 60.0, 300.0
#: What a chapter's setup cell prints (:func:`bierlib.book.notebook.expected_time`).
PRINTED = re.compile(r"expected run time: about ([\d.]+) (s|min) here")


def load(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"no cell-time record {path}; run `make book` first (every "
                                "build writes _build/cell_times.json)")
    return json.loads(path.read_text())


def speed_of(record: dict) -> float:
    """The record's machine time per second of the reference machine (1 if unknown)."""
    reference = chapter_times().get("calibration_seconds")
    mine = record.get("calibration_seconds")
    return mine / reference if mine and reference else 1.0


def printed_seconds(notebook: Path) -> float | None:
    """The expected run time an executed chapter printed for its machine (None if absent)."""
    if not notebook.is_file():
        return None
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            found = PRINTED.search("".join(output.get("text", "")))
            if found:
                return float(found[1]) * (60 if found[2] == "min" else 1)
    return None


def table(record: dict, source: Path) -> None:
    """Each chapter's time against its budget, and against the time the chapter printed for
    this machine (its reference time scaled by its calibration), from the executed notebooks
    beside the record (``jupyter_execute/book``)."""
    speed = speed_of(record)
    budget, book_budget = CHAPTER_BUDGET * speed, BOOK_BUDGET * speed
    chapters = record["chapters"]
    executed = source.parent / "jupyter_execute" / "book"
    width = max(len("TOTAL"), *map(len, chapters))
    print(f"{'chapter':<{width}}  {'seconds':>8}  {'budget':>7}  status  {'printed':>7}  "
          "actual/printed")
    for name, c in chapters.items():
        status = "ok  " if c["seconds"] <= budget else "OVER"
        printed = printed_seconds(executed / f"{name}.ipynb")
        ratio = f"{c['seconds'] / printed:.2f}" if printed else "-"
        print(f"{name:<{width}}  {c['seconds']:8.1f}  {budget:7.0f}  {status}  "
              f"{printed or float('nan'):7.0f}  {ratio}")
    total = sum(c["seconds"] for c in chapters.values())
    print(f"{'TOTAL':<{width}}  {total:8.1f}  {book_budget:7.0f}  "
          f"{'ok' if total <= book_budget else 'OVER'}")
    print(f"source: {source}; this machine takes {speed:.2f}x the reference machine's time per "
          "training step (budgets scaled by it)")
    cells = sorted(((c["wall"], name, c) for name, ch in chapters.items() for c in ch["cells"]),
                   key=lambda t: -t[0])[:8]
    print("slowest cells: " + "; ".join(f"{n} cell {c['index']} {w:.1f} s" for w, n, c in cells))


def compare(cold: dict, warm: dict, top: int = 12) -> None:
    print(f"{'chapter':<24}  {'cold s':>7}  {'warm s':>7}  {'cold - warm':>11}")
    for name, c in cold["chapters"].items():
        w = warm["chapters"].get(name, {}).get("seconds", float("nan"))
        print(f"{name:<24}  {c['seconds']:7.1f}  {w:7.1f}  {c['seconds'] - w:11.1f}")
    total_c = sum(c["seconds"] for c in cold["chapters"].values())
    total_w = sum(c["seconds"] for c in warm["chapters"].values())
    print(f"{'TOTAL':<24}  {total_c:7.1f}  {total_w:7.1f}  {total_c - total_w:11.1f}")
    gaps = []
    for name, ch in cold["chapters"].items():
        warm_cells = {c["id"]: c for c in warm["chapters"].get(name, {}).get("cells", [])}
        for c in ch["cells"]:
            if c["id"] in warm_cells:
                gaps.append((c["wall"] - warm_cells[c["id"]]["wall"], name, c,
                             warm_cells[c["id"]]["wall"]))
    print(f"\nwhere the cold build spent most beyond the warm one (top {top}):")
    for gap, name, c, w in sorted(gaps, key=lambda t: -t[0])[:top]:
        print(f"  {name} cell {c['index']:>2} ({c['first_line']!r}): cold {c['wall']:.1f} s, "
              f"warm {w:.1f} s, +{gap:.1f} s")


def fresh_clone(folder: Path) -> tuple[Path, dict]:
    """A fresh clone of HEAD in ``folder`` and the environment of a newcomer's first build
    (empty data folder and matplotlib and numba caches in ``folder``)."""
    clone = folder / "clone"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    env = {**os.environ, "BIERLIB_DATA": str(folder / "data"),
           "MPLCONFIGDIR": str(folder / "mpl"), "NUMBA_CACHE_DIR": str(folder / "numba")}
    for name in ("data", "mpl", "numba"):
        shutil.rmtree(folder / name, ignore_errors=True)
    return clone, env


def timed(command: list[str], clone: Path, env: dict, log: Path) -> float:
    start = time.monotonic()
    with open(log, "w") as f:
        subprocess.run(command, cwd=clone, env=env, stdout=f, stderr=subprocess.STDOUT,
                       check=True)
    return time.monotonic() - start


def newcomer(keep: Path | None) -> tuple[Path, Path]:
    """Clone HEAD, run ``make book`` cold (fresh venv, data, caches), then build again warm."""
    folder = keep or Path(tempfile.mkdtemp(prefix="bierlib-newcomer-"))
    clone, env = fresh_clone(folder)
    results = []
    for kind, command in (("cold", ["make", "book"]),
                          ("warm", [".venv/bin/jupyter-book", "build", ".", "-W", "-n",
                                    "--keep-going"])):
        if kind == "warm":
            shutil.rmtree(clone / "_build", ignore_errors=True)
            shutil.rmtree(clone / "book" / "runs", ignore_errors=True)
        seconds = timed(command, clone, env, folder / f"{kind}.log")
        print(f"{kind}: `{' '.join(command)}` took {seconds:.0f} s "
              f"(log: {folder / f'{kind}.log'})", flush=True)
        results.append(folder / f"{kind}.json")
        shutil.copy(clone / "_build" / "cell_times.json", results[-1])
    return results[0], results[1]


def cold_builds(runs: int, keep: Path | None) -> int:
    """``runs`` newcomer builds in a row, each from a fresh clone, venv, data folder and caches
    (``make setup``, then ``make book``): one row per build against the goal (7 min with set-up,
    60 s a chapter, at the reference speed scaled by the build's calibration). Returns the
    number of builds that missed it."""
    folder = keep or Path(tempfile.mkdtemp(prefix="bierlib-cold-"))
    print(f"{'build':>5}  {'setup s':>7}  {'book s':>7}  {'total s':>7}  {'goal s':>6}  "
          f"{'chapters s':>10}  {'slowest':<24}  {'s':>5}  {'goal':>4}  stalls  status")
    missed = 0
    for run in range(1, runs + 1):
        clone, env = fresh_clone(folder / f"build{run}")
        setup = timed(["make", "setup"], clone, env, folder / f"build{run}" / "setup.log")
        book = timed(["make", "book"], clone, env, folder / f"build{run}" / "book.log")
        record = load(clone / "_build" / "cell_times.json")
        shutil.copy(clone / "_build" / "cell_times.json", folder / f"cold{run}.json")
        speed = speed_of(record)
        chapters = {n: c["seconds"] for n, c in record["chapters"].items()}
        slowest = max(chapters, key=chapters.get)
        log = (folder / f"build{run}" / "book.log").read_text()
        stalls = sum(line.startswith(("stall:", "lost reply:")) for line in log.splitlines())
        ok = (setup + book <= 420 * speed and chapters[slowest] <= CHAPTER_BUDGET * speed
              and not stalls)
        missed += not ok
        print(f"{run:>5}  {setup:7.0f}  {book:7.0f}  {setup + book:7.0f}  {420 * speed:6.0f}  "
              f"{sum(chapters.values()):10.1f}  {slowest:<24}  {chapters[slowest]:5.1f}  "
              f"{CHAPTER_BUDGET * speed:4.0f}  {stalls:>6}  {'ok' if ok else 'MISSED'}",
              flush=True)
        shutil.rmtree(clone / ".venv", ignore_errors=True)  # keep the logs and records only
    print(f"records: {folder}/cold*.json; goals scaled by each build's calibration "
          "(seconds per training step against the reference machine's)")
    return missed


def write_record(record: dict, path: Path, source: Path) -> None:
    chapters = [{"docname": f"book/{name}", "seconds": round(c["seconds"], 1),
                 "cells": {cell["id"]: cell["wall"] for cell in c["cells"]}}
                for name, c in record["chapters"].items()]
    payload = {"source": f"{source.name} of a cold `make book` (python benchmarks/book_time.py "
                         "--newcomer)",
               "machine": f"a {os.cpu_count()}-core {platform.machine()} CPU",
               "calibration_seconds": record.get("calibration_seconds"),
               "total_seconds": round(sum(c["seconds"] for c in chapters), 1),
               "chapters": chapters}
    atomic_write(path, lambda f: f.write(json.dumps(payload, indent=1) + "\n"), binary=False)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=Path, default=REPO / "_build" / "cell_times.json")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("COLD", "WARM"))
    parser.add_argument("--newcomer", action="store_true",
                        help="build cold in a fresh clone, then warm, and compare (minutes)")
    parser.add_argument("--cold", type=int, metavar="N",
                        help="N cold builds in a row, each from a fresh clone (minutes each)")
    parser.add_argument("--keep", type=Path, help="with --newcomer or --cold: work here")
    parser.add_argument("--json", type=Path, help="write the chapter-times record here")
    args = parser.parse_args(argv)
    try:
        if args.cold:
            return 1 if cold_builds(args.cold, args.keep) else 0
        if args.newcomer:
            args.compare = list(newcomer(args.keep))
        if args.compare:
            cold, warm = map(load, args.compare)
            compare(cold, warm)
            source, record = args.compare[0], cold
        else:
            source, record = args.times, load(args.times)
            table(record, source)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        write_record(record, args.json, source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
