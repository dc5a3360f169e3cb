"""A study's per-run predictions as arrays (analysis/outputs.py): checks, the complete grid, subsets, F1s, and
which slot made each pooled prediction of a cross-validated study."""

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax
from sklearn.metrics import f1_score

from imbal.study.analysis.influence import confusion_influence
from imbal.study.analysis.outputs import BASELINE, Folds, SplitOutputs, StudyOutputs, extra_parts, simplicity

C = 3
FOCAL, MCC = ("uniform", "focal"), ("oversample", "mcc")


def split(runs: int, n: int, seed: int, logits: bool = True) -> SplitOutputs:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % C
    z = rng.normal(size=(runs, n, C)).astype(np.float32)
    z[:, np.arange(n), labels] += 1.0
    return SplitOutputs(labels, z.argmax(-1), z if logits else None)


def outputs(runs, logits=True, **kw) -> StudyOutputs:
    return StudyOutputs(runs, split(len(runs), 6, 0, logits), split(len(runs), 9, 1, logits), C, 2, **kw)


# run order on purpose not baseline first; MCC lacks the baseline's seed 2
RUNS = [(FOCAL, 0), (BASELINE, 0), (FOCAL, 2), (BASELINE, 2), (MCC, 0), (FOCAL, 1), (BASELINE, 1)]


def test_duplicate_runs_are_refused():
    with pytest.raises(ValueError, match=r"^runs must be distinct \(config, seed\) pairs$"):
        outputs([(BASELINE, 0), (FOCAL, 0), (BASELINE, 0)])


def test_predictions_of_the_wrong_shape_are_refused():
    good = split(2, 5, 0)
    runs = [(BASELINE, 0), (BASELINE, 1)]
    with pytest.raises(
        ValueError, match=r"^val preds must have shape \(runs, images\)=\(2, 5\), got \(3, 5\)$"
    ):
        StudyOutputs(runs, split(3, 5, 0), good, C, 0)
    with pytest.raises(
        ValueError, match=r"^test preds must have shape \(runs, images\)=\(2, 5\), got \(2, 4\)$"
    ):
        StudyOutputs(runs, good, SplitOutputs(good.labels, good.preds[:, :4]), C, 0)
    with pytest.raises(
        ValueError, match=r"^test preds must have shape \(runs, images\)=\(2, 5\), got \(5,\)$"
    ):
        StudyOutputs(runs, good, SplitOutputs(good.labels, good.preds[0]), C, 0)


def test_grid_puts_the_baseline_first_and_leaves_out_configurations_lacking_a_seed():
    study = outputs(RUNS)
    assert study.configs == [FOCAL, BASELINE, MCC]  # run order
    assert study.seeds_of(FOCAL) == [0, 1, 2] and study.seeds_of(("weights", "ce")) == []
    configs, seeds, rows, left_out = study.grid()
    assert configs == [BASELINE, FOCAL] and seeds == [0, 1, 2] and left_out == [MCC]
    np.testing.assert_array_equal(rows, [[1, 6, 3], [0, 5, 2]])
    for k, config in enumerate(configs):
        assert [study.runs[r] for r in rows[k]] == [(config, s) for s in seeds]


def test_a_config_with_more_seeds_than_the_baseline_is_kept_on_the_baselines_seeds():
    study = outputs([(BASELINE, 0), (FOCAL, 0), (FOCAL, 5)])
    configs, seeds, rows, left_out = study.grid()
    assert configs == [BASELINE, FOCAL] and seeds == [0] and left_out == []
    np.testing.assert_array_equal(rows, [[0], [1]])


def test_grid_without_the_baseline_says_so():
    with pytest.raises(ValueError, match=r"the baseline uniform / ce has no runs in this study"):
        outputs([(FOCAL, 0), (MCC, 0)]).grid()
    # another baseline is honoured
    configs, *_ = outputs([(FOCAL, 0), (MCC, 0)], baseline=MCC).grid()
    assert configs == [MCC, FOCAL]


@pytest.mark.parametrize("logits", [True, False])
def test_select_keeps_the_rows_and_their_logits(logits):
    study = outputs(RUNS, logits=logits, class_names=["a", "b", "c"])
    keep = [6, 0, 4]
    part = study.select(keep)
    assert part.runs == [(BASELINE, 1), (FOCAL, 0), (MCC, 0)]
    assert (part.num_classes, part.minority, part.baseline, part.class_names) == (
        C,
        2,
        BASELINE,
        ["a", "b", "c"],
    )
    for name in ("val", "test"):
        whole, sub = study.split(name), part.split(name)
        np.testing.assert_array_equal(sub.labels, whole.labels)
        np.testing.assert_array_equal(sub.preds, whole.preds[keep])
        if logits:
            np.testing.assert_array_equal(sub.logits, whole.logits[keep])
            np.testing.assert_array_equal(sub.probs, whole.probs[keep])
        else:
            assert sub.logits is None and sub.probs is None
    # the subset's scores are the whole study's rows
    np.testing.assert_array_equal(part.scores("test", "mcc")[0], study.scores("test", "mcc")[0][keep])


def test_split_names_are_checked():
    with pytest.raises(ValueError, match=r"split must be one of \('val', 'test'\), got 'train'"):
        outputs(RUNS).split("train")


