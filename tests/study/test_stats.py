import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from imbal.study.stats import (
    ONE_SEED_ADVICE,
    Comparison,
    adjust_comparisons,
    adjust_pvalues,
    paired_bootstrap,
    paired_t,
    seeds_needed,
    verdict_label,
)


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
    # one pair of runs is one seed: the gain is real on these test samples, not shown across training runs
    assert c.direction == "better" and c.verdict == "better (test samples only, 1 seed)"
    assert not c.seed_variation and c.seeds == 1
    assert c.low <= c.mean_diff <= c.high and c.n == 600
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


def test_paired_t_verdicts_are_unqualified_and_say_they_vary_seeds():
    base = np.array([0.60, 0.61, 0.59, 0.60])
    c = paired_t(base + np.array([0.05, 0.06, 0.05, 0.07]), base)
    assert c.seeds == 4 and c.seed_variation and c.verdict == c.direction == "better"
    # a hand-built bootstrap comparison is one seed unless told otherwise
    assert Comparison(0.1, 0.05, 0.15, 300, "paired bootstrap over test samples").verdict == (
        "better (test samples only, 1 seed)"
    )
    assert Comparison(-0.1, -0.15, -0.05, 300, "x").verdict == "worse (test samples only, 1 seed)"
    assert Comparison(0.0, -0.1, 0.1, 300, "x").verdict == "inconclusive"
    assert verdict_label("better", math.nan) == "better (test samples only, 1 seed)"
    with pytest.raises(ValueError, match="'better', 'worse' or 'inconclusive', got 'good'"):
        verdict_label("good", 3)


# --- multiple comparisons, against statsmodels and scipy ---

multitest = pytest.importorskip("statsmodels.stats.multitest")
SM_METHOD = {"holm": "holm", "bh": "fdr_bh"}


def _reference(p, method):
    """statsmodels on the non-NaN p-values, NaN elsewhere."""
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multitest.multipletests(p[ok], method=SM_METHOD[method])[1]
    return out


EDGE_CASES = {
    "one": [0.03],
    "all_equal": [0.2] * 6,
    "zeros": [0.0, 0.0, 0.01, 0.5],
    "ones": [1.0, 1.0, 0.9],
    "nans": [np.nan, 0.01, np.nan, 0.04, 0.03],
    "all_nan": [np.nan, np.nan],
    "empty": [],
    "near_one": [0.6, 0.7, 0.8, 0.99],
}


@pytest.mark.parametrize("method", ["holm", "bh"])
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_adjust_pvalues_edge_cases_match_statsmodels(method, case):
    p = np.array(EDGE_CASES[case], dtype=float)
    got = adjust_pvalues(p, method)
    np.testing.assert_allclose(got, _reference(p, method), rtol=1e-12, atol=0)
    assert (np.isnan(got) == np.isnan(p)).all()


@pytest.mark.parametrize("method", ["holm", "bh"])
@pytest.mark.parametrize("seed", range(6))
def test_adjust_pvalues_random_and_tied_match_statsmodels_and_scipy(method, seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 40))
    # a mix of small (real effects) and uniform (nulls) p-values
    p = np.where(rng.random(m) < 0.3, rng.uniform(0, 0.01, m), rng.uniform(0, 1, m))
    tied = np.round(p, 1)  # many exact ties
    for q in (p, tied):
        got = adjust_pvalues(q, method)
        np.testing.assert_allclose(got, _reference(q, method), rtol=1e-12, atol=0)
        if method == "bh":
            np.testing.assert_allclose(got, stats.false_discovery_control(q, method="bh"), rtol=1e-12)
        # monotone in the raw p, never below it, clipped to 1
        order = np.argsort(q, kind="stable")
        assert (np.diff(got[order]) >= 0).all() and (got >= q).all() and (got <= 1).all()
        # equal raw p-values get equal adjusted ones
        for v in np.unique(q):
            assert np.ptp(got[q == v]) == 0


def test_adjust_pvalues_nans_do_not_count_in_the_family():
    # Holm by hand over the 3 real p-values (0.01, 0.03, 0.04): 3 * 0.01, max(2 * 0.03, .03), max(0.04, .06)
    got = adjust_pvalues(np.array([np.nan, 0.01, 0.04, np.nan, 0.03]), "holm")
    np.testing.assert_allclose(got, [np.nan, 0.03, 0.06, np.nan, 0.06])
    # BH by hand: 0.01 * 3 / 1, 0.03 * 3 / 2, 0.04 * 3 / 3, made monotone from the top
    got = adjust_pvalues(np.array([np.nan, 0.01, 0.04, np.nan, 0.03]), "bh")
    np.testing.assert_allclose(got, [np.nan, 0.03, 0.04, np.nan, 0.04])


def test_adjust_pvalues_validation():
    with pytest.raises(ValueError, match=r"method must be one of \('holm', 'bh'\), got 'bonferroni'"):
        adjust_pvalues(np.array([0.1]), "bonferroni")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] \(or be NaN\), got min=-0.1, max=0.5"):
        adjust_pvalues(np.array([-0.1, 0.5]))
    with pytest.raises(ValueError, match=r"must be 1-D, got shape=\(2, 2\)"):
        adjust_pvalues(np.full((2, 2), 0.1))


def _table():
    return pd.DataFrame(
        {
            "sampler": ["a", "b", "c", "d", "e", "f"],
            "metric": ["ba", "ba", "ba", "f1", "f1", "f1"],
            "difference": [0.05, 0.02, -0.04, 0.03, 0.01, 0.02],
            "ci_low": [0.03, 0.001, -0.06, 0.01, -0.02, np.nan],
            "ci_high": [0.07, 0.04, -0.02, 0.05, 0.04, np.nan],
            "p_value": [0.001, 0.04, 0.002, 0.004, 0.0001, np.nan],
            "seeds": [5, 5, 5, 1, 5, 5],
        }
    )


