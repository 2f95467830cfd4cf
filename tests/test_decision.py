"""The book's one decision rule: multiplicity corrections, the paired bootstrap and the verdicts,
against loop references, scipy and numbers checked by hand."""
import numpy as np
import pytest
from scipy import stats

from bierlib.book.decision import (UNDETECTED, benjamini_hochberg, decide, holm,
                                   paired_bootstrap, resample_indices, rule)

P = [0.01, 0.04, 0.03, 0.005]


def _holm_loop(p):
    """Holm by its definition: walk up the sorted p-values, keeping the running maximum."""
    m, order = len(p), sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_holm_by_hand_and_against_a_loop():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06
    assert holm(P) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 40):
        p = rng.random(m) ** 3
        assert holm(p) == pytest.approx(_holm_loop(list(p)))
    assert holm([0.5, 0.6]).tolist() == [1.0, 1.0]  # capped at 1


def test_benjamini_hochberg_by_hand_and_against_scipy():
    # sorted: 0.005 x 4/1 = 0.02, 0.01 x 4/2 = 0.02, 0.03 x 4/3 = 0.04, 0.04 x 4/4 = 0.04
    assert benjamini_hochberg(P) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    rng = np.random.default_rng(1)
    for m in (1, 3, 12, 40):
        p = rng.random(m) ** 2
        assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p))
    assert (benjamini_hochberg(P) <= holm(P)).all()


def test_p_values_are_validated():
    for bad, found in (([], r"shape \(0,\)"), ([0.1, 1.2], r"values \[0.1, 1.2\]"),
                       ([[0.1]], r"shape \(1, 1\)")):
        with pytest.raises(ValueError, match=f"non-empty 1-D sequence.*found.*{found}"):
            holm(bad)
        with pytest.raises(ValueError, match="non-empty 1-D"):
            benjamini_hochberg(bad)


def _bootstrap_loop(a, b, resamples, seed):
    """Draw seeds and classes with the function's draws, one resample at a time."""
    d = np.asarray(a, float) - np.asarray(b, float)
    seed_idx, class_idx = resample_indices(*d.shape, resamples, seed)
    return np.array([d[np.ix_(seed_idx[r], class_idx[r])].mean() for r in range(resamples)])


def test_paired_bootstrap_against_a_loop():
    rng = np.random.default_rng(2)
    a = rng.random((5, 12))
    b = a - 0.03 + 0.1 * rng.normal(size=(5, 12))
    boot = _bootstrap_loop(a, b, 400, seed=3)
    out = paired_bootstrap(a, b, resamples=400, seed=3)
    assert out.difference == pytest.approx((a - b).mean())
    assert (out.low, out.high) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])))
    tail = min((boot <= 0).sum(), (boot >= 0).sum())
    assert out.p == pytest.approx(min(1, 2 * (tail + 1) / 401))
    assert (out.seeds, out.classes, out.resamples) == (5, 12, 400)
    assert paired_bootstrap(a, b, resamples=400, seed=3) == out  # seeded
    assert paired_bootstrap(a, b, resamples=400, seed=4) != out


def test_paired_bootstrap_by_hand():
    # a constant difference: every resample gives it, p is the smallest possible, 2 / (R + 1)
    a = np.full((5, 4), 0.7)
    out = paired_bootstrap(a, a - 0.1, resamples=999)
    assert (out.difference, out.low, out.high) == pytest.approx((0.1, 0.1, 0.1))
    assert out.p == pytest.approx(2 / 1000) and out.half_width == pytest.approx(0)
    assert paired_bootstrap(a, a, resamples=999).p == 1.0  # no difference at all
    # one seed, classes differing by 0 and 1: the mean of 2 drawn classes is 0, 0.5 or 1 with
    # chances 1/4, 1/2, 1/4: the 95% interval is [0, 1] and p = 2 x 1/4 = 0.5
    out = paired_bootstrap([[1.0, 1.0]], [[1.0, 0.0]], resamples=20_000)
    assert (out.difference, out.low, out.high) == (0.5, 0.0, 1.0)
    assert out.p == pytest.approx(0.5, abs=0.02)
    # per-seed values only (S,): seeds resampled, as many "classes" as one
    out = paired_bootstrap([0.71, 0.72, 0.70], [0.70, 0.70, 0.70])
    assert out.classes == 1 and out.difference == pytest.approx(0.01)
    assert 0 <= out.low <= out.high <= 0.02 + 1e-12


