"""Tables of results for the book: metrics dicts in, Markdown out."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

DEFAULT_COLUMNS = ("recall@1", "recall@2", "recall@4", "recall@8", "map@r", "nmi", "f1")


def results_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] = DEFAULT_COLUMNS,
                  digits: int = 3) -> str:
    """A Markdown table: one row per named result, one column per metric.

    A value may be a number or a sequence of numbers (one per seed), shown as
    ``mean ± std`` (a single value without spread), with ``digits`` decimals; a ``seconds``
    column is shown in whole seconds. Metrics missing from a row are shown as "-".
    """
    if not rows:
        raise ValueError("rows is empty: give at least one named result")
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in rows.items():
        cells = []
        for column in columns:
            value, places = metrics.get(column), 0 if column == "seconds" else digits
            if value is None:
                cells.append("-")
            elif np.ndim(value) == 0 or len(value) == 1:
                cells.append(f"{float(np.ravel(value)[0]):.{places}f}")
            else:
                values = np.asarray(value, dtype=float)
                cells.append(f"{values.mean():.{places}f} ± {values.std(ddof=1):.{places}f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper_runs(results_dir) -> dict[str, list[dict]]:
    """Finished runs found in ``results_dir/*/metrics.json`` (written by ``python -m bierlib.cli``),
    grouped by the configuration name they record."""
    runs: dict[str, list[dict]] = {}
    for path in sorted(Path(results_dir).glob("*/metrics.json")):
        data = json.loads(path.read_text())
        if not isinstance(data.get("final"), dict) or "name" not in data:
            raise ValueError(f"{path} is not a metrics file of python -m bierlib.cli "
                             "(no final/name)")
        runs.setdefault(data["name"], []).append(data)
    return runs


def paper_runs_table(config_names: Sequence[str], runs: Mapping[str, list[dict]],
                     columns: Sequence[str] = ("recall@1", "recall@2", "recall@4", "recall@8",
                                               "nmi")) -> str:
    """One row per configuration: mean ± std of the final metrics over its runs, or "not yet
    run"."""
    rows = {}
    for name in config_names:
        done = runs.get(name, [])
        label = (f"`{name}` ({len(done)} run{'s' * (len(done) != 1)})" if done
                 else f"`{name}` (not yet run)")
        rows[label] = {c: [d["final"][c] for d in done if d["final"].get(c) is not None] or None
                       for c in columns}
    return results_table(rows, columns)


def study_provenance(data: Mapping) -> str:
    """One Markdown sentence: which command computed a study's file, where and when."""
    p, runs = data["provenance"], data["runs"]
    seconds = sum(r["seconds"] for r in runs)
    dates = sorted(r["finished"][:10] for r in runs)
    when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    return (f"`results/study/{data['study']}.json`: {len(runs)} runs computed by "
            f"`{p['command']}` at commit `{p['commit']}` on {p['machine']}, {when}, "
            f"{seconds / 60:.0f} min of training in all.")


def paired_difference(a: Sequence[float], b: Sequence[float]) -> str:
    """``a - b`` over paired seeds as words: mean, spread and how many seeds agree."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    if len(diff) < 2:
        raise ValueError(f"a paired difference needs at least 2 seeds, found {len(diff)}")
    agree = int((diff > 0).sum()) if diff.mean() > 0 else int((diff < 0).sum())
    return (f"{diff.mean():+.3f} ± {diff.std(ddof=1):.3f} "
            f"({agree} of {len(diff)} seeds {'above' if diff.mean() > 0 else 'below'})")
