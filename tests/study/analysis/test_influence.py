"""Each image's influence on a run's score (analysis/influence.py) against the score's actual change.

A confusion metric's influence value is its derivative in the image's weight: it must match the
change of the metric (scikit-learn's, computed independently) when the image is reweighted
(finite differences) or left out (to first order), and be exact for balanced accuracy and accuracy
when the images of each class are resampled. AUROC's values are the placement values.
"""

import numpy as np
import pytest
from sklearn import metrics as skm

from imbal.study.analysis.influence import auroc_influence, confusion_influence, scores_and_influence

C, MINORITY = 3, 2


def _f1(y, p, sample_weight=None):
    return skm.f1_score(y, p, average="macro", labels=range(C), zero_division=0, sample_weight=sample_weight)


def _minority_f1(y, p, sample_weight=None):
    f1 = skm.f1_score(y, p, average=None, labels=range(C), zero_division=0, sample_weight=sample_weight)
    return f1[MINORITY]


def _qwk(y, p, sample_weight=None):
    return skm.cohen_kappa_score(y, p, weights="quadratic", sample_weight=sample_weight)


# the metric of each confusion name, as scikit-learn computes it (with image weights)
SKLEARN = {
    "balanced_accuracy": skm.balanced_accuracy_score,
    "accuracy": skm.accuracy_score,
    "macro_f1": _f1,
    "mcc": skm.matthews_corrcoef,
    "minority_f1": _minority_f1,
    "qwk": _qwk,
}


def runs(n=240, r=2, seed=0):
    """Labels of ``n`` images in three unequal classes and ``r`` runs' predictions, right 60% of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(C, n, p=[0.6, 0.3, 0.1])
    preds = np.where(rng.random((r, n)) < 0.6, labels, rng.integers(0, C, (r, n)))
    return labels, preds


@pytest.mark.parametrize("metric", list(SKLEARN))
def test_scores_equal_sklearns(metric):
    labels, preds = runs()
    scores, influence = confusion_influence(metric, labels, preds, C, MINORITY)
    assert scores.shape == (2,) and influence.shape == preds.shape
    expected = [SKLEARN[metric](labels, p) for p in preds]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("metric", list(SKLEARN))
def test_influence_is_the_derivative_in_an_images_weight(metric):
    labels, preds = runs()
    _, influence = confusion_influence(metric, labels, preds, C, MINORITY)
    f, eps = SKLEARN[metric], 1e-5
    # a few images of every class and every (true, predicted) cell, in both runs
    for run, p in enumerate(preds):
        for i in range(0, len(labels), 8):
            w = np.ones(len(labels))
            w[i] = 1 + eps
            up = f(labels, p, sample_weight=w)
            w[i] = 1 - eps
            down = f(labels, p, sample_weight=w)
            assert (up - down) / (2 * eps) == pytest.approx(influence[run, i], abs=1e-7), (run, i)


@pytest.mark.parametrize("metric", list(SKLEARN))
def test_leaving_an_image_out_changes_the_score_by_minus_its_influence(metric):
    labels, preds = runs()
    scores, influence = confusion_influence(metric, labels, preds, C, MINORITY)
    f = SKLEARN[metric]
    for run, p in enumerate(preds):
        left_out = np.array(
            [f(np.delete(labels, i), np.delete(p, i)) - scores[run] for i in range(0, len(labels), 3)]
        )
        g = influence[run, ::3]
        # first order: the rest is O(1/n_class) of the value (about 1/24 for the rarest class)
        np.testing.assert_allclose(left_out, -g, rtol=0, atol=0.06 * np.abs(g).max())


def class_bootstraps(labels, count=5, seed=5):
    """Image weights of ``count`` bootstraps of each class: class sizes fixed."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        w = np.zeros(len(labels))
        for k in range(C):
            members = np.flatnonzero(labels == k)
            np.add.at(w, rng.choice(members, len(members)), 1.0)
        yield w


@pytest.mark.parametrize("metric", ["balanced_accuracy", "accuracy"])
def test_linear_metrics_are_exact_when_each_class_is_resampled(metric):
    labels, preds = runs()
    scores, influence = confusion_influence(metric, labels, preds, C, MINORITY)
    for w in class_bootstraps(labels):
        for run, p in enumerate(preds):
            change = SKLEARN[metric](labels, p, sample_weight=w) - scores[run]
            assert change == pytest.approx(((w - 1) * influence[run]).sum(), abs=1e-12)


@pytest.mark.parametrize("metric", ["macro_f1", "mcc"])
def test_other_metrics_are_first_order_only(metric):
    """The exactness above is a property of the linear metrics: the same check tells the others apart."""
    labels, preds = runs()
    scores, influence = confusion_influence(metric, labels, preds, C, MINORITY)
    gaps = [
        abs(SKLEARN[metric](labels, preds[0], sample_weight=w) - scores[0] - ((w - 1) * influence[0]).sum())
        for w in class_bootstraps(labels)
    ]
    assert max(gaps) > 1e-6


