"""The findings: the first sentence follows the planted effect, the tables and the evidence follow the runs."""

import re

import pytest

from imbal.metrics import METRICS
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Verdict
from imbal.study.report.collect import collect_study
from imbal.study.report.sections.findings import findings_blocks, qualify, rule_text
from tests.study.report import fakes
from tests.study.report.fakes import BASE_RECALL, BASELINE, BETTER, GOOD_RECALL, SAME

OTHER = ("undersample", "ce+mcc")
ZEROES_SEVERE = [0.95, 0.95, 0.0]  # never predicts the rarest class: F1 0 on it


def study(root, runs, seeds=(0, 1, 2)):
    """``runs``: {config: recall, or a function of the seed giving the recall}; a (recall, draw) pair shares draws."""
    for config, recall in runs.items():
        for seed in seeds:
            r = recall(seed) if callable(recall) else recall
            draw = None
            if isinstance(r, tuple):
                r, draw = r
            fakes.write_run(root, config, seed, r, draw=draw)
    (data,) = collect_study(root).datasets
    return data


SCENARIOS = {
    "better": {BASELINE: BASE_RECALL, BETTER: GOOD_RECALL, SAME: BASE_RECALL},
    "worse on test": {BASELINE: BASE_RECALL, BETTER: {"val": GOOD_RECALL, "test": [0.9, 0.3, 0.1]}},
    "identical": {BASELINE: BASE_RECALL, SAME: (BASE_RECALL, BASELINE)},
    "no effect on test": {BASELINE: BASE_RECALL, BETTER: {"val": GOOD_RECALL, "test": BASE_RECALL}},
    "screened out": {BASELINE: BASE_RECALL, BETTER: {"val": ZEROES_SEVERE, "test": GOOD_RECALL}},
    "unstable baseline": {
        BASELINE: {"val": ZEROES_SEVERE, "test": BASE_RECALL},
        BETTER: {"val": GOOD_RECALL, "test": BASE_RECALL},
    },
    "choice changes with a seed": {
        BASELINE: BASE_RECALL,
        BETTER: lambda seed: [0.9] * 3 if seed == 0 else [0.7] * 3,
        OTHER: lambda seed: [0.6] * 3 if seed == 0 else [0.75] * 3,
    },
}


def findings(tmp_path, scenario, seeds=(0, 1, 2)):
    data = study(tmp_path / "study", SCENARIOS[scenario], seeds)
    s = fakes.decided(tmp_path, data)
    return s, findings_blocks(s, s.decision)


def test_blocks_in_order(tmp_path):
    s, blocks = findings(tmp_path, "better")
    assert [b.kind for b in blocks] == ["h3", "p", "p", "table", "p", "table", "p"]
    assert blocks[0].text == "Findings" and blocks[2].text == rule_text(s.plan, BASELINE)


def test_a_clearly_better_configuration_is_used_by_the_effect_the_runs_show(tmp_path):
    s, blocks = findings(tmp_path, "better")
    answer = blocks[1].text
    assert answer.startswith(
        "Use oversample / ce+f1: chosen on validation, it is better than uniform / ce on test, balanced accuracy "
    )
    effect = (
        s.data.runs_of(BETTER).balanced_accuracy.mean() - s.data.runs_of(BASELINE).balanced_accuracy.mean()
    )
    assert effect > 0.2
    low, high = s.decision.confirmation.estimate.interval(0.95)
    assert f"{effect:+.3f} (95% CI [{low:+.3f}, {high:+.3f}], p = " in answer
    assert 0 < low < effect < high


def test_the_confirmation_table_holds_the_runs_means_and_the_verdicts(tmp_path):
    s, blocks = findings(tmp_path, "better")
    table = blocks[3]
    assert table.header == [
        "metric",
        "role",
        "uniform / ce",
        "oversample / ce+f1",
        "difference",
        "95% CI",
        "p",
        "verdict",
    ]
    base, alt = s.data.runs_of(BASELINE), s.data.runs_of(BETTER)
    metrics = [s.plan.primary, *s.plan.secondary]
    assert [r[0] for r in table.rows] == [
        "Balanced accuracy",
        "Macro F1",
        "MCC",
        "F1 of the rarest class ('severe')",
    ]
    for row, metric in zip(table.rows, metrics):
        assert row[2] == f"{base[metric].mean():.3f}" and row[3] == f"{alt[metric].mean():.3f}"
        assert float(row[4]) == pytest.approx(alt[metric].mean() - base[metric].mean(), abs=1e-3)
    assert table.rows[0][1:2] + table.rows[0][7:] == ["primary (confirmatory)", "better"]
    assert all(r[1] == "secondary" and r[7] == "non-inferior (harm margin 0.02)" for r in table.rows[1:])


