"""The rule: screens and choice on validation, one cross-fitted confirmation on test, the fixed sequence."""

import numpy as np
import pytest

from imbal.study.analysis.decision import decide, recommendation
from imbal.study.analysis.outputs import SplitOutputs, StudyOutputs
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Verdict
from tests.study.analysis.test_choice import BASE, _noisy, _study


def test_identical_configurations_are_equivalent_never_better_or_worse():
    # ce and ce+0*f1 train bit for bit alike: every seed's predictions are the baseline's
    def same(rng, k, s, y):
        return np.where(np.random.default_rng(s).random(len(y)) < 0.7, y, (y + 1) % 3)

    study = _study([BASE, ("uniform", "ce+0*f1")], [0, 1, 2], same, same)
    d = decide(study, Plan())
    assert d.confirmation.verdict is Verdict.EQUIVALENT
    assert d.confirmation.estimate.se == 0 and d.confirmation.estimate.p_value == 1.0
    assert d.recommendation == BASE  # as good: the simpler one
    row = d.table[(d.table.metric == "balanced_accuracy")].iloc[0]
    assert row.verdict == "equivalent" and row.role == "confirmatory"


def test_a_clear_winner_is_chosen_on_validation_and_confirmed_on_test():
    acc = [0.55, 0.56, 0.85, 0.5]
    configs = [BASE, ("uniform", "ce+f1"), ("oversample", "ce"), ("uniform", "focal")]
    study = _study(configs, range(4), _noisy(acc), _noisy(acc))
    d = decide(study, Plan())
    assert d.chosen == d.alternative == ("oversample", "ce")
    assert d.confirmation.fold_choices == [("oversample", "ce")] * 4 and d.confirmation.stable
    assert d.confirmation.verdict is Verdict.BETTER and d.recommendation == ("oversample", "ce")
    # the gate opened: the other rows are tested (Holm over them), not "not tested"
    primary = d.table[(d.table.metric == "balanced_accuracy") & (d.table.role == "primary")]
    assert set(primary.verdict) <= {"better", "worse", "equivalent", "inconclusive"}
    assert primary.family_size.iloc[0] == 2


def test_the_test_split_never_chooses():
    # the alternative is best on validation and worst on test: it is still what the test confirms
    val = _noisy([0.6, 0.9, 0.7])
    test = _noisy([0.6, 0.4, 0.95])
    configs = [BASE, ("uniform", "ce+f1"), ("oversample", "ce")]
    d = decide(_study(configs, range(3), val, test), Plan())
    assert d.alternative == ("uniform", "ce+f1") and d.confirmation.verdict is Verdict.WORSE
    assert d.recommendation == BASE


@pytest.mark.parametrize(
    "verdict,expected",
    [
        (Verdict.BETTER, "alt"),
        (Verdict.WORSE, "base"),
        (Verdict.EQUIVALENT, "base"),  # as good: the simpler one
        (Verdict.INCONCLUSIVE, "base"),  # for now: a change needs evidence
        (Verdict.NOT_TESTED, "base"),  # one seed: no verdict
        (None, "base"),  # nothing to confirm
    ],
)
def test_recommendation_changes_only_on_a_confirmed_improvement(verdict, expected):
    names = {"alt": ("oversample", "ce"), "base": BASE}
    assert recommendation(BASE, names["alt"], verdict) == names[expected]
    assert recommendation(BASE, None, verdict) == BASE


def test_a_baseline_that_fails_a_screen_is_kept_unless_an_alternative_is_confirmed_better():
    # the baseline never predicts class 2 on validation (unstable), and nothing is better on test
    def val(rng, k, s, y):
        p = np.where(rng.random(len(y)) < 0.8, y, (y + 1) % 3)
        return np.where(p == 2, 0, p) if k == 0 else p

    configs = [BASE, ("uniform", "ce+f1"), ("oversample", "ce")]
    d = decide(_study(configs, range(5), val, _noisy([0.7, 0.7, 0.7])), Plan())
    assert d.screens[BASE].unstable and d.confirmation.verdict is not Verdict.BETTER
    assert d.recommendation == BASE  # reported (the findings say so), never acted on alone


def test_one_seed_gives_no_confirmatory_verdict():
    configs = [BASE, ("oversample", "ce")]
    d = decide(_study(configs, [0], _noisy([0.5, 0.9]), _noisy([0.5, 0.9])), Plan())
    assert d.confirmation.verdict is Verdict.NOT_TESTED and d.confirmation.estimate.difference > 0.3
    assert d.recommendation == BASE


def test_plan_validation_and_bad_studies():
    with pytest.raises(ValueError, match=r"primary_metric must be one of \[.*\], got 'kappa'"):
        Plan(primary="kappa")
    # not a metric of every run's confusion matrix with higher better: refused before any run
    for metric in ("ece", "brier", "qwk", "auroc"):
        with pytest.raises(
            ValueError, match=rf"primary_metric must be one of \['balanced_accuracy', .*got '{metric}'"
        ):
            Plan(primary=metric)
    with pytest.raises(ValueError, match=r"equivalence_margin must be a number in \(0, 0.5\).*got -0.1"):
        Plan(margin=-0.1)
    with pytest.raises(ValueError, match=r"harm_margin must be a number in \(0, 1\).*got 3"):
        Plan(primary="mcc", harm_margin=3)
    with pytest.raises(ValueError, match=r"equivalence_margin must be a number .* got nan"):
        Plan(margin=float("nan"))
    one = _study([BASE], [0, 1], _noisy([0.7]), _noisy([0.7]))
    with pytest.raises(ValueError, match=r"a study needs the baseline .* and >= 1 other configuration"):
        decide(one, Plan())
    nobase = _study([("uniform", "focal"), ("oversample", "ce")], [0], _noisy([0.7, 0.7]), _noisy([0.7, 0.7]))
    with pytest.raises(ValueError, match=r"the baseline uniform / ce has no runs"):
        decide(nobase, Plan())


def test_a_configuration_missing_a_seed_is_left_out_not_paired_on_fewer():
    configs = [BASE, ("uniform", "ce+f1"), ("oversample", "ce")]
    labels = np.repeat(np.arange(3), (60, 30, 10))
    rng = np.random.default_rng(0)
    runs = [(c, s) for c in configs for s in range(3) if not (c == configs[2] and s == 2)]
    preds = np.stack([np.where(rng.random(100) < 0.7, labels, 0) for _ in runs])
    study = StudyOutputs(runs, SplitOutputs(labels, preds), SplitOutputs(labels, preds), 3, 2)
    d = decide(study, Plan())
    assert d.grid.left_out == [("oversample", "ce")] and set(d.table.loss) == {"ce+f1"}
