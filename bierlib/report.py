"""Tables of results for the book: metrics dicts in, Markdown out."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_COLUMNS = ("recall@1", "recall@2", "recall@4", "recall@8", "map@r", "nmi", "f1")


def results_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] = DEFAULT_COLUMNS,
                  digits: int = 3) -> str:
    """A Markdown table: one row per named result, one column per metric.

    A value may be a number or a sequence of numbers (one per seed), shown as
    ``mean ± std``. Metrics missing from a row are shown as "-".
    """
    if not rows:
        raise ValueError("rows is empty: give at least one named result")
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in rows.items():
        cells = []
        for column in columns:
            value = metrics.get(column)
            if value is None:
                cells.append("-")
            elif np.ndim(value) == 0:
                cells.append(f"{float(value):.{digits}f}")
            else:
                values = np.asarray(value, dtype=float)
                cells.append(f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0:.{digits}f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
