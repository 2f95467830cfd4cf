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
          "divide_and_conquer": "divide and conquer", "multi_similarity": "multi-similarity",
          "proxy_anchor": "proxy-anchor", FEATURES: "pretrained features"}


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


#: The book's family of claims, decided together (every paper's claim at the chapters' length
#: and at the validation-chosen step, the correlation claims of BIER and A-BIER, every method
#: against the pretrained features at its chosen step, and BIER's claim in the long study at
#: each D).
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


def find(method: str, baseline: str, measure: str = "Recall@1", length: str = CHOSEN,
         cell: str = "miniature") -> Claim:
    """The claim of :data:`CLAIMS` with these fields; a KeyError naming the family if none."""
    for c in CLAIMS:
        if (c.method, c.baseline, c.measure, c.length, c.cell) == (method, baseline, measure,
                                                                   length, cell):
            return c
    raise KeyError(f"no claim {method} vs {baseline} ({measure}, {length}, {cell}) in the "
                   f"book's family; its claims: {[c.name for c in CLAIMS]}")


_ABOVE = {"higher": "above", "lower": "below"}


def _said(d: Decision) -> str:
    """A decision as "+0.024 ± 0.009 (...; verdict)"."""
    return f"{d.text}: {d.verdict}"


def paragraph(decisions: Mapping[str, Decision], method: str, bases: tuple[str, ...] = (),
              page: Mapping[str, float] | None = None, features: float | None = None) -> str:
    """A chapter's closing paragraph (Markdown) from the book's ``decisions``
    (:func:`book_decisions`): ``method`` minus each of ``bases`` at the chapters' length and at
    the validation-chosen step, the correlation claims where the family has them, every one of
    them against the pretrained features, and what that means for a practitioner, length by
    length. ``page`` (name -> Recall@1 of the page's own one-seed runs, with ``features`` the
    features' Recall@1) opens it as a description, never a verdict."""
    L, parts = LABELS, []
    if page:
        parts.append(f"On this page (one seed, {SHORT}, a description rather than a verdict): "
                     + ", ".join(f"{k} {v:.3f}" for k, v in page.items()) + " Recall@1"
                     + (f", against {features:.3f} for the pretrained features alone"
                        if features is not None else "") + ".")
    any_d = next(iter(decisions.values()))
    parts.append(f"In the committed study ({any_d.seeds} seeds, each method at its own tuned "
                 f"settings; Chapter 7), under the book's rule (Holm over its "
                 f"{any_d.family_size} claims):")
    verdicts = {}
    for base in bases:
        at = {n: decisions[find(method, base, length=n).name] for n in (SHORT, CHOSEN)}
        verdicts[base] = {n: d.verdict for n, d in at.items()}
        parts.append(f"{_capital(L[method])} minus {L[base]} is {_said(at[SHORT])} at {SHORT}, "
                     f"and {_said(at[CHOSEN])} at the {CHOSEN} steps.")
        corr = [c for c in CLAIMS if (c.method, c.baseline, c.measure, c.cell)
                == (method, base, "cross-learner corr", "miniature")]
        for c in corr:
            d = decisions[c.name]
            word = {"lower": "lower, the paper's direction",
                    "higher": "higher, the opposite of the paper's claim"}.get(d.verdict,
                                                                             d.verdict)
            parts.append(f"Its final cross-learner corr minus {L[base]}'s is {d.text} "
                         f"({word}).")
    against = {m: decisions[find(m, FEATURES).name] for m in (method, *bases)}
    parts.append("Against the pretrained features, at the chosen step: " + "; ".join(
        f"{L[m]} {d.text}: " + (f"{_ABOVE[d.verdict]} them" if d.verdict in _ABOVE
                                else d.verdict) for m, d in against.items()) + ".")
    parts.append("**For a practitioner:** " + _advice(method, verdicts, against))
    return " ".join(parts)


def _advice(method: str, verdicts: Mapping[str, Mapping[str, str]],
            against: Mapping[str, Decision]) -> str:
    L, sentences = LABELS, []
    for length in (SHORT, CHOSEN):
        won = [L[b] for b, v in verdicts.items() if v[length] == "higher"]
        lost = [L[b] for b, v in verdicts.items() if v[length] == "lower"]
        tied = [L[b] for b, v in verdicts.items() if v[length] not in ("higher", "lower")]
        out = ([f"{L[method]} beats {' and '.join(won)}"] if won else []) \
            + ([f"{' and '.join(lost)} beat{'s' * (len(lost) == 1)} {L[method]}"]
               if lost else []) \
            + ([f"{L[method]} and {' and '.join(tied)} cannot be told apart"] if tied else [])
        if out:
            sentences.append(f"at {'the ' * (length == CHOSEN)}{length}"
                             f"{' steps' * (length == CHOSEN)}, " + "; ".join(out))
    text = (_capital("; ".join(sentences)) + ". ") if sentences else ""
    if any(v[SHORT] != v[CHOSEN] for v in verdicts.values()):
        text += "Which to choose depends on how long you train. "
    above = [L[m] for m, d in against.items() if d.verdict == "higher"]
    if above:
        return text + (f"{_capital(' and '.join(above))} end{'s' * (len(above) == 1)} "
                       "detectably above the pretrained features: here metric learning adds "
                       "to them.")
    return text + ("None of them ends detectably above the pretrained features: on features "
                   "this good and at this budget, check first that metric learning beats the "
                   "features it starts from.")


def headline(decisions: Mapping[str, Decision], method: str, base: str | None = None) -> str:
    """One sentence for a chapter's summary: ``method`` minus ``base`` (if any) and ``method``
    against the pretrained features, at the validation-chosen step, with their verdicts."""
    f = decisions[find(method, FEATURES).name]
    text = f"**Measured** (the {CHOSEN} steps, {f.seeds} seeds): "
    if base is not None:
        said = _said(decisions[find(method, base).name])
        text += f"{LABELS[method]} minus {LABELS[base]} is {said}, and "
    return text + f"{LABELS[method]} against the pretrained features is {_said(f)}."


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
