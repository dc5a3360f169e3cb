import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    roc_auc_score,
)

from imbal.evaluator import Evaluator
from imbal.metrics import (
    ECE_BINS,
    brier_score,
    calibration_bins,
    confusion_scores,
    expected_calibration_error,
    metrics_from_confusion,
)


@pytest.mark.parametrize("c", [2, 3, 5])
@pytest.mark.parametrize("seed", range(3))
def test_against_sklearn(c, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (200,), generator=g)
    logits = torch.randn(200, c, generator=g) + 1.5 * torch.nn.functional.one_hot(y, c)
    ev = Evaluator(c)
    for chunk in range(0, 200, 37):  # uneven batches: ratios must come from the summed matrix
        ev.update(logits[chunk : chunk + 37], y[chunk : chunk + 37])
    m = ev.compute()
    yt, pred = y.numpy(), logits.argmax(1).numpy()
    probs = logits.softmax(-1).numpy()
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(yt, pred))
    assert m["accuracy"] == pytest.approx(accuracy_score(yt, pred))
    assert m["macro_f1"] == pytest.approx(
        f1_score(yt, pred, average="macro", labels=list(range(c)), zero_division=0)
    )
    assert m["mcc"] == pytest.approx(matthews_corrcoef(yt, pred))
    assert m["f1_per_class"] == pytest.approx(list(f1_score(yt, pred, average=None, labels=list(range(c)))))
    ref_auc = roc_auc_score(yt, probs[:, 1]) if c == 2 else roc_auc_score(yt, probs, multi_class="ovr")
    assert m["auroc"] == pytest.approx(ref_auc, abs=1e-5)
    assert np.array_equal(np.array(m["confusion_matrix"]), confusion_matrix(yt, pred, labels=list(range(c))))


def test_degenerate_single_class():
    m = metrics_from_confusion(torch.tensor([[5, 0], [0, 0]]))
    assert m["mcc"] == 0.0 and m["balanced_accuracy"] == 1.0
    ev = Evaluator(3)
    ev.update(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))
    assert math.isnan(ev.compute()["auroc"])


def test_bad_confusion_shape():
    with pytest.raises(ValueError, match=r"must be square \(\.\.\., C, C\), got shape=\(2, 3\)"):
        metrics_from_confusion(torch.zeros(2, 3))


def test_batched_scores_equal_one_by_one():
    g = torch.Generator().manual_seed(0)
    cms = torch.randint(0, 20, (16, 4, 4), generator=g)
    cms[3, 2] = 0  # a class absent from the targets
    cms[5] = 0
    cms[5, 1, 1] = 7  # one class only: MCC := 0
    batched = confusion_scores(cms)
    for i, cm in enumerate(cms):
        one = metrics_from_confusion(cm)
        for key in ("balanced_accuracy", "accuracy", "macro_f1", "mcc"):
            assert float(batched[key][i]) == pytest.approx(one[key])
        assert batched["f1_per_class"][i].tolist() == pytest.approx(one["f1_per_class"])


# calibration and ordinal metrics (docs/method.md, "Calibration", "Ordinal grades")

HAND_PROBS = torch.tensor([[0.9, 0.1], [0.85, 0.15], [0.3, 0.7], [0.55, 0.45]], dtype=torch.float64)
HAND_LABELS = torch.tensor([0, 1, 1, 0])  # correct, wrong (confidence 0.85), correct, correct


@pytest.mark.parametrize(
    ("n_bins", "expected"),
    [
        # 15 bins: every confidence alone in its bin -> (0.1 + 0.85 + 0.3 + 0.45) / 4
        (15, 0.425),
        # 5 bins (0.8, 1] holds 0.9 and 0.85: accuracy 0.5 vs confidence 0.875 -> 2/4 * 0.375; then 0.7 and 0.55
        (5, 2 / 4 * 0.375 + 0.3 / 4 + 0.45 / 4),
        # 2 bins: all in (0.5, 1], accuracy 3/4 = mean confidence 0.75 -> perfectly calibrated on average
        (2, 0.0),
    ],
)
def test_ece_by_hand(n_bins, expected):
    assert expected_calibration_error(HAND_PROBS, HAND_LABELS, n_bins) == pytest.approx(expected, abs=1e-12)


