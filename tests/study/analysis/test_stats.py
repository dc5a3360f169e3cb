"""The two-level paired estimate, its p-values, equivalence, multiplicity and planning, against references."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import multitest
from statsmodels.stats.power import TTestPower

from imbal.study.analysis.influence import auroc_influence, confusion_influence, scores_and_influence
from imbal.study.analysis.stats import (
    Estimate,
    Verdict,
    adjust_pvalues,
    effective_df,
    equivalence_power,
    paired_estimate,
    paired_estimates,
    power,
    seeds_needed,
    verdict,
)


def _runs(rng, n=300, c=4, runs=3, acc=(0.7, 0.6, 0.5)):
    y = np.repeat(np.arange(c), n // c)
    preds = np.stack([np.where(rng.random(len(y)) < a, y, rng.integers(0, c, len(y))) for a in acc[:runs]])
    return y, preds


def _stratified_weights(rng, y, b):
    """Class-stratified bootstrap counts (b, n): each class's images drawn with replacement within it."""
    w = np.zeros((b, len(y)))
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        draws = rng.integers(0, len(idx), (b, len(idx)))
        for i in range(b):
            np.add.at(w[i], idx[draws[i]], 1)
    return w


def _weighted_metric(metric, y, pred, w, c, minority=None):
    import torch

    from imbal.metrics import confusion_scores

    cm = np.zeros((len(w), c, c))
    for i in range(len(w)):
        np.add.at(cm[i], (y, pred), w[i])
    return confusion_scores(torch.from_numpy(cm), minority)[metric].numpy()


@pytest.mark.parametrize("metric", ["balanced_accuracy", "accuracy"])
def test_influence_is_exact_for_metrics_linear_in_a_class_row(metric):
    rng = np.random.default_rng(0)
    y, preds = _runs(rng)
    scores, g = confusion_influence(metric, y, preds, 4)
    w = _stratified_weights(rng, y, 20)
    for r in range(len(preds)):
        exact = _weighted_metric(metric, y, preds[r], w, 4) - scores[r]
        np.testing.assert_allclose(exact, (w - 1) @ g[r], atol=1e-12)


@pytest.mark.parametrize("metric", ["macro_f1", "mcc", "minority_f1"])
def test_influence_of_ratio_metrics_is_their_first_order_change(metric):
    rng = np.random.default_rng(1)
    y, preds = _runs(rng, n=400)
    scores, g = confusion_influence(metric, y, preds, 4, minority=3)
    # a small move of weight between two images of one class: the change is linear to first order
    for r in range(len(preds)):
        i, j = np.flatnonzero(y == 3)[:2]
        eps = 1e-4
        w = np.ones((1, len(y)))
        w[0, i] += eps
        w[0, j] -= eps
        change = _weighted_metric(metric, y, preds[r], w, 4, minority=3)[0] - scores[r]
        assert change == pytest.approx(eps * (g[r, i] - g[r, j]), abs=1e-9)


def test_one_seed_image_variance_matches_a_stratified_bootstrap():
    rng = np.random.default_rng(2)
    y, preds = _runs(rng, n=400)
    scores, g = confusion_influence("balanced_accuracy", y, preds, 4)
    est = paired_estimate(scores[:1] - scores[1:2], g[:1] - g[1:2], y)
    w = _stratified_weights(rng, y, 3000)
    boot = _weighted_metric("balanced_accuracy", y, preds[0], w, 4) - _weighted_metric(
        "balanced_accuracy", y, preds[1], w, 4
    )
    assert est.seeds == 1 and est.seed_var == 0 and math.isinf(est.df)
    assert est.se == pytest.approx(boot.std(), rel=0.05)