def test_auroc_placement_values_by_hand():
    labels = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.stack([1 - p1, p1], -1)[None]
    scores, influence = auroc_influence(labels, probs)
    assert scores == pytest.approx([0.75]) and scores[0] == pytest.approx(skm.roc_auc_score(labels, p1))
    # each image: its share of the other class on its wrong side, over its class size, averaged over classes
    np.testing.assert_allclose(influence, [[0.5, 0.25, 0.25, 0.5]])
    # a tie counts one half
    tie = np.array([[[0.5, 0.5], [0.5, 0.5]]])
    scores, influence = auroc_influence(np.array([0, 1]), tie)
    assert scores == pytest.approx([0.5]) and influence == pytest.approx(np.array([[0.5, 0.5]]))


def test_auroc_equals_sklearn_and_its_values_are_the_hajek_projection():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2, 3], [30, 15, 10, 5])
    logits = rng.normal(size=(2, len(labels), 4)) + 1.5 * np.eye(4)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    probs[:, 45:48] = probs[:, 0:3]  # ties between classes count one half
    scores, influence = auroc_influence(labels, probs)
    for run in range(2):
        assert scores[run] == pytest.approx(
            skm.roc_auc_score(labels, probs[run], multi_class="ovr", average="macro"), abs=1e-12
        )
    # a class's placement values average to its AUC over its positives and over its negatives
    np.testing.assert_allclose(influence.sum(1), 2 * scores, atol=1e-12)
    # moving one image's weight onto another of its class changes the AUC by exactly the difference
    # of their values (the AUC is bilinear in positives x negatives; a move within a class has no square)
    for i, j in [(0, 7), (31, 44), (45, 54), (55, 59)]:
        assert labels[i] == labels[j]
        moved = np.r_[np.delete(np.arange(len(labels)), j), i]
        after, _ = auroc_influence(labels[moved], probs[:, moved])
        np.testing.assert_allclose(after - scores, influence[:, i] - influence[:, j], atol=1e-12)


def test_auroc_without_two_classes_is_nan_with_no_influence():
    scores, influence = auroc_influence(np.zeros(3, dtype=int), np.full((2, 3, 2), 0.5))
    assert np.isnan(scores).all() and (influence == 0).all()


def test_a_class_never_seen_has_no_nan_influence():
    labels = np.array([0, 0, 1, 1, 0])
    preds = np.array([[0, 2, 1, 0, 0]])  # class 2 predicted once, never true
    for metric in ("balanced_accuracy", "macro_f1", "mcc"):
        _, influence = confusion_influence(metric, labels, preds, 3)
        assert np.isfinite(influence).all(), metric
    scores, influence = confusion_influence("balanced_accuracy", labels, preds, 3)
    assert scores == pytest.approx([(2 / 3 + 1 / 2) / 2])  # averaged over the classes present


def test_scores_and_influence_dispatches_by_metric():
    labels, preds = runs(n=30)
    probs = np.full((2, 30, C), 1 / C)
    for metric in ("balanced_accuracy", "mcc"):
        got = scores_and_influence(metric, labels, preds, C, probs=probs)
        want = confusion_influence(metric, labels, preds, C)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    scores, _ = scores_and_influence("auroc", labels, preds, C, probs=probs)
    assert scores == pytest.approx([0.5, 0.5])  # equal scores everywhere: chance


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: confusion_influence("mcc", np.array([0, 1, 2]), np.array([0, 1, 2]), 3),
            r"preds must have shape \(runs, 3\), got \(3,\)",
        ),
        (
            lambda: confusion_influence("mcc", np.array([0, 1, 2]), np.zeros((2, 4), int), 3),
            r"preds must have shape \(runs, 3\), got \(2, 4\)",
        ),
        (
            lambda: confusion_influence("mcc", np.array([0, 1, 3]), np.zeros((1, 3), int), 3),
            r"labels must lie in \[0, 3\), got 0..3",
        ),
        (
            lambda: confusion_influence("mcc", np.array([0, 1, 2]), np.array([[0, -1, 2]]), 3),
            r"preds must lie in \[0, 3\), got -1..2",
        ),
        (
            lambda: auroc_influence(np.array([0, 1]), np.zeros((2, 2))),
            r"probs must have shape \(runs, 2, classes\), got \(2, 2\)",
        ),
        (
            lambda: auroc_influence(np.array([0, 1]), np.zeros((1, 3, 2))),
            r"probs must have shape \(runs, 2, classes\), got \(1, 3, 2\)",
        ),
        (
            lambda: scores_and_influence("nope", np.array([0]), np.zeros((1, 1), int), 2),
            r"metric must be one of \['balanced_accuracy', .*\], got 'nope'",
        ),
        (
            lambda: scores_and_influence("auroc", np.array([0]), np.zeros((1, 1), int), 2),
            r"auroc needs the runs' class probabilities \(probs\), got None",
        ),
        (
            lambda: scores_and_influence("ece", np.array([0]), np.zeros((1, 1), int), 2),
            r"no image-level influence is defined for the metric 'ece'",
        ),
        (
            lambda: confusion_influence(
                "minority_f1", np.array([0, 1]), np.zeros((1, 2), int), 2, minority=5
            ),
            r"minority must be a class index in \[0, 2\), got 5",
        ),
    ],
)
def test_bad_inputs_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
