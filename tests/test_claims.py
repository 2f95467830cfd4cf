"""The book's family of claims: read from study files, decided together by one rule."""
import numpy as np
import pytest

from bierlib import study
from bierlib.book import claims
from bierlib.training import PER_CLASS


def _entry(cell, method, seed, per_class, corr):
    base, options = study.VARIANTS.get(method, (method, {}))
    record = {"step": study.SHORT_STEP, "recall@1": float(np.mean(per_class)),
              PER_CLASS: list(per_class)}
    chosen = {**record, "step": 320, PER_CLASS: [min(1.0, v + 0.1) for v in per_class]}
    return {"cell": cell, "name": f"{method}-{seed}", "records": [record, chosen],
            "config": {"method": base, "seed": seed, **options}, "chosen": chosen,
            "final": chosen, "cross_learner_correlation": corr}


def _study(cells, methods, shift, seeds=range(5), classes=40):
    rng = np.random.default_rng(0)
    runs = []
    for seed in seeds:
        for cell in cells:
            base = rng.uniform(0.3, 0.7, classes)
            for m in methods:
                per_class = np.clip(base + shift.get(m, 0.0) + rng.normal(0, 0.01, classes), 0, 1)
                runs.append(_entry(cell, m, seed, per_class, 0.2 - shift.get(m, 0.0)))
    return {"runs": runs, "features": {PER_CLASS: list(np.full(classes, 0.5))}}


def test_the_family_covers_every_paper_and_length():
    names = [c.name for c in claims.CLAIMS]
    assert len(names) == len(set(names))
    assert {c.paper for c in claims.CLAIMS} == {*study.CLAIMS, "features"}
    assert "squared contrastive > pretrained features, Recall@1, chosen step of 480" in names
    assert "lifted structured > squared contrastive, Recall@1, chosen step of 480" in names
    assert {c.length for c in claims.CLAIMS if c.measure == "Recall@1"} == {
        claims.SHORT, claims.CHOSEN, claims.LONG}


def test_book_decisions_read_per_class_values_and_correct_over_the_family():
    ablation = _study(["miniature"], study.METHODS, {"lifted": 0.05, "bier": 0.0005})
    long = _study([f"D = {d}" for d in study.LONG_DIMS], ("bier", "binomial"), {"bier": 0.05})
    claim = next(c for c in claims.CLAIMS if c.method == "lifted" and c.length == claims.CHOSEN
                 and c.baseline == "contrastive")
    a, b = claims.claim_values(claim, ablation)
    assert a.shape == (5, 40) and np.all(a <= 1)
    assert np.mean(a) == pytest.approx(np.mean([r["chosen"][PER_CLASS] for r in
                                                study.runs_of(ablation, "miniature", "lifted")]))
    out = claims.book_decisions(ablation, long)
    assert list(out) == [c.name for c in claims.CLAIMS]
    assert all(d.family_size == len(claims.CLAIMS) for d in out.values())
    assert out[claim.name].verdict == "higher" and out[claim.name].classes == 40
    tiny = next(n for n in out if n.startswith("BIER > single embedding, Recall@1, 160"))
    assert out[tiny].verdict == "no detectable difference"  # +0.0005: below the noise
    corr = next(n for n in out if n.startswith("BIER < single embedding, cross-learner corr")
                and "D = " not in n)
    assert out[corr].difference == pytest.approx(-0.0005) and out[corr].classes == 1
    above = out["lifted structured > pretrained features, Recall@1, chosen step of 480"]
    assert above.verdict == "higher" and above.seeds == 5 and above.classes == 40
    # without the long study its claims leave the family
    assert len(claims.book_decisions(ablation)) == len(
        [c for c in claims.CLAIMS if "2,000" not in c.length])
    with pytest.raises(ValueError, match="no seed has runs of both"):
        claims.claim_values(claim, {"runs": []})


def test_tuning_markdown_bolds_the_winner_and_names_ties():
    from bierlib.book.report import tuning_markdown

    rows = [{"settings": {"lr": 3e-5}, "values": [0.61, 0.58, 0.62], "mean": 0.6033,
             "sd": 0.0208, "winner": False, "tie": True},
            {"settings": {"lr": 1e-4}, "values": [0.60, 0.64, 0.59], "mean": 0.61,
             "sd": 0.0265, "winner": True, "tie": False}]
    text = tuning_markdown({"margin": rows}, {"margin": "margin loss"})
    assert "| margin loss | lr 3e-05 | 0.603 ± 0.021 (3 seeds) | tie |" in text
    assert "|  | **lr 0.0001** | **0.610 ± 0.026 (3 seeds)** | **chosen** |" in text
    assert text.endswith("Ties: margin loss (1 trial within the noise).")
    rows[0]["tie"] = False
    assert "Ties" not in tuning_markdown({"margin": rows}, {})


def test_paragraph_and_headline_say_every_length_and_the_features():
    ablation = _study(["miniature"], study.METHODS, {"lifted": 0.05, "contrastive": 0.3})
    decisions = claims.book_decisions(ablation)
    text = claims.paragraph(decisions, "lifted", ("contrastive", "triplet"),
                            page={"lifted": 0.61}, features=0.5)
    assert text.startswith("On this page (one seed, 160 steps, a description rather than a "
                           "verdict): lifted 0.610 Recall@1, against 0.500")
    assert f"Holm over its {len(decisions)} claims" in text
    assert "Lifted structured minus contrastive is -0.2" in text and ": lower at 160" in text
    assert "lifted structured beats triplet; contrastive beats lifted structured" in text
    assert "; contrastive +0.3" in text and "above them" in text
    assert text.endswith("end detectably above the pretrained features: here metric learning "
                         "adds to them.")
    bier = claims.paragraph(decisions, "bier", ("binomial",))
    assert "final cross-learner corr minus single embedding's" in bier
    assert "cannot be told apart" in bier and "None of them ends detectably above" not in bier
    line = claims.headline(decisions, "lifted", "triplet")
    assert line.startswith("**Measured** (the chosen step of 480 steps, 5 seeds): lifted "
                           "structured minus triplet is +0.05")
    with pytest.raises(KeyError, match="no claim lifted vs bier"):
        claims.find("lifted", "bier")


def test_tuning_markdown_writes_the_lambdas_as_the_pages_do():
    from bierlib.book.report import tuning_markdown

    row = {"settings": {"lr": 1e-4, "lambda_div": 3e-3, "lambda_w": 100.0}, "values": [0.5],
           "mean": 0.5, "sd": float("nan"), "winner": True, "tie": False}
    assert r"**lr 0.0001, $\lambda_{\text{div}}$ 0.003, $\lambda_w$ 100**" in tuning_markdown(
        {"abier": [row]}, {})
