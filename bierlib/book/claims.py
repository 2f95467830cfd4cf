"""The book's claims, as one family decided by one rule (issue 28).

Every verdict on the site comes from :func:`book_decisions`: the claims of :data:`CLAIMS` (each
paper's claim, and every method against the pretrained features, the free baseline) are read
from the study files (:mod:`bierlib.study`), each as paired per-seed, per-class test Recall@1
(or a per-seed correlation), and decided together by :func:`bierlib.book.decision.decide`, so
Holm's correction runs over the whole family and every page prints the same verdict for the
same claim::

    decisions = book_decisions(study.load_results("ablation"), study.load_results("long"))
    decisions["BIER > single embedding, Recall@1, chosen step of 480"].text

Lengths: ``SHORT`` is the chapters' length (the record at ``study.SHORT_STEP``, a fixed step,
chosen on nothing); ``CHOSEN`` is the step of the 480-step run where the validation alphabet
peaked (``select_on="validation"``), ``LONG`` the same within the long study's 2,000 steps.
Correlations are the final models' (one value per seed).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from .. import study
from ..training import PER_CLASS
from .decision import Decision, decide

FEATURES = "features"  # a claim's baseline: the pretrained features (the study files' "features")
SHORT, CHOSEN, LONG = (f"{study.SHORT_STEP} steps", "chosen step of 480",
                       "chosen step of 2,000")
#: The study methods' names on the pages.
LABELS = {"contrastive": "contrastive", "contrastive_squared": "squared contrastive",
          "triplet": "triplet", "lifted": "lifted structured", "binomial": "single embedding",
          "bier": "BIER", "abier": "A-BIER", "margin": "margin loss",
          "divide_and_conquer": "divide and conquer", FEATURES: "pretrained features"}


@dataclasses.dataclass(frozen=True)
class Claim:
    """One paper's claim, "``method`` beats ``baseline``" (Recall@1 higher) or, for
    ``measure="cross-learner corr"``, "``method`` is less correlated" (lower), in ``cell``
    of the ablation (or of the long study, for ``LONG``) at ``length``."""

    paper: str
    method: str
    baseline: str
    measure: str = "Recall@1"
    length: str = CHOSEN
    cell: str = "miniature"

    @property
    def name(self) -> str:
        sign = "<" if self.measure == "cross-learner corr" else ">"
        where = "" if self.cell == "miniature" else f" ({self.cell})"
        return (f"{LABELS[self.method]} {sign} {LABELS[self.baseline]}, {self.measure}, "
                f"{self.length}{where}")


def _paper_claims() -> list[Claim]:
    claims = []
    for paper, (method, *baselines) in study.CLAIMS.items():
        for baseline in baselines:
            claims += [Claim(paper, method, baseline, length=n) for n in (SHORT, CHOSEN)]
        if paper in ("bier", "abier"):
            claims.append(Claim(paper, method, baselines[0], "cross-learner corr", "final"))
    claims += [Claim("features", m, FEATURES) for m in study.METHODS]
    for d in study.LONG_DIMS:
        claims += [Claim("bier", "bier", "binomial", length=LONG, cell=f"D = {d}"),
                   Claim("bier", "bier", "binomial", "cross-learner corr", "final of 2,000",
                         cell=f"D = {d}")]
    return claims


#: The family: every paper's claim at the chapters' length and at the validation-chosen step,
#: the correlation claims of BIER and A-BIER, every method against the pretrained features at
#: its chosen step, and BIER's claim in the long study at each D.
CLAIMS: list[Claim] = _paper_claims()


def claim_values(claim: Claim, ablation: Mapping, long: Mapping | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The paired values of ``claim``: per-class test Recall@1 (seeds x classes) at its
    length, or the final cross-learner correlation (seeds,), of the method and the baseline
    over the seeds both have (the pretrained features' per-class Recall@1, the file's
    ``"features"``, repeated for every seed)."""
    data = long if claim.length in (LONG, "final of 2,000") else ablation
    if data is None:
        raise ValueError(f"{claim.name!r} needs the long study's file: pass long=")
    if claim.measure == "cross-learner corr":
        key, step = "cross_learner_correlation", None
    else:
        key, step = PER_CLASS, study.SHORT_STEP if claim.length == SHORT else "chosen"
    if claim.baseline == FEATURES:  # the same features for every seed
        a = [study.value(r, key, step) for r in study.runs_of(data, claim.cell, claim.method)]
        b = [data["features"][PER_CLASS]] * len(a)
    else:
        a, b = study.paired_values(data, (claim.cell, claim.method),
                                   (claim.cell, claim.baseline), key, step)
    if not a:
        raise ValueError(f"{claim.name!r}: no seed has runs of both {claim.method} and "
                         f"{claim.baseline} in cell {claim.cell!r}")
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)


def book_decisions(ablation: Mapping, long: Mapping | None = None,
                   claims: list[Claim] | None = None) -> dict[str, Decision]:
    """Every claim of ``claims`` (default :data:`CLAIMS`; the long study's are left out
    without ``long``) decided together: ``{claim name: Decision}``, in order. A Recall@1
    claim is "higher" when detected above its baseline; a correlation claim "lower" when
    detected below (the paper's direction)."""
    claims = [c for c in (claims or CLAIMS)
              if long is not None or c.length not in (LONG, "final of 2,000")]
    return decide({c.name: claim_values(c, ablation, long) for c in claims})


FAMILY = "the book's claims"
