"""Cross-validated statistics: pooled differences, the two levels, and a choice that never reads a test fold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from imbal.study.analysis.choice import Grid, fold_choices
from imbal.study.analysis.crossval import Runs, cv_estimates, procedure_runs, view_scores, view_zeroed
from imbal.study.analysis.decision import decide
from imbal.study.analysis.outputs import Folds
from imbal.study.analysis.plan import Plan
from imbal.study.simulation import studies as sim

PLAN = Plan()


def _study(configs: int = 4, repeats: int = 1, seed: int = 0, effects=None):
    rng = np.random.default_rng(seed)
    e = np.zeros(configs) if effects is None else np.asarray(effects, dtype=float)
    truth = sim.Truth(e, sim.RETINA, repeats, configs=list(sim.CONFIGS[:configs]))
    return sim.draw_folds(truth, rng, folds=5)


def test_the_difference_is_the_pooled_one_and_matches_sklearn():
    study = _study(configs=3, repeats=2)
    grid = Grid(study)
    est = grid.estimates("test", "balanced_accuracy")
    labels = study.test.labels
    for i, e in enumerate(est, start=1):
        per_repeat = [
            balanced_accuracy_score(labels, study.test.preds[grid.rows[i, r]])
            - balanced_accuracy_score(labels, study.test.preds[grid.rows[0, r]])
            for r in range(2)
        ]
        assert e.difference == pytest.approx(np.mean(per_repeat), abs=1e-12)
        assert e.seeds == 10 and e.n == len(labels)  # 2 repeats x 5 folds, every image


def test_with_one_fold_run_per_slot_the_model_level_removes_the_folds_own_image_noise():
    """Identical fold models on every slot (no model luck): the model share is 0 or nearly, the image share not."""
    study = _study(configs=2)
    runs = Runs.of(study, "test", Grid(study).rows, "balanced_accuracy")
    same = Runs(
        runs.labels,
        np.stack([runs.preds[0], runs.preds[0]]),
        None,
        runs.num_classes,
        runs.minority,
        runs.metric,
    )
    (e,) = cv_estimates(same, study.folds.owner("test"), study.folds.all_slots())
    assert e.difference == 0 and e.seed_var == 0 and e.image_var == 0


def test_views_read_only_their_slots():
    study = _study(configs=2)
    folds = study.folds
    runs = Runs.of(study, "val", Grid(study).rows, "balanced_accuracy")
    mask = folds.choice_slots(0, 2)  # slots 0, 3, 4 validate on folds 1, 4, 0
    scores, influence = view_scores(runs, folds.owner("val"), mask)
    images = np.isin(folds.ids[0], [1, 4, 0])
    assert (influence[:, 0, ~images] == 0).all()
    expected = balanced_accuracy_score(study.val.labels[images], runs.preds[0, 0, images])
    assert scores[0, 0] == pytest.approx(expected)
    assert view_zeroed(runs, folds.owner("val"), mask).shape == (2, 1, study.num_classes)


def test_the_choice_slots_leave_out_the_test_fold_and_its_own_model():
    folds = Folds(np.array([np.arange(10) % 5]), 5)
    mask = folds.choice_slots(0, 2)
    assert mask.tolist() == [[True, False, False, True, True]]
    # validation predictions of the allowed slots cover folds 1, 4, 0: never fold 2 (the test fold)
    owner = folds.owner("val")[0]
    assert sorted(set(folds.ids[0][mask[0][owner]].tolist())) == [0, 1, 4]


def _poison(study, images: np.ndarray, config_row: np.ndarray, split: str) -> None:
    """Make one configuration perfect on ``images`` of ``split`` (every repeat)."""
    preds = study.split(split).preds
    for row in config_row:
        preds[row, images] = study.test.labels[images]
    study._cache.clear()


def test_a_poisoned_test_fold_never_moves_its_own_choice_but_an_allowed_fold_does():
    """Slot j's choice must not read fold j's images (as validation or test) nor model j's outputs."""
    study = _study(configs=6, seed=3)
    grid = Grid(study)
    before = fold_choices(grid, PLAN)
    j = 2
    loser = next(k for k in range(1, 6) if k != before[0, j])
    fold_j = np.flatnonzero(study.folds.ids[0] == j)
    next_fold = np.flatnonzero(study.folds.ids[0] == (j + 1) % 5)
    # fold j's images on both splits, and model j's validation images (fold j + 1): all made perfect for a loser
    for split, images in (("val", fold_j), ("test", fold_j), ("val", next_fold)):
        _poison(study, images, grid.rows[loser], split)
    after = fold_choices(Grid(study), PLAN)
    assert after[0, j] == before[0, j]
    # the same poison on a fold the choice may read moves it: the test above can fail
    allowed = np.flatnonzero(study.folds.ids[0] == (j + 3) % 5)
    _poison(study, allowed, grid.rows[loser], "val")
    assert fold_choices(Grid(study), PLAN)[0, j] == loser


def test_the_procedure_predicts_each_image_with_its_slots_choice():
    study = _study(configs=3)
    grid = Grid(study)
    runs = Runs.of(study, "test", grid.rows, "balanced_accuracy")
    chosen = np.array([[1, 2, 1, 2, 1]])
    proc = procedure_runs(runs, study.folds, chosen)
    for i in range(len(study.test.labels)):
        c = chosen[0, study.folds.ids[0, i]]
        assert proc.preds[1, 0, i] == runs.preds[c, 0, i]
    assert np.array_equal(proc.preds[0], runs.preds[0])


def test_decide_on_a_cross_validated_study_confirms_over_folds_without_planning():
    study = _study(configs=4, effects=[0, 0, 0, 0.12], seed=5)
    d = decide(study, PLAN)
    assert d.confirmation is not None and len(d.confirmation.fold_choices) == 5
    assert d.confirmation.estimate.seeds == 5 and not d.one_seed
    assert d.planning is None and (d.table.seeds_needed == "").all()
    assert d.confirmation.verdict == "better" and d.recommendation == sim.CONFIGS[3]


def test_folds_are_checked():
    with pytest.raises(
        ValueError, match=r"fold ids must have shape \(repeats, images\) with values in \[0, 5\)"
    ):
        Folds(np.array([0, 1, 5]), 5)


def test_the_grid_reads_the_fold_ids_of_its_own_repeats():
    """A baseline with repeat 1 only: the grid's one column is repeat 1, and its fold ids are repeat 1's."""
    study = _study(configs=2, repeats=2)
    study = study.select([i for i, (c, r) in enumerate(study.runs) if not (c == study.baseline and r == 0)])
    grid = Grid(study)
    assert grid.seeds == [1] and np.array_equal(grid.folds.ids, study.folds.ids[[1]])
    (est,) = grid.estimates("test", "balanced_accuracy")
    labels = study.test.labels
    alt = study.test.preds[study.row[(sim.CONFIGS[1], 1)]]
    base = study.test.preds[study.row[(study.baseline, 1)]]
    assert est.difference == pytest.approx(
        balanced_accuracy_score(labels, alt) - balanced_accuracy_score(labels, base)
    )
    with pytest.raises(
        ValueError, match=r"no fold ids for repeat\(s\) \[7\]; the folds hold repeats \[0, 1\]"
    ):
        study.folds.for_repeats([7])
