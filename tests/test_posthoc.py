import math

import numpy as np
import pytest
import torch

from imbal.metrics import metrics_from_confusion
from imbal.posthoc import DEFAULT_TAUS, adjust_logits, fit_tau, posthoc_scores

PRIOR = torch.tensor([0.6, 0.25, 0.1, 0.05], dtype=torch.float64)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int64)


def _prior_shift_logits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bayes logits log p_train(c) + log N(x; mu_c, I) of Gaussian classes drawn with the training prior.

    The model has learned the imbalanced prior, so subtracting log p (tau = 1) gives the rule that is
    best for balanced accuracy.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.multinomial(PRIOR, n, replacement=True, generator=g)
    angle = torch.arange(4, dtype=torch.float64) * math.pi / 2
    mu = 1.5 * torch.stack([angle.cos(), angle.sin()], 1)
    x = mu[y] + torch.randn(n, 2, generator=g, dtype=torch.float64)
    logits = PRIOR.log() - 0.5 * ((x[:, None, :] - mu[None]) ** 2).sum(-1)
    return logits.float(), y


def _confusion(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    c = logits.shape[1]
    return torch.bincount(y * c + logits.argmax(-1), minlength=c * c).reshape(c, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tau_zero_changes_nothing_bit_for_bit(dtype):
    logits = torch.tensor([[-0.0, 1.5, -2.25], [0.0, -0.0, 3.0], [float("nan"), 1.0, -1.0]], dtype=dtype)
    out = adjust_logits(logits, [0.7, 0.2, 0.1], 0.0)
    assert out.dtype == dtype and torch.equal(_bits(out), _bits(logits))
    assert out.data_ptr() != logits.data_ptr()  # a copy: editing it leaves the caller's logits alone


def test_adjust_then_argmax_by_hand():
    logits = torch.tensor([[2.0, 1.0, 0.5], [0.2, 0.0, -1.0]], dtype=torch.float64)
    counts = [8, 1, 1]  # priors 0.8, 0.1, 0.1 after normalising
    out = adjust_logits(logits, counts, 1.0)
    # row 0: 2 - log 0.8, 1 - log 0.1, 0.5 - log 0.1 = 2.223, 3.303, 2.803
    expected = logits - torch.tensor([math.log(0.8), math.log(0.1), math.log(0.1)], dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)
    assert out.argmax(-1).tolist() == [1, 1]
    # tau 0.5: row 0 = 2.112, 2.151, 1.651 -> class 1; tau 0.4: 2.089, 1.921, 1.421 -> class 0 stays
    assert adjust_logits(logits, counts, 0.5).argmax(-1).tolist() == [1, 1]
    assert adjust_logits(logits, counts, 0.4).argmax(-1).tolist() == [0, 1]
    # counts, normalised priors, numpy and float32 agree
    f32 = adjust_logits(logits.float(), np.array([0.8, 0.1, 0.1]), 1.0)
    assert f32.dtype == torch.float32
    torch.testing.assert_close(f32, expected.float())
    torch.testing.assert_close(adjust_logits(logits, torch.tensor([0.8, 0.1, 0.1]), 1.0), expected)


def test_fit_tau_curve_equals_adjust_then_score_one_tau_at_a_time():
    logits, y = _prior_shift_logits(3000, seed=1)
    taus = torch.tensor([0.0, 0.3, 0.7, 1.0, 1.6, 2.5], dtype=torch.float64)
    for metric in ("balanced_accuracy", "macro_f1", "mcc", "minority_f1"):
        fit = fit_tau(logits, y, PRIOR, metric, taus)
        ref = [
            metrics_from_confusion(_confusion(adjust_logits(logits, PRIOR, float(t)), y), minority=3)[metric]
            for t in taus
        ]
        np.testing.assert_allclose(fit.scores.numpy(), ref, rtol=0, atol=1e-15)
        assert fit.score == max(ref) and fit.n == 3000 and fit.metric == metric


def test_skewed_problem_fits_a_positive_tau_and_test_balanced_accuracy_rises():
    val_logits, val_y = _prior_shift_logits(20000, seed=2)
    test_logits, test_y = _prior_shift_logits(20000, seed=3)
    fit = fit_tau(val_logits, val_y, PRIOR)
    assert torch.equal(fit.taus, DEFAULT_TAUS) and len(fit.taus) == 31
    assert 0.6 <= fit.tau <= 1.5  # the Bayes logits' answer is tau = 1
    out = posthoc_scores(val_logits, val_y, test_logits, test_y, PRIOR)
    assert out["tau"] == fit.tau and out["n_validation"] == 20000 and out["n_test"] == 20000
    plain = metrics_from_confusion(_confusion(test_logits, test_y), minority=3)
    assert out["test"] == plain
    gain = out["test_adjusted"]["balanced_accuracy"] - plain["balanced_accuracy"]
    assert gain > 0.05
    # the rarest class is found more often (its F1 need not rise: its precision falls)
    assert out["test_adjusted"]["recall_per_class"][3] > plain["recall_per_class"][3] + 0.1
    assert out["validation_curve"]["taus"][0] == 0.0 and len(out["validation_curve"]["scores"]) == 31


def test_skewed_problem_with_a_trained_classifier():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    sizes = [3000, 600, 150, 50]
    mu = np.array([[0.0, 0.0], [1.5, 0.0], [0.0, 1.5], [1.5, 1.5]])

    def draw(counts):
        y = np.repeat(np.arange(4), counts)
        return mu[y] + rng.normal(size=(len(y), 2)), y

    x_train, y_train = draw(sizes)
    model = LogisticRegression().fit(x_train, y_train)
    (xv, yv), (xt, yt) = draw(sizes), draw(sizes)
    to_t = lambda x: torch.from_numpy(model.decision_function(x))  # noqa: E731
    out = posthoc_scores(to_t(xv), torch.from_numpy(yv), to_t(xt), torch.from_numpy(yt), sizes)
    assert out["tau"] > 0
    assert out["test_adjusted"]["balanced_accuracy"] > out["test"]["balanced_accuracy"]


def test_fit_tau_keeps_zero_when_nothing_helps():
    # balanced priors: every tau shifts all classes equally, every score ties, 0 wins the tie
    logits, y = _prior_shift_logits(500, seed=4)
    fit = fit_tau(logits, y, [1, 1, 1, 1])
    assert fit.tau == 0.0 and torch.all(fit.scores == fit.scores[0])
    # the majority is right by a small margin: any tau >= 0.1 moves it to the rare class and hurts
    logits = torch.tensor([[0.1, 0.0]] * 9 + [[0.0, 5.0]])
    y = torch.tensor([0] * 9 + [1])
    fit = fit_tau(logits, y, [0.9, 0.1])
    assert fit.tau == 0.0 and fit.score == 1.0 and fit.scores[1:].max() < 1.0
    # a grid without 0, given in any order: the smallest |tau| among ties, the positive one first
    fit = fit_tau(logits, y, [0.5, 0.5], taus=[2.0, -0.5, 0.5])
    assert fit.tau == 0.5
    assert fit_tau(logits, y, [0.5, 0.5], taus=[2.0, 0.0, -0.5]).tau == 0.0


def test_validation_errors():
    logits = torch.zeros(3, 2)
    y = torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\), got \(3,\)"):
        adjust_logits(torch.zeros(3), [1, 1, 1], 1.0)
    with pytest.raises(ValueError, match=r"class_priors must have shape \(2,\), got \(3,\)"):
        adjust_logits(logits, [1, 1, 1], 1.0)
    with pytest.raises(ValueError, match=r"finite and > 0 \(log of a zero prior\), got \[0.5, 0.0\]"):
        adjust_logits(logits, [0.5, 0.0], 1.0)
    with pytest.raises(ValueError, match=r"finite and > 0 .*got \[-1.0, 2.0\]"):
        adjust_logits(logits, [-1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="logits must be floating point, got torch.int64"):
        adjust_logits(torch.zeros(3, 2, dtype=torch.long), [1, 1], 1.0)
    with pytest.raises(ValueError, match="logits must be a torch.Tensor, got ndarray"):
        adjust_logits(np.zeros((3, 2)), [1, 1], 1.0)
    with pytest.raises(ValueError, match="tau must be finite, got inf"):
        adjust_logits(logits, [1, 1], math.inf)
    with pytest.raises(ValueError, match=r"val_labels must lie in \[0, 2\), got min=0, max=2"):
        fit_tau(logits, torch.tensor([0, 1, 2]), [1, 1])
    with pytest.raises(
        ValueError, match=r"integer class indices of shape \(3,\), got torch.float32 of shape \(3,\)"
    ):
        fit_tau(logits, torch.tensor([0.0, 1.0, 1.0]), [1, 1])
    with pytest.raises(
        ValueError, match=r"integer class indices of shape \(3,\), got torch.int64 of shape \(2,\)"
    ):
        fit_tau(logits, torch.tensor([0, 1]), [1, 1])
    with pytest.raises(ValueError, match="metric must be one of .*got 'auroc'"):
        fit_tau(logits, y, [1, 1], metric="auroc")
    with pytest.raises(ValueError, match=r"non-empty 1-D grid of finite values, got \[\]"):
        fit_tau(logits, y, [1, 1], taus=[])
    with pytest.raises(ValueError, match=r"finite values, got \[0.0, nan\]"):
        fit_tau(logits, y, [1, 1], taus=[0.0, math.nan])
    with pytest.raises(ValueError, match="val_logits must hold >= 1 sample to fit tau, got 0"):
        fit_tau(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), [1, 1])
    with pytest.raises(ValueError, match="test_logits must have the validation's 2 classes, got 3"):
        posthoc_scores(logits, y, torch.zeros(3, 3), y, [1, 1])
