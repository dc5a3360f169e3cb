import numpy as np
import pytest
from scipy import stats

from imbal.study.stats import paired_bootstrap, paired_t


@pytest.mark.parametrize("seed", range(5))
def test_paired_t_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 0.7, 5)
    cand = base + rng.normal(0.02, 0.03, 5)
    c = paired_t(cand, base)
    d = cand - base
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert (c.low, c.high) == pytest.approx((lo, hi))
    assert c.p_value == pytest.approx(stats.ttest_rel(cand, base).pvalue)
    assert c.mean_diff == pytest.approx(d.mean()) and c.n == 5


def test_verdicts():
    base = np.array([0.60, 0.61, 0.59, 0.60])
    assert paired_t(base + np.array([0.05, 0.06, 0.05, 0.07]), base).verdict == "better"
    assert paired_t(base - np.array([0.05, 0.06, 0.05, 0.07]), base).verdict == "worse"
    assert paired_t(base + np.array([0.05, -0.06, 0.02, -0.01]), base).verdict == "inconclusive"
    with pytest.raises(ValueError, match="needs >= 2 paired seeds, got 1"):
        paired_t(np.array([0.5]), np.array([0.4]))


def test_bootstrap_detects_a_real_gain_and_not_a_null_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    good = np.where(rng.random(600) < 0.8, y, rng.integers(0, 3, 600))
    bad = np.where(rng.random(600) < 0.5, y, rng.integers(0, 3, 600))
    c = paired_bootstrap(y, good, bad, 3, n_boot=300)
    assert c.verdict == "better" and c.low <= c.mean_diff <= c.high and c.n == 600
    same = paired_bootstrap(y, good, good, 3, n_boot=100)
    assert same.mean_diff == 0 and same.verdict == "inconclusive"


def test_bootstrap_equals_the_resample_by_resample_definition():
    import torch

    from imbal.metrics import metrics_from_confusion

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 150)
    a = np.where(rng.random(150) < 0.6, y, rng.integers(0, 4, 150))
    b = np.where(rng.random(150) < 0.5, y, rng.integers(0, 4, 150))

    def metric(yy, pp):
        cm = np.zeros((4, 4), dtype=np.int64)
        np.add.at(cm, (yy, pp), 1)
        return metrics_from_confusion(torch.from_numpy(cm))["macro_f1"]

    draw = np.random.default_rng(7)
    diffs = []
    for _ in range(200):
        i = draw.integers(0, 150, 150)
        diffs.append(metric(y[i], a[i]) - metric(y[i], b[i]))
    ref_low, ref_high = np.quantile(diffs, [0.025, 0.975])
    c = paired_bootstrap(y, a, b, 4, "macro_f1", n_boot=200, seed=7)
    assert c.mean_diff == pytest.approx(metric(y, a) - metric(y, b))
    assert (c.low, c.high) == pytest.approx((ref_low, ref_high))
