"""Tables of results for the book: metrics dicts in, Markdown out."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from ..evaluation import metric_name

DEFAULT_COLUMNS = ("recall@1", "recall@2", "recall@4", "recall@8", "map@r", "nmi", "f1")


def results_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] = DEFAULT_COLUMNS,
                  digits: int = 3) -> str:
    """A Markdown table: one row per named result, one column per metric (headed by its
    :func:`~bierlib.evaluation.metric_name`).

    A value may be a number or a sequence of numbers (one per seed), shown as
    ``mean ± std`` (a single value without spread), with ``digits`` decimals; a ``seconds``
    column is shown in whole seconds; a string is shown as it is. Metrics missing from a row
    are shown as "-".
    """
    if not rows:
        raise ValueError("rows is empty: give at least one named result")
    lines = ["| | " + " | ".join(map(metric_name, columns)) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, metrics in rows.items():
        cells = []
        for column in columns:
            value, places = metrics.get(column), 0 if column == "seconds" else digits
            if value is None:
                cells.append("-")
            elif isinstance(value, str):  # already words, e.g. a verdict
                cells.append(value)
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
    """One Markdown sentence: a study file's runs, when they finished, and which invocation
    last wrote the file (a study resumes, so earlier invocations may have run some runs; each
    run records its own date and machine)."""
    p, runs = data["provenance"], data["runs"]
    seconds = sum(r["seconds"] for r in runs)
    dates = sorted(r["finished"][:10] for r in runs)
    when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    return (f"`results/study/{data['study']}.json`: {len(runs)} runs finished {when} "
            f"({seconds / 60:.0f} min of training in all), each with its configuration, "
            f"date and machine; the file was last written by `{p['command']}` at commit "
            f"`{p['commit']}` on {p['machine']}.")


#: The book's one rule for a verdict on a difference between two methods over paired seeds:
#: at least MIN_SEEDS seeds, and a two-sided paired t-test at level ALPHA.
MIN_SEEDS = 5
ALPHA = 0.05
RULE = (f"a verdict needs at least {MIN_SEEDS} paired seeds; the difference is *detected* when "
        f"a two-sided paired t-test across seeds gives p < {ALPHA} (the exact sign test's p is "
        "shown beside it), otherwise it is *no detectable difference*")


@dataclasses.dataclass(frozen=True)
class PairedTest:
    """``a - b`` over paired seeds: mean, std (ddof 1), seeds above/below zero, the two-sided
    paired t-test's p and the exact two-sided sign test's p (ties dropped)."""

    mean: float
    std: float
    n: int
    above: int
    below: int
    p_t: float
    p_sign: float

    @property
    def verdict(self) -> str:
        """"higher", "lower", "no detectable difference" or "too few seeds" under ``RULE``."""
        if self.n < MIN_SEEDS:
            return "too few seeds"
        if not self.p_t < ALPHA:
            return "no detectable difference"
        return "higher" if self.mean > 0 else "lower"


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """The paired comparison of ``a`` and ``b`` (one value per seed, same seeds in order)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"a paired test needs two equal-length sequences of at least 2 values "
                         f"(one per seed), found shapes {a.shape} and {b.shape}")
    diff = a - b
    above, below = int((diff > 0).sum()), int((diff < 0).sum())
    std = float(diff.std(ddof=1))
    if std == 0:  # every seed moved by the same amount: t is infinite, or undefined at 0
        p_t = 1.0 if diff.mean() == 0 else 0.0
    else:
        p_t = float(stats.ttest_rel(a, b).pvalue)
    p_sign = (float(stats.binomtest(above, above + below).pvalue) if above + below else 1.0)
    return PairedTest(float(diff.mean()), std, len(diff), above, below, p_t, p_sign)


def paired_difference(a: Sequence[float], b: Sequence[float], queries: int | None = None) -> str:
    """``a - b`` over paired seeds as words: mean ± std, seeds above/below, both tests' p, and
    (given the number of test ``queries``, for a Recall@1) how many queries the mean is."""
    t = paired_test(a, b)
    count = f", about {abs(t.mean) * queries:.0f} of {queries:,} queries" if queries else ""
    return (f"{t.mean:+.3f} ± {t.std:.3f}{count} ({t.above} of {t.n} seeds above, {t.below} "
            f"below; paired t-test p = {t.p_t:.2g}, sign test p = {t.p_sign:.2g})")


def verdict(a: Sequence[float], b: Sequence[float], higher: str = "reproduced",
            lower: str = "reversed") -> str:
    """The verdict on "``a`` is higher than ``b``" under ``RULE`` as Markdown: bold
    ``higher`` or ``lower`` when the difference is detected, "no detectable difference"
    otherwise, "too few seeds (n)" below ``MIN_SEEDS``."""
    t = paired_test(a, b)
    if t.verdict == "too few seeds":
        return f"too few seeds for a verdict ({t.n} < {MIN_SEEDS})"
    if t.verdict == "no detectable difference":
        return "**no detectable difference**"
    return f"**{higher if t.verdict == 'higher' else lower}**"


#: How a setting is written in a page's Markdown (others as their option name).
_SETTING_NAMES = {"lambda_div": r"$\lambda_{\text{div}}$", "lambda_w": r"$\lambda_w$",
                 "shrinkage": r"shrinkage $\eta$"}


def tuning_markdown(rows_by_method: Mapping[str, Sequence[Mapping]],
                    labels: Mapping[str, str]) -> str:
    """The tuning trials of each method (``{method: bierlib.study.tuning_table(...)}``) as a
    Markdown table -- settings, validation Recall@1 as mean ± std over the trial's seeds, the
    winner in bold -- followed by a sentence naming each method whose winner was picked by a
    margin the seeds do not resolve (``"tie"`` rows) and how that tie was broken."""
    lines = ["| method | trial | validation Recall@1 (mean ± std over seeds) | |",
             "|---|---|---|---|"]
    ties = []
    for method, rows in rows_by_method.items():
        for i, row in enumerate(rows):
            settings = ", ".join(f"{_SETTING_NAMES.get(k, k)} {v:g}"
                                 for k, v in row["settings"].items())
            n = len(row["values"])
            spread = f" ± {row['sd']:.3f}" if n > 1 else ""
            score = f"{row['mean']:.3f}{spread} ({n} seed{'s' * (n != 1)})"
            mark = "**chosen**" if row["winner"] else ("tie" if row["tie"] else "")
            if row["winner"]:
                settings, score = f"**{settings}**", f"**{score}**"
            lines.append(f"| {labels.get(method, method) if i == 0 else ''} | {settings} | "
                         f"{score} | {mark} |")
        tied = [r for r in rows if r["tie"]]
        if tied:
            ties.append(f"{labels.get(method, method)} ({len(tied)} trial"
                        f"{'s' * (len(tied) != 1)} within the noise)")
    text = "\n".join(lines)
    if ties:
        text += ("\n\nA *tie* is a trial whose gap to the chosen one is smaller than the standard "
                 "error of their paired (same-seed) difference: the seeds do not resolve it, "
                 "and the tie was broken by the higher mean. Ties: " + "; ".join(ties) + ".")
    return text
