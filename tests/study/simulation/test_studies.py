"""The report's decision rule on simulated studies with the real studies' noise: error rates, coverage, power.

Every check runs in both calibrations (the noise of the published RetinaMNIST and VesselMNIST3D
studies: image-level SE of a paired test difference 0.012 and 0.018); docs/method.md quotes the same
scenarios at 2000 studies per row (``python -m imbal.study.simulation.tables``). A rate is checked
against its target with twice its Monte Carlo standard error.
"""

import math

import numpy as np
import pytest

from imbal.study.analysis.choice import Grid
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Estimate, Verdict, power, seeds_needed, verdict
from imbal.study.simulation import studies as sim

PLAN = Plan()
CALS = [sim.RETINA, sim.VESSEL]


def mc_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-4) / n)


def pair_estimates(
    effect: float, cal: sim.Calibration, seeds: int, studies: int, seed: int
) -> list[Estimate]:
    rng = np.random.default_rng(seed)
    truth = sim.pair(effect, cal, seeds)
    return [Grid(sim.draw(truth, rng)).estimates("test", PLAN.primary)[0] for _ in range(studies)]


@pytest.fixture(scope="module", params=CALS, ids=lambda c: c.name)
def null_outcomes(request):
    """16 configurations of equal truth, 5 seeds."""
    return request.param, sim.run(sim.null(request.param), 300, PLAN, seed=11)


def test_equal_configurations_give_no_false_verdicts_and_keep_the_baseline(null_outcomes):
    cal, out = null_outcomes
    n = len(out)
    assert n >= 290  # nearly every study has an alternative to confirm
    false = np.mean([o.false_claim for o in out])
    # any better/worse on the primary, the confirmation and the gated exploratory rows together
    assert false <= PLAN.alpha + 2 * mc_se(PLAN.alpha, n), f"{cal.name}: false better/worse {false:.3f}"
    kept = np.mean([o.baseline_kept for o in out])
    assert kept >= 1 - PLAN.alpha - 2 * mc_se(PLAN.alpha, n), f"{cal.name}: baseline kept {kept:.3f}"


def test_the_validation_choice_is_unbiased_the_test_choice_is_not(null_outcomes):
    _, out = null_outcomes
    err = np.array([o.estimate - o.truth for o in out])
    se = err.std(ddof=1) / math.sqrt(len(err))
    assert abs(err.mean()) <= 3 * se, f"validation choice bias {err.mean():+.4f} (MC SE {se:.4f})"
    test_err = np.array([o.test_choice_estimate - o.test_choice_truth for o in out])
    assert test_err.mean() > 5 * test_err.std(ddof=1) / math.sqrt(len(test_err)) and test_err.mean() > 0.01
    coverage = np.mean([o.covered for o in out])
    assert coverage >= 0.95 - 2 * mc_se(0.95, len(out))


@pytest.mark.parametrize("cal", CALS, ids=lambda c: c.name)
@pytest.mark.parametrize("seeds", [2, 3])
def test_fewer_seeds_keep_the_error_rate(cal, seeds):
    out = sim.run(sim.null(cal, seeds), 200, PLAN, seed=12)
    false = np.mean([o.false_claim for o in out])
    assert false <= PLAN.alpha + 2 * mc_se(PLAN.alpha, len(out)), f"{cal.name}, {seeds} seeds: {false:.3f}"


@pytest.mark.parametrize("cal", CALS, ids=lambda c: c.name)
@pytest.mark.parametrize("seeds", [3, 5, 10])
@pytest.mark.parametrize("effect", [0.0, 0.03])
def test_intervals_cover_at_nominal_level_not_more(cal, seeds, effect):
    """Coverage within [0.94, 0.975] at 3, 5 and 10 seeds: the df rule (stats.effective_df) is neither
    liberal nor as conservative as seeds - 1 for the whole error (0.97-0.99 in the same studies)."""
    ests = pair_estimates(effect, cal, seeds, 400, seed=100 * seeds + int(1000 * effect))
    rate = float(np.mean([e.interval(0.95)[0] <= effect <= e.interval(0.95)[1] for e in ests]))
    tol = 2 * mc_se(0.95, len(ests))
    assert 0.94 - tol <= rate <= 0.975 + tol, f"{cal.name}, {seeds} seeds, {effect:+.2f}: coverage {rate:.3f}"


@pytest.mark.parametrize("cal", CALS, ids=lambda c: c.name)
def test_the_power_promised_is_the_power_found(cal):
    """A planted +0.05 between two: power promised from the true spread vs the rate found, 5 and 10 seeds."""
    pilot = pair_estimates(0.05, cal, 5, 300, seed=21)
    sd = math.sqrt(np.mean([e.seed_var * e.seeds for e in pilot]))
    iv = float(np.mean([e.image_var for e in pilot]))
    for seeds, ests in ((5, pilot), (10, pair_estimates(0.05, cal, 10, 300, seed=22))):
        promised = power(0.05, sd, iv, seeds, PLAN.alpha)
        found = np.mean([verdict(e, PLAN.alpha) is Verdict.BETTER for e in ests])
        assert abs(found - promised) <= 0.05 + 2 * mc_se(promised, len(ests)), (
            cal.name,
            seeds,
            found,
            promised,
        )
    # the planning answer for 80% power, when it is within reach
    goal, n = seeds_needed(Estimate(0.05, sd**2 / 5, iv, 5, 400), PLAN.alpha)
    assert goal == "difference" and (n is None or power(0.05, sd, iv, n, PLAN.alpha) >= 0.8)