def test_auroc_and_its_influence_match_sklearn_and_a_bootstrap():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 60)
    logits = rng.normal(size=(2, 180, 3)) + 1.5 * np.eye(3)[y][None]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    scores, g = auroc_influence(y, probs)
    for r in range(2):
        assert scores[r] == pytest.approx(roc_auc_score(y, probs[r], multi_class="ovr", average="macro"))
    est = paired_estimate(scores[:1] - scores[1:], g[:1] - g[1:], y)
    w = _stratified_weights(rng, y, 400)
    boot = []
    for wi in w:
        idx = np.repeat(np.arange(len(y)), wi.astype(int))
        boot.append(
            roc_auc_score(y[idx], probs[0, idx], multi_class="ovr")
            - roc_auc_score(y[idx], probs[1, idx], multi_class="ovr")
        )
    assert est.se == pytest.approx(np.std(boot), rel=0.15)


def test_scores_and_influence_validates():
    y, preds = np.array([0, 1, 1]), np.array([[0, 1, 0]])
    with pytest.raises(ValueError, match="metric must be one of"):
        scores_and_influence("kappa", y, preds, 2)
    with pytest.raises(ValueError, match="auroc needs the runs' class probabilities"):
        scores_and_influence("auroc", y, preds, 2)
    with pytest.raises(ValueError, match=r"preds must have shape \(runs, 3\), got \(3,\)"):
        confusion_influence("accuracy", y, preds[0], 2)
    with pytest.raises(ValueError, match=r"preds must lie in \[0, 2\), got 0..5"):
        confusion_influence("accuracy", y, np.array([[0, 5, 1]]), 2)


def test_two_levels_separate_shared_image_noise_from_each_seeds_own():
    """g = shared z_i + seed-specific w_si: the image level is the z part, the w part is the seed level's."""
    rng = np.random.default_rng(4)
    n, s = 2000, 5
    y = np.zeros(n, dtype=int)
    z = rng.normal(0, 1.0, n) / n
    w = rng.normal(0, 2.0, (s, n)) / n
    d = rng.normal(0.01, 0.02, s)
    est = paired_estimate(d, z[None] + w, y)
    assert est.difference == pytest.approx(d.mean())
    assert est.seed_var == pytest.approx(d.var(ddof=1) / s)
    assert est.image_var == pytest.approx(n * (1.0 / n) ** 2, rel=0.25)  # n * var(z)
    assert (
        est.df == pytest.approx(effective_df(est.seed_var, est.image_var, s))
        and est.seeds == s
        and est.n == n
    )
    assert est.df > s - 1  # the image level, estimated from 2000 images, is as good as known
    batched = paired_estimates(np.stack([d, d]), np.stack([z[None] + w] * 2), y)
    assert batched[1].se == pytest.approx(est.se, rel=1e-12) and batched[1].difference == est.difference


