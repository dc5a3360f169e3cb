"""The report's decision rule on simulated studies with known truth: error rates, power, equivalence, bias.

Numbers quoted in docs/method.md ("What the simulation shows") come from these scenarios
(``python -m imbal.study.simulation.studies`` prints them with more studies).
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Verdict, power
from imbal.study.simulation import studies as sim

PLAN = Plan()
PAIR = [("uniform", "ce"), ("uniform", "ce+f1")]


def mc_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-4) / n)


@pytest.fixture(scope="module")
def null_outcomes():
    """16 configurations with equal truth, 5 seeds, RetinaMNIST-sized splits."""
    return sim.run(sim.Truth(sim.shifted(np.zeros(16))), 500, PLAN, seed=11)


def test_no_difference_no_false_verdicts(null_outcomes):
    n = len(null_outcomes)
    assert n >= 490  # nearly every study has an alternative to confirm
    rate = np.mean([o.false_claim for o in null_outcomes])
    # (a): any better/worse on the primary, the confirmation and the gated exploratory rows together;
    # a calibrated level-alpha test sits at alpha, so the check allows its Monte Carlo error (one-sided)
    assert rate <= PLAN.alpha + 2 * mc_se(PLAN.alpha, n), f"false better/worse rate {rate:.3f}"


def test_choice_on_validation_is_unbiased_choice_on_test_is_not(null_outcomes):
    err = np.array([o.estimate - o.truth for o in null_outcomes])
    se = err.std(ddof=1) / math.sqrt(len(err))
    assert abs(err.mean()) <= 3 * se, f"validation choice bias {err.mean():+.4f} (MC SE {se:.4f})"
    test_err = np.array([o.test_choice_estimate - o.test_choice_truth for o in null_outcomes])
    assert test_err.mean() > 5 * test_err.std(ddof=1) / math.sqrt(len(test_err)) and test_err.mean() > 0.01
    coverage = np.mean([o.covered for o in null_outcomes])
    assert coverage >= 0.95 - 2 * mc_se(0.95, len(null_outcomes))


def _pair_estimates(effect: float, seeds: int, studies: int, seed: int):
    from imbal.study.analysis.decision import Grid

    truth = sim.Truth(sim.shifted([0.0, effect]), seeds=seeds, configs=PAIR)
    rng = np.random.default_rng(seed)
    return [Grid(sim.draw(truth, rng)).estimates("test", PLAN.primary)[0] for _ in range(studies)]


def test_a_planted_effect_is_found_at_the_power_seeds_needed_promised():
    """(b) The planning column: take the true spread, ask for 80% power, run that many seeds."""
    from imbal.study.analysis.stats import Estimate, seeds_needed, verdict

    pilot = _pair_estimates(0.05, 5, 300, seed=21)
    sd = math.sqrt(np.mean([e.seed_var * e.seeds for e in pilot]))
    iv = float(np.mean([e.image_var for e in pilot]))
    goal, n = seeds_needed(Estimate(0.05, sd**2 / 5, iv, 5, 400), PLAN.alpha)
    assert goal == "difference" and 2 <= n <= 30
    promised = power(0.05, sd, iv, n, PLAN.alpha)
    assert promised >= 0.8
    ests = _pair_estimates(0.05, n, 400, seed=22)
    found = np.mean([verdict(e, PLAN.alpha) is Verdict.BETTER for e in ests])
    assert abs(found - promised) <= 3 * mc_se(promised, len(ests)) + 0.03, (n, found, promised)
    # and at 5 seeds it is found at the power promised for 5
    at5 = np.mean([verdict(e, PLAN.alpha) is Verdict.BETTER for e in pilot])
    assert abs(at5 - power(0.05, sd, iv, 5, PLAN.alpha)) <= 3 * mc_se(0.5, len(pilot)) + 0.03


def _tost_theory(ratio: float, df: int = 4, alpha: float = 0.05) -> float:
    """P(a t-based TOST shows equivalence) for a true difference 0 and margin = ratio x true SE."""
    t = stats.t.ppf(1 - alpha, df)

    def f(x):
        return stats.chi2.pdf(x, df) * max(0.0, 2 * stats.norm.cdf(ratio - t * math.sqrt(x / df)) - 1)

    return integrate.quad(f, 0, np.inf)[0]


@pytest.fixture(scope="module")
def identical_pair():
    return _pair_estimates(0.0, 5, 1000, seed=13)


def test_identical_configurations_are_equivalent_at_the_rate_tost_theory_predicts(identical_pair):
    ests = identical_pair
    true_se = float(np.std([e.difference for e in ests], ddof=1))
    assert np.mean([e.se for e in ests]) == pytest.approx(true_se, rel=0.15)  # the SE is calibrated
    for ratio, quoted in ((2.0, 0.20), (3.5, 0.78), (4.0, 0.89)):
        theory = _tost_theory(ratio)
        assert theory == pytest.approx(quoted, abs=0.01)
        margin = ratio * true_se
        rate = np.mean([e.p_equivalence(margin) < PLAN.alpha for e in ests])
        assert abs(rate - theory) <= 3 * mc_se(theory, len(ests)) + 0.04, (ratio, rate, theory)
    wrong = np.mean([e.p_value < PLAN.alpha for e in ests])
    assert wrong <= PLAN.alpha + 2 * mc_se(PLAN.alpha, len(ests))


@pytest.mark.parametrize("seeds", [2, 3, 5])
@pytest.mark.parametrize("effect", [0.0, 0.03])
def test_intervals_hold_both_noise_sources_at_nominal_coverage(seeds, effect):
    covered = []
    for est in _pair_estimates(effect, seeds, 400, seed=seeds):
        low, high = est.interval(0.95)
        covered.append(low <= effect <= high)
    rate = float(np.mean(covered))
    assert rate >= 0.95 - 2 * mc_se(0.95, len(covered)), f"{seeds} seeds: coverage {rate:.3f}"