def test_adjust_comparisons_holm_over_the_whole_table():
    out = adjust_comparisons(_table(), "holm")
    # 5 real p-values, sorted 0.0001 (e), 0.001 (a), 0.002 (c), 0.004 (d), 0.04 (b): x5, x4, x3, x2, x1
    np.testing.assert_allclose(out.p_adjusted, [0.004, 0.04, 0.006, 0.008, 0.0005, np.nan])
    assert out.family_size.tolist() == [5] * 6
    assert out.verdict_adjusted.tolist() == [
        "better",
        "better",  # 0.04 < 0.05 still, and the interval is above 0
        "worse",
        "better (test samples only, 1 seed)",  # one seed: qualified even after correction
        "inconclusive",  # tiny p but the interval crosses 0: the sign is not established
        "inconclusive",  # no p-value
    ]
    assert not out.ci_adjusted.any()
    assert list(out.columns[: len(_table().columns)]) == list(_table().columns)  # extends, keeps


def test_adjust_comparisons_per_metric_families_and_bh():
    out = adjust_comparisons(_table(), "holm", by="metric")
    # family "ba": 0.001, 0.04, 0.002 -> 0.003, 0.04, 0.004; family "f1": 0.004, 0.0001 (NaN left out)
    np.testing.assert_allclose(out.p_adjusted, [0.003, 0.04, 0.004, 0.004, 0.0002, np.nan])
    assert out.family_size.tolist() == [3, 3, 3, 2, 2, 2]
    strict = adjust_comparisons(_table(), "holm", alpha=0.01)
    assert strict.verdict_adjusted.tolist()[:3] == ["better", "inconclusive", "worse"]
    bh = adjust_comparisons(_table(), "bh")
    np.testing.assert_allclose(bh.p_adjusted, _reference(_table().p_value.to_numpy(), "bh"))


def test_adjust_comparisons_reads_seeds_from_the_method_and_validates():
    t = _table().drop(columns="seeds")
    t["method"] = (
        ["paired t over seeds"] * 3 + ["paired bootstrap over test samples"] + ["paired t over seeds"] * 2
    )
    assert adjust_comparisons(t).verdict_adjusted[3] == "better (test samples only, 1 seed)"
    assert adjust_comparisons(t.iloc[:0]).empty
    with pytest.raises(ValueError, match=r"needs columns \['ci_high', 'ci_low', 'difference', 'p_value'\]"):
        adjust_comparisons(t.drop(columns="p_value"))
    with pytest.raises(ValueError, match=r"alpha must lie in \(0, 1\), got 1.5"):
        adjust_comparisons(t, alpha=1.5)


# --- how many seeds an observed difference would need ---


def test_seeds_needed_by_hand():
    # d = [1, 3]: mean 2, SD sqrt(2), so t(n) = 2 / (sqrt(2) / sqrt(n)) = sqrt(2 n) against t(0.975, n - 1):
    # n=2: 2.000 < 12.706; n=3: 2.449 < 4.303; n=4: 2.828 < 3.182; n=5: 3.162 > 2.776
    assert seeds_needed(np.array([1.0, 3.0])) == 5
    assert seeds_needed(np.array([-1.0, -3.0])) == 5  # the sign does not matter
    assert seeds_needed(np.array([1.0, 3.0]), max_seeds=4) is None  # more than max_seeds
    # alpha = 0.2: n=3: 2.449 > t(0.9, 2) = 1.886, n=2: 2.000 < t(0.9, 1) = 3.078
    assert seeds_needed(np.array([1.0, 3.0]), alpha=0.2) == 3
    assert seeds_needed(np.array([0.02, 0.02, 0.02])) == 2  # SD 0, mean not 0
    assert seeds_needed(np.array([0.0, 0.0])) is None  # no difference at all
    assert seeds_needed(np.array([-0.01, 0.01, 0.0])) is None  # mean exactly 0


@pytest.mark.parametrize("seed", range(4))
def test_seeds_needed_is_where_a_sample_with_that_mean_and_sd_turns_significant(seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(0.02, 0.03, 3)
    n = seeds_needed(d, max_seeds=500)
    assert n is not None

    def with_mean_sd(k):  # k values with exactly the observed mean and SD
        z = rng.normal(size=k)
        z = (z - z.mean()) / z.std(ddof=1)
        return d.mean() + d.std(ddof=1) * z

    assert stats.ttest_1samp(with_mean_sd(n), 0).pvalue < 0.05
    assert paired_t(with_mean_sd(n), np.zeros(n)).direction != "inconclusive"
    if n > 2:
        assert stats.ttest_1samp(with_mean_sd(n - 1), 0).pvalue >= 0.05


def test_seeds_needed_one_seed_and_validation():
    with pytest.raises(ValueError, match=r">= 2 seeds \(1-D\), got shape=\(1,\).*run at least 3 seeds"):
        seeds_needed(np.array([0.02]))
    assert "at least 3 seeds" in ONE_SEED_ADVICE and "5" in ONE_SEED_ADVICE
    with pytest.raises(ValueError, match=r"must be finite, got \[0.1, nan\]"):
        seeds_needed(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="alpha must lie in"):
        seeds_needed(np.array([0.1, 0.2]), alpha=0)
    with pytest.raises(ValueError, match="max_seeds must be >= 2, got 1"):
        seeds_needed(np.array([0.1, 0.2]), max_seeds=1)
