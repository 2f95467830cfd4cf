#!/usr/bin/env python3
"""Soak test of chapter execution: does any cell stall? Plain nbclient against the book's
bounded waits (:mod:`bierlib.book.execution`), optionally beside a busy neighbour.

Executes one chapter N times from a clean kernel, as the book build does (after one
uncounted execution that trains the chapter's runs, so every counted one loads them), and
prints a table per execution: total seconds, the cell furthest above its median over the
executions of the same client, and the largest lags on one clock (machine wall time):

* ``reply lag``: from the kernel sending a cell's reply (its message timestamp) to the
  client having it. A missed wake-up of the client's wait shows here, as seconds up to the
  cell timeout.
* ``start lag``: from the client sending a cell to the kernel going busy.

    python benchmarks/execution_soak.py [--chapter 03_bier] [--runs 10] [--client bounded plain]
        [--busy] [--timeout 120] [--json PATH]

``--busy`` runs a CPU-bound process beside it (a busy laptop). Passes (exit 0) when no cell
of a bounded execution took more than 2x its median plus 1 s (sub-second cells jitter by
up to 2x beside a busy neighbour) and no bounded reply lag exceeded 2 s.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import nbformat

from bierlib.book import execution
from bierlib.utils import atomic_write

REPO = Path(__file__).resolve().parents[1]
BUSY = "import time\nend = time.time() + 7200\nwhile time.time() < end:\n    sum(range(10000))\n"


def run_once(chapter: str, bounded: bool, timeout: float) -> dict:
    nb = nbformat.read(REPO / "book" / f"{chapter}.ipynb", as_version=4)
    timer_rows: list[dict] = []
    result = execution.execute(nb, cwd=str(REPO / "book"), timeout=timeout, allow_errors=False,
                               bounded=bounded, record=None, log=lambda line: None,
                               times_file=None, rows_out=timer_rows)
    if result.err is not None:
        raise SystemExit(f"{chapter} failed to execute:\n{result.exc_string}")
    return {"seconds": result.time, "cells": timer_rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", default="03_bier")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--client", nargs="+", default=["bounded"], choices=["bounded", "plain"])
    parser.add_argument("--busy", action="store_true", help="a CPU-bound process runs beside it")
    parser.add_argument("--timeout", type=float, default=120.0, help="cell timeout (seconds)")
    parser.add_argument("--json", type=Path, help="also write every execution's cells here")
    args = parser.parse_args(argv)

    print(f"warm-up execution of {args.chapter} (trains its runs when missing; not counted)",
          flush=True)
    run_once(args.chapter, True, max(args.timeout, 600))
    neighbour = subprocess.Popen([sys.executable, "-c", BUSY]) if args.busy else None
    executions = []
    try:
        for client in args.client:
            for i in range(args.runs):
                out = run_once(args.chapter, client == "bounded", args.timeout)
                executions.append({"client": client, "run": i, **out})
                worst = max(out["cells"], key=lambda c: c["wall"])
                print(f"  {client} {i + 1}/{args.runs}: {out['seconds']:.1f} s, slowest cell "
                      f"{worst['index']} {worst['wall']:.1f} s", flush=True)
    finally:
        if neighbour is not None:
            neighbour.kill()

    print(f"\n{args.chapter}, {args.runs} executions per client, cell timeout {args.timeout:g} s"
          f"{', a CPU-bound neighbour running' if args.busy else ''}")
    print(f"{'client':<8} {'run':>3} {'seconds':>8} {'worst cell':>10} {'x median':>8} "
          f"{'max reply lag':>13} {'max start lag':>13}")
    ok = True
    for client in args.client:
        mine = [e for e in executions if e["client"] == client]
        medians = {idx: statistics.median(c["wall"] for e in mine for c in e["cells"]
                                          if c["index"] == idx)
                   for idx in {c["index"] for e in mine for c in e["cells"]}}
        for e in mine:
            ratio, cell = max(((c["wall"] / max(medians[c["index"]], 0.05), c)
                               for c in e["cells"] if c["wall"] > 1.0),
                              key=lambda t: t[0], default=(1.0, e["cells"][0]))
            reply = max((c["reply_lag"] or 0) for c in e["cells"])
            start = max((c["start_lag"] or 0) for c in e["cells"])
            print(f"{client:<8} {e['run'] + 1:>3} {e['seconds']:8.1f} {cell['index']:>10} "
                  f"{ratio:8.2f} {reply:13.2f} {start:13.2f}")
            over = any(c["wall"] > 2 * medians[c["index"]] + 1.0 for c in e["cells"])
            if client == "bounded" and (over or reply > 2.0):
                ok = False
    print("PASS: no bounded cell above 2x its median + 1 s, no reply lag above 2 s" if ok
          else "FAIL")
    if args.json:
        atomic_write(args.json, lambda f: f.write(json.dumps(executions, indent=1)), binary=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