def test_the_validation_table_is_best_first_with_the_choice_marked(tmp_path):
    s, blocks = findings(tmp_path, "better")
    rows = blocks[5].rows
    assert [r[0] for r in rows] == ["oversample / ce+f1 (choice)", "uniform / focal", "uniform / ce"]
    means = [float(r[1]) for r in rows]
    assert means == sorted(means, reverse=True)
    assert means[0] == pytest.approx(s.decision.validation_means[BETTER], abs=5e-4)
    assert [r[2:] for r in rows] == [["passed", "0"]] * 3


def test_the_evidence_names_the_seeds_the_test_n_and_the_rarest_classs_count(tmp_path):
    _, blocks = findings(tmp_path, "better")
    evidence = blocks[-1].text
    n_test, rare = sum(fakes.TEST_COUNTS), fakes.TEST_COUNTS[fakes.MINORITY]
    assert evidence.startswith(
        f"Evidence: 3 seed(s) (0, 1, 2) per configuration, test n = {n_test} (rarest class 'severe': n = {rare})."
    )
    assert "With one seed" not in evidence


def test_worse_on_test_stays_with_the_baseline_and_notes_each_harm(tmp_path):
    s, blocks = findings(tmp_path, "worse on test")
    assert blocks[1].text.startswith(
        "Stay with uniform / ce: oversample / ce+f1, the best alternative on validation, is worse on test, "
        "balanced accuracy -"
    )
    notes = [b.text for b in blocks if b.kind == "note"]
    assert len(notes) == 3  # the three secondary metrics, each worse by more than the harm margin
    for note, metric in zip(notes, s.plan.secondary):
        r = s.decision.row(metric, BETTER)
        assert note == (
            f"On test, oversample / ce+f1 is worse than uniform / ce on {METRICS[metric].label} by more than the "
            f"harm margin: {r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]."
        )
        assert r.ci_high < -s.plan.harm_margin


def test_identical_runs_are_equivalent_and_the_simpler_stays(tmp_path):
    _, blocks = findings(tmp_path, "identical")
    assert blocks[1].text.startswith(
        "Stay with uniform / ce, the simpler: uniform / focal, the best alternative on validation, is equivalent "
        "to it within ±0.02 on test (+0.000"
    )
    assert blocks[1].text.endswith("as good a choice on balanced accuracy.")
    assert [r[0] for r in blocks[-2].rows] == ["uniform / ce (choice)", "uniform / focal (alternative)"]


def test_no_effect_on_test_is_undecided_and_says_how_many_seeds_would_decide(tmp_path):
    s, blocks = findings(tmp_path, "no effect on test")
    answer = blocks[1].text
    assert answer.startswith(
        "Stay with uniform / ce for now, no difference shown: oversample / ce+f1, the best alternative on "
        "validation, differs from it on test by balanced accuracy "
    )
    assert "neither a difference nor equivalence within ±0.02 is shown." in answer
    seeds = s.decision.planning.seeds
    assert f"About {seeds} seeds would show equivalence with 80% power" in answer
    # what the data could show instead: the smallest margin, and the test set's own limit
    est = s.decision.confirmation.estimate
    assert f"These data would show equivalence only within ±{est.equivalence_resolution():.3f}" in answer
    assert f"limits it to ±{est.image_floor():.3f} at best." in answer
    assert blocks[3].rows[0][7] == "inconclusive"


def test_a_configuration_that_zeroes_a_class_is_screened_out(tmp_path):
    _, blocks = findings(tmp_path, "screened out")
    assert blocks[1].text == (
        "Stay with uniform / ce: no other configuration passed the validation screens (see the table below)."
    )
    assert "table" not in [b.kind for b in blocks[:4]]  # nothing was confirmed: no confirmation table
    row = blocks[-2].rows[0]
    assert row[0] == "oversample / ce+f1"
    assert row[2].startswith("unstable: seed 0: severe; seed 1: severe; seed 2: severe") and row[3] == "3"


