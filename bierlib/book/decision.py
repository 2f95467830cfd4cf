"""One decision rule for every verdict of the book (issue 28): a paired bootstrap over the test
classes and the seeds, and Holm's correction over the family of claims a page names.

Each claim compares a method with its baseline on the same seeds and the same test classes,
from per-seed, per-class Recall@1 arrays (S seeds x C classes; a study entry's
``"per_class_recall@1"``)::

    family = {"lifted > contrastive": (lifted, contrastive),   # each (S, C)
              "BIER > single embedding": (bier, single)}
    decisions = decide(family)
    print(rule("the ablation's four claims", family))      # once per page
    decisions["lifted > contrastive"].text                  # "+0.024 ± 0.009 (...)"

The difference is the mean over seeds and classes of ``method - baseline``. Its interval is the
percentile interval of ``RESAMPLES`` paired bootstrap resamples that draw S seeds and C
classes with replacement, the same draws for both methods; **"±" is that 95% interval's
half-width** (the interval itself is printed beside it, as it may be asymmetric). A difference
is *detected* when its two-sided bootstrap p, adjusted by Holm's step-down method over the
family, is below ``ALPHA``; a claim with fewer than ``MIN_SEEDS`` seeds is described,
never concluded from (it still counts in the family).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from .report import MIN_SEEDS

ALPHA = 0.05
CONFIDENCE = 0.95
RESAMPLES = 10_000
#: The verdict words of :func:`decide` (``higher`` and ``lower`` may be renamed per page).
UNDETECTED, TOO_FEW = "no detectable difference", "too few seeds"


def _p_values(p_values: Sequence[float]) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or len(p) == 0 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p_values must be a non-empty 1-D sequence of values in [0, 1], "
                         f"found shape {p.shape} with values {p.tolist()}")
    return p


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (m,), in input order: the i-th smallest p times
    (m - i + 1), made non-decreasing in that order, capped at 1. Rejecting where the adjusted
    p < alpha controls the family-wise error rate at alpha."""
    p = _p_values(p_values)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (m,), in input order: the i-th smallest p times
    m / i, made non-decreasing from the largest down, capped at 1. Rejecting where the
    adjusted p < q controls the false discovery rate at q (independent or positively
    dependent tests)."""
    p = _p_values(p_values)
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(m)
    out[order] = adjusted
    return out


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    """A paired bootstrap of ``a - b``: the observed mean difference, its percentile
    interval [low, high], the two-sided bootstrap p, and the sizes it was drawn from."""

    difference: float
    low: float
    high: float
    p: float
    seeds: int
    classes: int
    resamples: int

    @property
    def half_width(self) -> float:
        """Half the interval's width (the book's "±")."""
        return (self.high - self.low) / 2


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    """(S, C) float arrays of ``a`` and ``b``; a 1-D input is one value per seed (C = 1)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"method and baseline values must have the same shape, (seeds, "
                         f"classes) or (seeds,), non-empty; found {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("method and baseline values must be finite, found NaN or infinity")
    return (a[:, None], b[:, None]) if a.ndim == 1 else (a, b)


