import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    roc_auc_score,
)

from imbal.metrics import Evaluator, confusion_scores, metrics_from_confusion


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
