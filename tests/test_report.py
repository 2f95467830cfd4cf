"""The book's verdict rule: the paired tests against loop references."""
import math

import numpy as np
import pytest
from scipy import stats

from bierlib.book.report import MIN_SEEDS, paired_difference, paired_test, verdict


def _sign_test_reference(above: int, below: int) -> float:
    """Exact two-sided sign test by summing every outcome at most as likely as the observed."""
    n = above + below
    probs = [math.comb(n, k) / 2 ** n for k in range(n + 1)]
    return min(1.0, sum(p for p in probs if p <= probs[above] * (1 + 1e-9)))


def _t_test_reference(diff) -> float:
    n = len(diff)
    mean = sum(diff) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diff) / (n - 1))
    t = mean / (sd / math.sqrt(n))
    return 2 * stats.t.sf(abs(t), n - 1)


@pytest.mark.parametrize("seed", range(5))
def test_paired_test_against_references(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.74, 0.01, 6)
    b = a - rng.normal(0.005 * seed, 0.01, 6)
    t = paired_test(a, b)
    diff = list(a - b)
    assert t.mean == pytest.approx(np.mean(diff)) and t.n == 6
    assert t.std == pytest.approx(np.std(diff, ddof=1))
    assert t.above == sum(d > 0 for d in diff) and t.below == sum(d < 0 for d in diff)
    assert t.p_t == pytest.approx(_t_test_reference(diff))
    assert t.p_sign == pytest.approx(_sign_test_reference(t.above, t.below))


def test_verdicts_follow_the_rule():
    base = np.array([0.70, 0.72, 0.71, 0.73, 0.69])
    assert verdict(base + [0.02, 0.03, 0.025, 0.021, 0.028], base) == "**reproduced**"
    assert verdict(base - [0.02, 0.03, 0.025, 0.021, 0.028], base) == "**reversed**"
    assert verdict(base + [0.01, -0.01, 0.002, -0.003, 0.001], base) == \
        "**no detectable difference**"
    assert verdict(base[:3] + 0.05, base[:3]).startswith("too few seeds")
    assert paired_test(base[:MIN_SEEDS - 1] + 0.05, base[:MIN_SEEDS - 1]).verdict == \
        "too few seeds"
    same = paired_test(base + 0.01, base)  # a constant shift: no spread, p = 0
    assert same.std == pytest.approx(0, abs=1e-12) or same.p_t < 1e-6


def test_paired_difference_words():
    text = paired_difference([0.75, 0.76, 0.74, 0.75, 0.77], [0.74, 0.74, 0.74, 0.73, 0.75],
                             queries=2240)
    assert text.startswith("+0.014 ± 0.009, about 31 of 2,240 queries (4 of 5 seeds above, 0 below")
    with pytest.raises(ValueError, match="two equal-length sequences"):
        paired_test([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="at least 2 values"):
        paired_test([0.1], [0.1])