def resample_indices(seeds: int, classes: int, resamples: int = RESAMPLES, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap's draws: seed indices (R, S), then class indices (R, C), from
    ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, seeds, size=(resamples, seeds)),
            rng.integers(0, classes, size=(resamples, classes)))


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` items is drawn in each resample: (R, n) from indices (R, n)."""
    r = len(indices)
    flat = (indices + n * np.arange(r)[:, None]).ravel()
    return np.bincount(flat, minlength=r * n).reshape(r, n).astype(float)


def paired_bootstrap(a, b, resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                     seed: int = 0) -> Bootstrap:
    """The paired bootstrap of ``a - b`` over seeds and classes.

    Args:
        a, b: per-seed, per-class values (S, C) of a method and its baseline (e.g. Recall@1
            of each test class), the same seeds in the rows and classes in the columns; or
            one value per seed (S,), which resamples the seeds only.
        resamples: R, the number of bootstrap resamples.
        confidence: of the percentile interval.
        seed: of the draws (:func:`resample_indices`), so every build prints the same numbers.

    Each resample draws S seeds and C classes with replacement (crossed: every drawn seed
    with every drawn class) and takes the mean difference over the S x C cells. The p is
    two-sided: twice the smaller share of resamples at or beyond 0 on either side, each share
    counted as (k + 1) / (R + 1), capped at 1 (so the smallest p is 2 / (R + 1)).
    """
    a, b = _paired(a, b)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, found {resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), found {confidence}")
    d = a - b  # (S, C)
    s, c = d.shape
    seed_idx, class_idx = resample_indices(s, c, resamples, seed)
    # the mean of d over the drawn rows x drawn columns, as count-weighted sums: (R,)
    boot = np.einsum("rc,rc->r", _counts(seed_idx, s) @ d, _counts(class_idx, c)) / (s * c)
    low, high = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    tail = min((boot <= 0).sum(), (boot >= 0).sum())
    p = min(1.0, 2 * (tail + 1) / (resamples + 1))
    return Bootstrap(float(d.mean()), float(low), float(high), float(p), s, c, resamples)


@dataclasses.dataclass(frozen=True)
class Decision(Bootstrap):
    """One claim of a family under the rule: its bootstrap (difference, interval, raw p), the
    Holm-adjusted p over the family, and the verdict word."""

    p_adjusted: float
    verdict: str
    family_size: int

    @property
    def text(self) -> str:
        """The difference in words, e.g. ``+0.024 ± 0.009 (95% interval [+0.015, +0.033]; p =
        0.0002, Holm-adjusted over 4 claims 0.0008)``."""
        return (f"{self.difference:+.3f} ± {self.half_width:.3f} ({CONFIDENCE:.0%} interval "
                f"[{self.low:+.3f}, {self.high:+.3f}]; p = {self.p:.2g}, Holm-adjusted over "
                f"{self.family_size} claim{'s' * (self.family_size != 1)} "
                f"{self.p_adjusted:.2g})")


def decide(family: Mapping[str, tuple], alpha: float = ALPHA, higher: str = "higher",
           lower: str = "lower", resamples: int = RESAMPLES, seed: int = 0
           ) -> dict[str, Decision]:
    """The rule applied to a named ``family`` of claims ``{name: (method, baseline)}``, each
    side (S, C) per-seed, per-class values or (S,) per-seed values (see
    :func:`paired_bootstrap`): per claim its :class:`Decision`, in the family's order.

    The verdict is ``higher`` or ``lower`` (the sign of the difference) when the
    Holm-adjusted p over the whole family is below ``alpha``, "no detectable difference"
    otherwise, and "too few seeds" below ``MIN_SEEDS`` seeds (such a claim still counts in the
    family). Every claim is bootstrapped with the same ``seed``.
    """
    if not family:
        raise ValueError("family is empty: name at least one claim {name: (method, baseline)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), found {alpha}")
    boots = {}
    for name, sides in family.items():
        if len(sides) != 2:
            raise ValueError(f"claim {name!r} must be (method values, baseline values), found "
                             f"{len(sides)} items")
        try:
            boots[name] = paired_bootstrap(*sides, resamples=resamples, seed=seed)
        except ValueError as err:
            raise ValueError(f"claim {name!r}: {err}") from err
    adjusted = holm([bt.p for bt in boots.values()])
    out = {}
    for (name, bt), p_adj in zip(boots.items(), adjusted):
        if bt.seeds < MIN_SEEDS:
            word = TOO_FEW
        elif p_adj < alpha:
            word = higher if bt.difference > 0 else lower
        else:
            word = UNDETECTED
        out[name] = Decision(**dataclasses.asdict(bt), p_adjusted=float(p_adj), verdict=word,
                             family_size=len(boots))
    return out


def rule(family_name: str, claims: Sequence[str] | Mapping, alpha: float = ALPHA,
         resamples: int = RESAMPLES, listed_in: str | None = None) -> str:
    """The rule and the family in one sentence, for a page to print once before its
    verdicts; ``claims`` are the family's names (or the family itself). With ``listed_in``
    (e.g. "Chapter 7") the sentence points there instead of naming every claim."""
    names = list(claims)
    listing = f"listed in {listed_in}" if listed_in else "; ".join(names)
    return (f"Each verdict compares two methods on the same seeds and test classes: the "
            f"difference is the mean over seeds and classes, \"±\" is the half-width of its "
            f"{CONFIDENCE:.0%} interval from {resamples:,} paired bootstrap resamples of seeds "
            f"and classes together, and a difference is *detected* when its bootstrap p, "
            f"Holm-adjusted over the family of {len(names)} claim{'s' * (len(names) != 1)} "
            f"({family_name}: {listing}), is below {alpha:g}; with fewer than "
            f"{MIN_SEEDS} seeds a number is described, never concluded from.")