def test_equivalence_at_the_margin_cannot_be_reached_here_and_the_report_says_where_it_can():
    """Two identical configurations at 5 seeds: within the default margin (0.02) TOST cannot pass, because
    the image level alone is about that large; the resolution the report states is the margin it can."""
    ests = pair_estimates(0.0, sim.RETINA, 5, 400, seed=13)
    assert np.mean([e.p_equivalence(PLAN.margin) < PLAN.alpha for e in ests]) <= 0.02
    res = np.array([e.equivalence_resolution(PLAN.alpha) for e in ests])
    rate_at_res = np.mean([e.p_equivalence(r + 1e-9) < PLAN.alpha for e, r in zip(ests, res)])
    assert rate_at_res == 1.0  # just above its resolution every estimate shows equivalence
    floor = np.array([e.image_floor(PLAN.alpha) for e in ests])
    assert (floor <= res).all() and np.median(floor) > PLAN.margin / 2
    wrong = np.mean([e.p_value < PLAN.alpha for e in ests])
    assert wrong <= PLAN.alpha + 2 * mc_se(PLAN.alpha, len(ests))


def test_stress_heavy_tails_and_a_noisy_configuration_keep_the_error_rate():
    scale = np.ones(16)
    scale[8] = 3.0
    for truth in (
        sim.Truth(np.zeros(16), sim.RETINA, heavy_tails=3.0),
        sim.Truth(np.zeros(16), sim.VESSEL, run_sd_scale=tuple(scale)),
    ):
        out = sim.run(truth, 200, PLAN, seed=14)
        false = np.mean([o.false_claim for o in out])
        assert false <= PLAN.alpha + 2 * mc_se(PLAN.alpha, len(out)), false
        assert np.mean([o.baseline_kept for o in out]) >= 0.95 - 2 * mc_se(0.95, len(out))


def test_a_truth_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"effects must have one value per configuration \(16\)"):
        sim.Truth(np.zeros(3))
    with pytest.raises(ValueError, match=r"recalls .* must lie strictly between 0 and 1"):
        sim.Truth(np.full(16, 0.9))


# ---------------------------------------------------------------- cross-validated studies (docs/method.md)
# fewer studies than the official split's checks (a CV study costs 5x to analyse); docs/method.md
# quotes every scenario at 500 studies per row (python -m imbal.study.simulation.tables cv 500)


@pytest.fixture(scope="module", params=CALS, ids=lambda c: c.name)
def cv_null_outcomes(request):
    """16 configurations of equal truth, 5 folds x 1 repeat over the data set's every labelled image."""
    return request.param, sim.run(sim.null(request.param, 1), 120, PLAN, seed=31, folds=5)


def test_cross_validation_keeps_the_error_rate_and_the_baseline(cv_null_outcomes):
    cal, out = cv_null_outcomes
    n = len(out)
    assert n >= 110
    false = np.mean([o.false_claim for o in out])
    assert false <= PLAN.alpha + 2 * mc_se(PLAN.alpha, n), f"{cal.name} CV: false better/worse {false:.3f}"
    kept = np.mean([o.baseline_kept for o in out])
    assert kept >= 1 - PLAN.alpha - 2 * mc_se(PLAN.alpha, n), f"{cal.name} CV: baseline kept {kept:.3f}"
    # the nested, cross-fitted choice carries no selection bias into its test effect, and is covered
    err = np.array([o.estimate - o.truth for o in out])
    assert abs(err.mean()) <= 3 * err.std(ddof=1) / math.sqrt(n), f"{cal.name} CV: bias {err.mean():+.4f}"
    coverage = np.mean([o.covered for o in out])
    assert coverage >= 0.95 - 2 * mc_se(0.95, n), f"{cal.name} CV: coverage under the null {coverage:.3f}"


@pytest.mark.parametrize(
    ("cal", "repeats", "studies"),
    [(sim.RETINA, 1, 150), (sim.VESSEL, 1, 150), (sim.RETINA, 2, 80)],
    ids=["RetinaMNIST-x1", "VesselMNIST3D-x1", "RetinaMNIST-x2"],
)
def test_cross_validated_intervals_cover_at_nominal_level(cal, repeats, studies):
    """The confirmation's interval of a two-configuration CV study holds a true +0.03 94-97.5% of the time."""
    out = sim.run(sim.pair(0.03, cal, repeats), studies, PLAN, seed=41 + repeats, folds=5)
    rate = float(np.mean([o.covered for o in out]))
    tol = 2 * mc_se(0.95, len(out))
    assert 0.94 - tol <= rate <= 0.975 + tol, f"{cal.name}, CV x{repeats}: coverage {rate:.3f}"