def test_scores_are_the_influence_modules_and_computed_once():
    study = outputs(RUNS)
    scores, influence = study.scores("val", "balanced_accuracy")
    want = confusion_influence("balanced_accuracy", study.val.labels, study.val.preds, C, 2)
    np.testing.assert_array_equal(scores, want[0])
    np.testing.assert_array_equal(influence, want[1])
    assert study.scores("val", "balanced_accuracy") is study.scores("val", "balanced_accuracy")


def test_class_f1_equals_sklearn_per_run():
    study = outputs(RUNS)
    for name in ("val", "test"):
        s = study.split(name)
        f1, support = study.class_f1(name)
        assert f1.shape == (len(RUNS), C)
        want = [f1_score(s.labels, p, average=None, labels=range(C), zero_division=0) for p in s.preds]
        np.testing.assert_allclose(f1, want, atol=1e-12)
        np.testing.assert_array_equal(support, np.bincount(s.labels, minlength=C))


def test_zeroed_marks_a_present_class_a_run_never_got_right():
    labels = np.array([0, 0, 1, 1, 0])  # class 2 absent from this split
    preds = np.array(
        [
            [0, 0, 1, 1, 0],  # perfect (class 2: F1 0, but absent)
            [0, 0, 0, 0, 0],  # class 1 never found
            [1, 1, 0, 0, 2],  # nothing right: classes 0 and 1 at F1 0
        ]
    )
    runs = [(BASELINE, 0), (BASELINE, 1), (BASELINE, 2)]
    study = StudyOutputs(runs, SplitOutputs(labels, preds), SplitOutputs(labels, preds), C, 2)
    np.testing.assert_array_equal(
        study.zeroed("test"), [[False, False, False], [False, True, False], [True, True, False]]
    )
    assert study.class_f1("test")[0][0, 2] == 0  # absent class: F1 0, yet not zeroed


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_probs_are_the_float64_softmax_of_the_logits(dtype):
    rng = np.random.default_rng(3)
    logits = (rng.normal(size=(2, 4, C)) * 5).astype(dtype)
    logits[0, 0] = [1000, 999, -1000] if dtype != np.float16 else [60000, 59990, -60000]  # no overflow
    s = SplitOutputs(np.zeros(4, int), np.zeros((2, 4), int), logits)
    assert s.logits.dtype == dtype  # stored as given
    assert s.probs.dtype == np.float64 and np.isfinite(s.probs).all()
    np.testing.assert_allclose(
        s.probs, scipy_softmax(logits.astype(np.float64), axis=-1), rtol=1e-12, atol=1e-300
    )
    np.testing.assert_allclose(s.probs.sum(-1), 1.0, rtol=1e-12)
    assert s.probs is s.probs  # computed once
    assert SplitOutputs(np.zeros(4, int), np.zeros((2, 4), int)).probs is None


def test_simplicity_puts_the_baseline_first_then_the_fewest_extra_parts():
    configs = [
        ("oversample", "ce+mcc"),  # 2: a sampler and a term
        ("uniform", "f1+mcc"),  # 2 terms
        ("uniform", "nope"),  # not a loss name: last
        ("uniform", "ce+f1"),  # 1 term
        ("oversample", "ce"),  # 1: the sampler
        ("uniform", "ce+0*f1"),  # a term of weight 0 adds nothing
        BASELINE,
    ]
    assert [extra_parts(c, BASELINE) for c in configs] == [2, 2, 99, 1, 1, 0, 0]
    assert sorted(configs, key=lambda c: simplicity(c, BASELINE)) == [
        BASELINE,
        ("uniform", "ce+0*f1"),
        ("uniform", "ce+f1"),
        ("oversample", "ce"),
        ("oversample", "ce+mcc"),
        ("uniform", "f1+mcc"),
        ("uniform", "nope"),
    ]
    # against another baseline, its own parts are free
    assert extra_parts(("oversample", "ce+mcc"), ("oversample", "ce")) == 1


def test_test_predictions_come_from_the_fold_validation_from_the_one_before():
    ids = np.array([[0, 1, 2, 3, 0, 1], [2, 2, 0, 1, 3, 0]])
    folds = Folds(ids, 4)
    assert folds.repeats == 2
    assert np.array_equal(folds.owner("test"), ids)
    assert np.array_equal(folds.owner("val"), (ids - 1) % 4)


@pytest.mark.parametrize("k", [3, 5, 10])
def test_a_choice_reads_k_minus_2_slots_of_its_own_repeat(k):
    folds = Folds(np.tile(np.arange(k), (3, 2)), k)
    for j in range(k):
        mask = folds.choice_slots(1, j)
        assert mask.sum() == k - 2 and mask[1].sum() == k - 2 and not mask[[0, 2]].any()
        assert not mask[1, j] and not mask[1, (j - 1) % k]


@pytest.mark.parametrize("ids", [np.array([0, 1]), np.zeros((1, 0), dtype=int), np.array([[0, 3]])])
def test_bad_fold_ids_are_refused(ids):
    with pytest.raises(
        ValueError, match=r"fold ids must have shape \(repeats, images\) with values in \[0, 3\)"
    ):
        Folds(ids, 3)
