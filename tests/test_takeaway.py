"""A chapter's generated conclusion follows from the numbers it is given."""
import pytest

from bierlib import study
from bierlib.book.takeaway import takeaway

NAMES = {"bier": "BIER", "binomial": "the single embedding", "lifted": "lifted",
         "contrastive": "contrastive"}


def _run(method, seed, short, final, corr=0.1):
    records = [{"step": 0, "recall@1": 0.6}, {"step": study.SHORT_STEP, "recall@1": short},
               {"step": 480, "recall@1": final}]
    return {"cell": "miniature", "name": f"{method}-{seed}",
            "config": {"method": method, "seed": seed}, "records": records,
            "final": records[-1], "best": records[-1], "cross_learner_correlation": corr}


def _study(deltas, base_final=0.74, corr_delta=-0.02):
    runs = []
    for seed, d in enumerate(deltas):
        noise = 0.003 * (seed - 2)
        runs.append(_run("binomial", seed, 0.70 + noise, base_final + noise, 0.12))
        runs.append(_run("bier", seed, 0.70 + noise + d, base_final + noise + d,
                         0.12 + corr_delta + 0.001 * seed))
    return {"runs": runs}


def test_a_clear_win_is_called_and_the_baseline_is_used():
    text = takeaway(_study([0.02, 0.025, 0.018, 0.022, 0.03]), "bier", ["binomial"], NAMES,
                    baseline=0.70, queries=2240, page={"BIER": 0.73}, correlation=True)
    assert "On this page (one seed" in text and "BIER 0.730" in text
    assert "5 seeds" in text and ": higher)" in text
    assert "BIER beats the single embedding in this setting" in text
    assert "lower: the claim holds" in text
    assert "BIER ends above them" in text and "07_ablation" not in text


def test_a_reversal_and_features_that_win():
    text = takeaway(_study([-0.02, -0.025, -0.018, -0.022, -0.03]), "bier", ["binomial"],
                    NAMES, baseline=0.80, queries=2240)
    assert "The single embedding beats BIER here, so the paper's advantage is reversed" in text
    assert ("Neither ends detectably above the pretrained features, and BIER and the "
            "single embedding end below them, so here the features alone are the better choice"
            in text)
    assert "{doc}`07_ablation` trains BIER's claim with one ingredient" in text


def test_noise_and_too_few_seeds():
    text = takeaway(_study([0.004, -0.003, 0.001, -0.002, 0.0005]), "bier", ["binomial"],
                    NAMES, baseline=0.70, queries=2240)
    assert "are not detectably different here" in text
    text = takeaway(_study([0.02, 0.025, 0.018]), "bier", ["binomial"], NAMES, 0.70, 2240)
    assert "too few seeds" in text and "More seeds are needed" in text
    with pytest.raises(ValueError, match="no miniature runs of 'lifted'"):
        takeaway(_study([0.01, 0.02]), "lifted", ["contrastive"], NAMES, 0.7, 2240)


def test_headline():
    from bierlib.book.takeaway import headline
    text = headline(_study([0.02, 0.025, 0.018, 0.022, 0.03]), "bier", "binomial", NAMES, 0.80)
    assert text.startswith("**Measured:** after 480 steps (5 seeds), BIER minus the single "
                           "embedding is +0.023 ± 0.005 Recall@1 (higher)")
    assert text.endswith("(below them).")
    text = headline(_study([0.02, 0.025, 0.018, 0.022, 0.03]), "bier", None, NAMES, 0.60)
    assert "minus" not in text and text.endswith("(above them).")
    only = takeaway(_study([0.01, 0.02]), "bier", [], NAMES, 0.9, 2240)
    assert "For a practitioner:** BIER does not end detectably above" in only