def test_brier_by_hand():
    # (0.01 + 0.01) + (0.7225 + 0.7225) + (0.09 + 0.09) + (0.2025 + 0.2025), over 4 samples
    assert brier_score(HAND_PROBS, HAND_LABELS) == pytest.approx(2.05 / 4, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_evaluator_calibration_equals_the_functions_and_torchmetrics(seed):
    from torchmetrics.functional.classification import multiclass_calibration_error

    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (500,), generator=g)
    logits = 3 * torch.randn(500, 4, generator=g) + 2 * torch.nn.functional.one_hot(y, 4)
    ev = Evaluator(4)
    for chunk in range(0, 500, 77):  # uneven batches: bins are sums, never averages of batch ECEs
        ev.update(logits[chunk : chunk + 77], y[chunk : chunk + 77])
    m = ev.compute()
    probs = logits.softmax(-1)
    assert m["ece"] == pytest.approx(expected_calibration_error(probs, y, ECE_BINS), abs=1e-12)
    ref = multiclass_calibration_error(probs, y, 4, n_bins=ECE_BINS, norm="l1")
    assert m["ece"] == pytest.approx(float(ref), abs=1e-5)
    onehot = torch.nn.functional.one_hot(y, 4).double()
    assert m["brier"] == pytest.approx(float(((probs.double() - onehot) ** 2).sum(1).mean()), abs=1e-12)
    assert "qwk" not in m  # nominal classes: no kappa


@pytest.mark.parametrize("c", [2, 3, 5])
@pytest.mark.parametrize("seed", range(3))
def test_qwk_against_sklearn(c, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (300,), generator=g)
    logits = torch.randn(300, c, generator=g) + 1.2 * torch.nn.functional.one_hot(y, c)
    ev = Evaluator(c, ordinal=True)
    ev.update(logits[:101], y[:101])
    ev.update(logits[101:], y[101:])
    ref = cohen_kappa_score(y.numpy(), logits.argmax(1).numpy(), weights="quadratic")
    assert ev.compute()["qwk"] == pytest.approx(ref, abs=1e-12)


def test_qwk_batched_and_undefined_like_sklearn():
    g = torch.Generator().manual_seed(0)
    cms = torch.randint(0, 9, (6, 5, 5), generator=g)
    cms[2] = 0
    cms[2, 3, 3] = 4  # labels and predictions one class: sum(W E) = 0, undefined
    batched = confusion_scores(cms)["qwk"]
    for i, cm in enumerate(cms):
        y = np.repeat(np.repeat(np.arange(5), 5), cm.flatten().numpy())
        p = np.repeat(np.tile(np.arange(5), 5), cm.flatten().numpy())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns when the kappa is undefined
            ref = cohen_kappa_score(y, p, weights="quadratic", labels=list(range(5)))
        if math.isnan(ref):
            assert math.isnan(float(batched[i])) and i == 2
        else:
            assert float(batched[i]) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize(
    ("probs", "labels", "message"),
    [
        (
            torch.rand(4),
            torch.zeros(4, dtype=torch.long),
            r"probs must be floating point of shape \(N, C\), got \(4,\)",
        ),
        (
            torch.rand(4, 3),
            torch.zeros(3, dtype=torch.long),
            r"labels must be integer class indices of shape \(4,\), got \(3,\)",
        ),
        (
            torch.rand(4, 3),
            torch.zeros(4),
            r"labels must be integer class indices of shape \(4,\), got \(4,\)",
        ),
    ],
)
def test_calibration_inputs_are_checked(probs, labels, message):
    with pytest.raises(ValueError, match=message):
        calibration_bins(probs, labels)
    with pytest.raises(ValueError, match=message):
        brier_score(probs, labels)
    with pytest.raises(ValueError, match=r"n_bins must be an integer >= 1, got 0"):
        calibration_bins(torch.rand(4, 3), torch.zeros(4, dtype=torch.long), 0)
