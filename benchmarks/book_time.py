#!/usr/bin/env python3
"""Execution time of each book chapter, read from a finished build's own records.

While it executes the notebooks, myst-nb stores per-document execution data (method,
runtime in seconds, succeeded, mtime) in the Sphinx environment, which Sphinx pickles to
``<build>/.doctrees/environment.pickle``; the records live at
``env.nb_metadata[docname]["exec_data"]`` (the same data the ``nb-exec-table`` directive
renders). This script prints them beside a per-chapter and a whole-book time budget. The
runtime is myst-nb's: from kernel start to the end of the last cell, so it includes kernel
start-up (about a second). Nothing is built or executed here: run ``make book`` first.

    python benchmarks/book_time.py [--build _build] [--chapter-budget 150] [--book-budget 600]
                                   [--json PATH]

Exit code 0 (whatever the times), 2 when the build folder or its pickle is missing.
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

from bierlib.utils import atomic_write


def load_exec_data(pickle_path: Path) -> dict[str, dict]:
    """docname -> myst-nb's exec_data dict, for the documents that were executed."""
    with open(pickle_path, "rb") as f:
        env = pickle.load(f)  # a sphinx BuildEnvironment: needs sphinx (and myst-nb) importable
    metadata = getattr(env, "nb_metadata", {}) or {}
    return {doc: data["exec_data"] for doc, data in sorted(metadata.items())
            if data.get("exec_data") and data["exec_data"].get("runtime") is not None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=Path("_build"),
                        help="jupyter-book build folder")
    parser.add_argument("--chapter-budget", type=float, default=150.0, help="seconds per chapter")
    parser.add_argument("--book-budget", type=float, default=600.0, help="seconds for all chapters")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)

    pickle_path = args.build / ".doctrees" / "environment.pickle"
    if not pickle_path.is_file():
        missing = (f"environment pickle {pickle_path}" if args.build.is_dir()
                   else f"build folder {args.build}")
        print(f"error: no {missing}; run `make book` first (it builds the book into _build/)",
              file=sys.stderr)
        return 2
    data = load_exec_data(pickle_path)

    rows = [{"docname": doc, "seconds": d["runtime"], "budget": args.chapter_budget,
             "status": ("ok" if d["runtime"] <= args.chapter_budget else "OVER")
             + ("" if d.get("succeeded") else " FAILED"),
             "succeeded": bool(d.get("succeeded")), "method": d.get("method"),
             "mtime": d.get("mtime")} for doc, d in data.items()]
    total = sum(r["seconds"] for r in rows)
    book_status = "ok" if total <= args.book_budget else "OVER"

    width = max([len("TOTAL"), len("docname")] + [len(r["docname"]) for r in rows])
    print(f"{'docname':<{width}}  {'seconds':>9}  {'minutes':>7}  {'budget':>7}  status")
    for r in rows:
        print(f"{r['docname']:<{width}}  {r['seconds']:9.1f}  {r['seconds'] / 60:7.2f}  "
              f"{r['budget']:7g}  {r['status']}")
    print(f"{'TOTAL':<{width}}  {total:9.1f}  {total / 60:7.2f}  "
          f"{args.book_budget:7g}  {book_status}")
    stamps = [r["mtime"] for r in rows if r["mtime"]]
    span = (" executed " + " .. ".join(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
                                       for t in (min(stamps), max(stamps)))) if stamps else ""
    print(f"source: {pickle_path} (env.nb_metadata[docname]['exec_data']['runtime'], "
          f"recorded by myst-nb; {len(rows)} notebook(s){span})")

    if args.json:
        payload = {"source": str(pickle_path), "chapters": rows, "total_seconds": total,
                   "chapter_budget": args.chapter_budget, "book_budget": args.book_budget,
                   "book_status": book_status}
        atomic_write(args.json, lambda f: f.write(json.dumps(payload, indent=2) + "\n"),
                     binary=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