def test_paired_bootstrap_refuses_mismatched_values():
    with pytest.raises(ValueError, match=r"same shape.*found \(5, 112\) and \(5, 110\)"):
        paired_bootstrap(np.zeros((5, 112)), np.zeros((5, 110)))
    with pytest.raises(ValueError, match=r"found \(2, 2, 2\) and \(2, 2, 2\)"):
        paired_bootstrap(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="finite"):
        paired_bootstrap([0.1, np.nan], [0.1, 0.2])
    with pytest.raises(ValueError, match="resamples must be a positive integer, found 0"):
        paired_bootstrap([0.1], [0.2], resamples=0)


def test_decide_applies_holm_over_the_family():
    rng = np.random.default_rng(4)
    base = rng.random((5, 20))
    family = {"clear gain": (base + 0.1, base),  # p = 2 / (R + 1) before correction
              "clear loss": (base - 0.1, base),
              "nothing": (base, base),  # p = 1
              "one seed": (base[:1] + 0.1, base[:1])}
    out = decide(family, resamples=999, higher="reproduced", lower="reversed")
    assert list(out) == list(family)
    small = 2 / 1000
    # Holm over 4 claims: the three smallest p (all 2/1000) x 4, x 3, x 2 -> 0.008 each
    for name in ("clear gain", "clear loss", "one seed"):
        assert out[name].p == pytest.approx(small)
        assert out[name].p_adjusted == pytest.approx(4 * small)
    assert out["nothing"].p == out["nothing"].p_adjusted == 1.0
    assert [d.verdict for d in out.values()] == ["reproduced", "reversed", UNDETECTED,
                                                 "too few seeds"]
    gain = out["clear gain"]
    assert gain.difference == pytest.approx(0.1) and gain.family_size == 4
    assert gain.text == ("+0.100 ± 0.000 (95% interval [+0.100, +0.100]; p = 0.002, "
                         "Holm-adjusted over 4 claims 0.008)")


def test_a_borderline_claim_is_not_detected_after_holm():
    # per-seed values whose bootstrap p lies between 0.05 / 3 and 0.05: detected alone, not
    # in a family of 3
    a = np.array([0.74, 0.75, 0.76, 0.73, 0.745])
    b = a - np.array([0.01, -0.004, 0.012, 0.006, 0.008])
    alone = decide({"x": (a, b)}, resamples=4999)["x"]
    assert 0.05 / 3 < alone.p < 0.05 and alone.verdict == "higher"
    same = np.full(5, 0.7)
    three = decide({"x": (a, b), "y": (same, same), "z": (same, same)}, resamples=4999)["x"]
    assert three.p == alone.p and three.p_adjusted == pytest.approx(3 * alone.p)
    assert three.verdict == UNDETECTED


def test_decide_and_rule_validate_and_describe():
    with pytest.raises(ValueError, match="family is empty"):
        decide({})
    with pytest.raises(ValueError, match=r"claim 'x': method and baseline values must have the "
                                         r"same shape.*found \(5, 3\) and \(4, 3\)"):
        decide({"x": (np.zeros((5, 3)), np.zeros((4, 3)))})
    with pytest.raises(ValueError, match="claim 'x' must be .method values, baseline values."):
        decide({"x": (np.zeros(5),)})
    text = rule("Chapter 7's claims", ["BIER > single", "A-BIER > BIER"])
    assert "Holm-adjusted over the family of 2 claims (Chapter 7's claims: BIER > single; " \
        "A-BIER > BIER)" in text
    assert '"±" is the half-width of its 95% interval from 10,000 paired bootstrap' in text
    listed = rule("the book's claims", ["a", "b", "c"], listed_in="Chapter 7")
    assert "over the family of 3 claims (the book's claims: listed in Chapter 7)" in listed
