"""A chapter's closing paragraph, generated from its own run and the committed study: what the
runs showed for the chapter's claim, against the baseline every method must beat (the pretrained
features), under the book's verdict rule (``RULE``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import study
from .report import paired_test

_WORDS = {"higher": "above", "lower": "below"}
#: What Chapter 7 does about a paper's effect that did not appear (only BIER's and A-BIER's
#: are taken apart there).
_WHY = {"bier": "trains BIER's claim with one ingredient of the papers' regime changed at a "
                "time (pretraining, the learning-rate multiplier, D = 512, the length)",
        "abier": "trains A-BIER with each of its two diversity terms alone"}


def _claim(data: dict, method: str, base: str, queries: int, step: int | None,
           length: str) -> tuple[str, str]:
    a, b = study.paired_values(data, ("miniature", method), ("miniature", base), step=step)
    t = paired_test(a, b)
    return t.verdict, (f"{t.mean:+.3f} ± {t.std:.3f} at {length} (about "
                       f"{abs(t.mean) * queries:.0f} of {queries:,} queries; {t.above} of {t.n} "
                       f"seeds above, p = {t.p_t:.2g}: {t.verdict})")


def takeaway(data: dict, method: str, bases: Sequence[str], names: Mapping[str, str],
             baseline: float, queries: int, page: Mapping[str, float] | None = None,
             correlation: bool = False) -> str:
    """Markdown: ``method`` against each of ``bases`` in the study ``data`` (the ablation's
    "miniature" cell) at the chapters' length and at the study's final step, and every one of
    them against ``baseline`` (the pretrained features' Recall@1 on the ``queries`` test
    images); ``page`` (name -> Recall@1 of this page's own runs) opens the paragraph;
    ``correlation`` adds the cross-learner correlation (the ensembles' claim: lower)."""
    for m in (method, *bases):
        if not study.runs_of(data, "miniature", m):
            raise ValueError(f"the study has no miniature runs of {m!r}: run "
                             "`python -m bierlib.study ablation`")
    short = f"{study.SHORT_STEP} steps"
    final = f"{study.runs_of(data, 'miniature', method)[0]['final']['step']} steps"
    parts = []
    if page:
        parts.append("On this page (one seed, " + short + "): " + ", ".join(
            f"{k} {v:.3f}" for k, v in page.items())
            + f" Recall@1, against {baseline:.3f} for the pretrained features alone.")
    n = len(study.runs_of(data, "miniature", method))
    parts.append(f"The committed study (Chapter 7) trains {n} seeds of each method at its own "
                 "tuned settings, so a difference includes the difference of those settings.")
    finals = {}
    for base in bases:
        v_short, s_short = _claim(data, method, base, queries, study.SHORT_STEP, short)
        v_final, s_final = _claim(data, method, base, queries, None, final)
        finals[base] = v_final
        parts.append(f"{_capital(names[method])} minus {names[base]} is {s_short} and "
                     f"{s_final}.")
    if correlation:
        for base in bases:
            a, b = study.paired_values(data, ("miniature", method), ("miniature", base),
                                       "cross_learner_correlation")
            t = paired_test(b, a)  # the claim: the method's correlation is lower
            word = {"higher": "lower: the claim holds",
                    "lower": "higher: the opposite of the claim"}.get(t.verdict, t.verdict)
            parts.append(f"Its cross-learner correlation is {-t.mean:+.3f} ± {t.std:.3f} "
                         f"against {names[base]}'s ({word}).")
    against = {}
    for m in (method, *bases):
        values = [r["final"]["recall@1"] for r in study.runs_of(data, "miniature", m)]
        against[m] = paired_test(values, [baseline] * len(values))
    parts.append("Against the pretrained features' " + f"{baseline:.3f}: " + "; ".join(
        f"{names[m]} ends {_WORDS.get(t.verdict, t.verdict)} them ({t.mean:+.3f})"
        if t.verdict in _WORDS else f"{names[m]}: {t.verdict} ({t.mean:+.3f})"
        for m, t in against.items()) + ".")
    parts.append("**For a practitioner:** " + _advice(method, bases, names, finals, against))
    if any(v != "higher" for v in finals.values()) and method in _WHY:
        parts.append(f"Where the paper's effect did not appear, {{doc}}`07_ablation` "
                     f"{_WHY[method]}.")
    return " ".join(parts)


def _advice(method, bases, names, finals, against) -> str:
    won = [b for b, v in finals.items() if v == "higher"]
    lost = [b for b, v in finals.items() if v == "lower"]
    tied = [b for b, v in finals.items() if v == "no detectable difference"]
    out = []
    if won:
        out.append(f"{names[method]} beats {', '.join(names[b] for b in won)} in this setting")
    if lost:
        out.append(f"{', '.join(names[b] for b in lost)} beat{'s' * (len(lost) == 1)} "
                   f"{names[method]} here, so the paper's advantage is reversed")
    if tied:
        out.append(f"{names[method]} and {', '.join(names[b] for b in tied)} are not "
                   "detectably different here")
    if len(won) + len(lost) + len(tied) < len(bases):
        out.append("more seeds are needed before choosing")
    sentences = [_capital("; ".join(out)) + "."] if out else []
    above = [names[m] for m, t in against.items() if t.verdict == "higher"]
    if above and not bases:
        sentences.append(f"{_capital(' and '.join(above))} ends detectably above the pretrained "
                         "features: here metric learning adds to them.")
    below = [names[m] for m, t in against.items() if t.verdict == "lower"]
    if not above:
        who = {1: f"{_capital(names[method])} does not end",
               2: "Neither ends"}.get(len(against), "None of them ends")
        sentences.append(f"{who} detectably above the pretrained features"
                         + (f", and {' and '.join(below)} end{'s' * (len(below) == 1)} below "
                            "them, so here the features alone are the better choice" if below
                            else "")
                         + ". On features this good and at this budget, check first that "
                         "metric learning beats the features it starts from.")
    return " ".join(sentences)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def headline(data: dict, method: str, base: str | None, names: Mapping[str, str],
             baseline: float) -> str:
    """One sentence for a chapter's summary: ``method`` minus ``base`` (if any) at the study's
    final step with its verdict, and whether ``method`` ends above the pretrained features
    (``baseline``)."""
    runs = study.runs_of(data, "miniature", method)
    if not runs:
        raise ValueError(f"the study has no miniature runs of {method!r}: run "
                         "`python -m bierlib.study ablation`")
    finals = [r["final"]["recall@1"] for r in runs]
    f = paired_test(finals, [baseline] * len(finals))
    text = f"**Measured:** after {runs[0]['final']['step']} steps ({f.n} seeds), "
    if base is not None:
        t = paired_test(*study.paired_values(data, ("miniature", method), ("miniature", base)))
        text += (f"{names[method]} minus {names[base]} is {t.mean:+.3f} ± {t.std:.3f} "
                 f"Recall@1 ({t.verdict}), and ")
    return (text + f"{names[method]} ends {f.mean:+.3f} ± {f.std:.3f} against the pretrained "
            f"features ({_WORDS.get(f.verdict, f.verdict)}"
            + (" them" if f.verdict in _WORDS else "") + ").")
