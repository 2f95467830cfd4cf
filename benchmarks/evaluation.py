#!/usr/bin/env python3
"""Time and peak memory of bierlib's retrieval metrics vs a full distance matrix.

For N random 512-d embeddings in classes of 5 items (the shape of Stanford Online
Products, whose test set has N = 60,502), it measures
``bierlib.evaluation.retrieval_metrics`` (faiss search in chunks of queries) and,
where it fits in memory, the obvious alternative: ``torch.cdist`` over all N x N
pairs followed by ``topk``. Each runs in a fresh subprocess so that its peak
resident memory is its own.

    python benchmarks/evaluation.py [--sizes 5000 20000 60000] [--dense-limit 20000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import torch
from bierlib.evaluation import retrieval_metrics
n, method = int(sys.argv[1]), sys.argv[2]
g = torch.Generator().manual_seed(0)
labels = torch.arange(n) // 5
x = torch.nn.functional.normalize(
    torch.randn(n, 512, generator=g) + 0.5 * torch.randn(n // 5 + 1, 512, generator=g)[labels],
    dim=1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tic = time.perf_counter()
if method == "bierlib":
    r1 = retrieval_metrics(x, labels, ks=(1, 10, 100, 1000))["recall@1"]
else:
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    nn = d.topk(1000, largest=False).indices
    r1 = float((labels[nn[:, 0]] == labels).float().mean())
seconds = time.perf_counter() - tic
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "extra_mb": (peak - base) / 1024,
                  "r1": r1}))
"""


def run(n: int, method: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), method], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 60000])
    parser.add_argument("--dense-limit", type=int, default=20000,
                        help="largest N for the dense N x N baseline")
    args = parser.parse_args()
    print("retrieval metrics (Recall@1/10/100/1000, R-precision, MAP@R), D = 512; "
          "extra MB = peak resident memory added by the computation")
    header = f"{'N':>7} {'method':<22} {'seconds':>9} {'extra MB':>9} {'Recall@1':>9}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        rows = [("bierlib (faiss, chunked)", run(n, "bierlib"))]
        if n <= args.dense_limit:
            rows.append(("dense cdist + topk", run(n, "dense")))
        for name, r in rows:
            print(f"{n:>7} {name:<22} {r['seconds']:>9.2f} {r['extra_mb']:>9.0f} {r['r1']:>9.3f}")


if __name__ == "__main__":
    main()