def test_an_unstable_baseline_is_reported_and_kept_without_a_confirmed_improvement(tmp_path):
    s, blocks = findings(tmp_path, "unstable baseline")
    assert s.decision.recommendation == s.decision.baseline
    assert blocks[1].text.startswith("Stay with uniform / ce for now, no difference shown")
    (note,) = [b.text for b in blocks if b.kind == "note"]
    assert note.startswith(
        "uniform / ce failed a validation screen: zeroed a class on validation in 3 of 3 seeds"
    )
    assert "the recommendation changes only when an alternative is confirmed better" in note


def test_a_choice_that_changes_when_a_seed_is_left_out_is_noted(tmp_path):
    s, blocks = findings(tmp_path, "choice changes with a seed")
    assert s.decision.confirmation.fold_choices == [OTHER, BETTER, BETTER]
    (note,) = [b.text for b in blocks if b.kind == "note"]
    assert note.startswith(
        "The validation choice changed when one seed was left out (oversample / ce+f1: 2 of 3, "
        "undersample / ce+mcc: 1 of 3)"
    )
    # both effects, each labelled: the procedure's and the chosen configuration's own over all seeds
    answer = blocks[1].text
    assert "[choice procedure, cross-fitted over 3 seeds (folds chose oversample / ce+f1 2 of 3" in answer
    assert "; oversample / ce+f1 itself over all 3 seeds: " in answer and "(exploratory)" in answer
    assert blocks[4].header[3] == "oversample / ce+f1 (folds: see the note)"


def test_one_seed_gives_no_verdict_and_says_what_it_can_show(tmp_path):
    s, blocks = findings(tmp_path, "better", seeds=(0,))
    assert s.decision.one_seed and s.decision.recommendation == s.decision.baseline
    assert blocks[1].text.startswith("No verdict from one seed:")
    assert "it cannot tell a configuration's effect from its seed's luck" in blocks[1].text
    assert blocks[3].rows[0][7] == "not tested"
    evidence = blocks[-1].text
    assert evidence.startswith("Evidence: 1 seed(s) (0) per configuration")
    assert evidence.endswith("no verdict here is firm; run at least 3 seeds.")


@pytest.mark.parametrize(
    "verdict, one_seed, text",
    [
        (Verdict.BETTER, True, "better (test images only, 1 seed)"),
        (Verdict.WORSE, True, "worse (test images only, 1 seed)"),
        (Verdict.EQUIVALENT, True, "equivalent (test images only, 1 seed)"),
        (Verdict.INCONCLUSIVE, True, "inconclusive"),
        (Verdict.NOT_TESTED, True, "not tested"),
        (Verdict.BETTER, False, "better"),
    ],
)
def test_qualify(verdict, one_seed, text):
    assert qualify(verdict, one_seed) == text


def test_rule_text_names_the_plans_metrics_margins_and_baseline():
    text = rule_text(Plan("macro_f1", 0.03, 0.05), ("oversample", "ce"))
    assert text.startswith(
        "Pre-specified: primary metric macro f1; equivalence margin ±0.03; harm margin 0.05 on the secondary "
        "metrics (balanced accuracy, mcc, f1 of the rarest class)."
    )
    assert len(re.findall("oversample / ce", text)) == 3
    assert text.endswith(
        "oversample / ce stays unless the alternative is confirmed better: a screen it fails is reported, never acted on alone."
    )


@pytest.mark.parametrize("repeats", [1, 2])
def test_an_undecided_cross_validated_study_names_what_more_repeats_can_lower(repeats):
    """The image level of a cross-validated study holds the fold models' own per-image noise, which repeats
    average: its limit is stated for the repeats run, never as a floor for any number of them."""
    from imbal.study.analysis.decision import decide
    from imbal.study.report.sections.findings import _answer
    from tests.study.analysis.test_crossval import _study as cv_study

    d = decide(cv_study(configs=2, repeats=repeats, seed=3), Plan())
    assert d.confirmation is not None and d.confirmation.verdict is Verdict.INCONCLUSIVE
    answer = _answer(d)
    reads = "1 repeat of fold models reads them" if repeats == 1 else "2 repeats of fold models read them"
    floor = d.confirmation.estimate.image_floor()
    assert f"the noise of these 1600 images, as {reads}, limits it to ±{floor:.3f} (more repeats" in answer
    assert "never the images' sampling noise" in answer and "at best" not in answer