@pytest.mark.parametrize("seed", range(4))
def test_p_values_and_tost_equal_the_t_tests_without_image_noise(seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(0.01, 0.02, 5)
    est = paired_estimate(d, np.zeros((5, 10)), np.zeros(10, dtype=int))
    assert est.p_value == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    lo, hi = est.interval(0.95)
    assert (lo, hi) == pytest.approx(stats.t.interval(0.95, 4, d.mean(), stats.sem(d)))
    m = 0.03
    tost = max(
        stats.ttest_1samp(d, -m, alternative="greater").pvalue,
        stats.ttest_1samp(d, m, alternative="less").pvalue,
    )
    assert est.p_equivalence(m) == pytest.approx(tost)


def test_verdicts_and_the_zero_spread_trap():
    good = Estimate(0.05, 0.0001, 0.0, 5, 100)
    assert verdict(good) is Verdict.BETTER and verdict(good, higher_is_better=False) is Verdict.WORSE
    assert verdict(Estimate(-0.05, 0.0001, 0.0, 5, 100)) is Verdict.WORSE
    small = Estimate(0.001, 0.00001, 0.0, 5, 100)
    assert verdict(small, margin=0.02) is Verdict.EQUIVALENT and verdict(small) is Verdict.INCONCLUSIVE
    # identical runs: zero spread and zero difference are equivalent, never better with p = 0
    same = Estimate(0.0, 0.0, 0.0, 5, 100)
    assert same.p_value == 1.0 and verdict(same, margin=0.02) is Verdict.EQUIVALENT
    # identical differences in every seed with no image spread: no uncertainty to judge, no verdict
    flat = Estimate(0.01, 0.0, 0.0, 5, 100)
    assert math.isnan(flat.p_value) and verdict(flat, margin=0.02) is Verdict.INCONCLUSIVE
    # adjusted p-values decide when given
    assert verdict(good, p_difference=0.2) is Verdict.INCONCLUSIVE
    assert Estimate(5.0, 1e-8, 0.0, 5, 100).p_value > 0  # p never reaches 0 with a spread


@pytest.mark.parametrize("n,effect,sd", [(5, 0.03, 0.03), (10, 0.01, 0.02), (3, 0.05, 0.02)])
def test_power_equals_statsmodels_one_sample_t(n, effect, sd):
    ref = TTestPower().power(effect_size=effect / sd, nobs=n, alpha=0.05, alternative="two-sided")
    assert power(effect, sd, 0.0, n) == pytest.approx(ref, rel=1e-6)


def test_seeds_needed_aims_at_80_percent_and_knows_when_the_test_set_caps_it():
    est = Estimate(0.03, 0.03**2 / 5, 0.0, 5, 400)
    goal, n = seeds_needed(est)
    assert goal == "difference" and power(0.03, 0.03, 0.0, n) >= 0.8 > power(0.03, 0.03, 0.0, n - 1)
    assert n == math.ceil(n)  # a whole number of seeds
    # image noise does not shrink with seeds: with a standard error floor above the effect, no n suffices
    capped = Estimate(0.03, 0.03**2 / 5, 0.02**2, 5, 400)
    assert seeds_needed(capped) == ("difference", None)
    # inside the margin the goal is equivalence
    eq = Estimate(0.002, 0.01**2 / 5, 0.0, 5, 400)
    goal, n = seeds_needed(eq, margin=0.02)
    assert goal == "equivalence" and equivalence_power(0.002, 0.01, 0.0, n, 0.02) >= 0.8
    with pytest.raises(ValueError, match="needs an estimate from >= 2 seeds, got 1"):
        seeds_needed(Estimate(0.1, 0.0, 0.01, 1, 50))


def test_estimate_validation():
    y = np.zeros(4, dtype=int)
    with pytest.raises(
        ValueError, match=r"influence must have shape \(seeds, images\)=\(2, 4\), got \(2, 3\)"
    ):
        paired_estimate(np.zeros(2), np.zeros((2, 3)), y)
    with pytest.raises(ValueError, match="must be finite"):
        paired_estimate(np.array([np.nan, 0.0]), np.zeros((2, 4)), y)
    with pytest.raises(ValueError, match=r"diffs must have shape \(comparisons, seeds\) with >= 1 seed"):
        paired_estimates(np.zeros((2, 0)), np.zeros((2, 0, 4)), y)


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


def test_effective_df_mixes_the_two_levels_quantiles():
    from scipy import stats as sps

    # all seed level: the seeds' own df; all image level: normal
    assert effective_df(1.0, 0.0, 5) == pytest.approx(4.0)
    assert effective_df(0.0, 1.0, 5) == math.inf and effective_df(1.0, 1.0, 1) == math.inf
    # in between: its 97.5% quantile is the quadrature mix of t(4) and the normal one
    df = effective_df(1.0, 3.0, 5)
    mix = math.sqrt(0.25 * sps.t.ppf(0.975, 4) ** 2 + 0.75 * sps.norm.ppf(0.975) ** 2)
    assert sps.t.ppf(0.975, df) == pytest.approx(mix, rel=1e-6) and 4 < df < 1e6
    # more image share, more df; more seeds, more df
    assert effective_df(1.0, 1.0, 5) < effective_df(1.0, 2.0, 5)
    assert effective_df(1.0, 1.0, 3) < effective_df(1.0, 1.0, 6)


def test_the_equivalence_resolution_is_the_margin_tost_just_passes_at():
    est = Estimate(0.01, 0.0001, 0.0002, 5, 400)
    res = est.equivalence_resolution(0.05)
    assert est.p_equivalence(res * 1.0001) < 0.05 < est.p_equivalence(res * 0.9999)
    assert est.image_floor(0.05) == pytest.approx(1.6448536 * math.sqrt(0.0002), rel=1e-6)
