"""Losses against references: sklearn on hard predictions, F.cross_entropy, gradcheck."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, matthews_corrcoef

from imbal.losses import (
    LossSettings,
    build_loss,
    focal_loss,
    inverse_frequency_weights,
    logit_adjusted_ce,
    soft_confusion,
    soft_f1_loss,
    soft_mcc_loss,
)


def hard_logits(pred: torch.Tensor, c: int) -> torch.Tensor:
    # softmax of +-60 is one-hot to float64 precision
    return F.one_hot(pred, c).double() * 120.0 - 60.0


@pytest.mark.parametrize("c", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("seed", range(4))
def test_hard_mcc_matches_sklearn(c, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (40,), generator=g)
    pred = torch.where(torch.rand(40, generator=g) < 0.6, y, torch.randint(0, c, (40,), generator=g))
    ours = 1 - soft_mcc_loss(hard_logits(pred, c), y).item()
    assert ours == pytest.approx(matthews_corrcoef(y.numpy(), pred.numpy()), abs=1e-6)


@pytest.mark.parametrize("c", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("seed", range(4))
def test_hard_f1_matches_sklearn(c, seed):
    g = torch.Generator().manual_seed(100 + seed)
    y = torch.randint(0, c, (40,), generator=g)
    pred = torch.where(torch.rand(40, generator=g) < 0.5, y, torch.randint(0, c, (40,), generator=g))
    ours = 1 - soft_f1_loss(hard_logits(pred, c), y).item()
    ref = f1_score(y.numpy(), pred.numpy(), average="macro", labels=list(range(c)), zero_division=0)
    assert ours == pytest.approx(ref, abs=1e-5)


def test_positive_f1_matches_sklearn_binary():
    g = torch.Generator().manual_seed(7)
    y = torch.randint(0, 2, (50,), generator=g)
    pred = torch.where(torch.rand(50, generator=g) < 0.7, y, 1 - y)
    ours = 1 - soft_f1_loss(hard_logits(pred, 2), y, average="positive").item()
    assert ours == pytest.approx(f1_score(y.numpy(), pred.numpy()), abs=1e-5)


def test_binary_mcc_equals_two_class_formula():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(30, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (30,), generator=g)
    tp, fp, fn, tn = (v[1] for v in soft_confusion(logits, y))
    binary = (tp * tn - fp * fn) / torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert (1 - soft_mcc_loss(logits, y)).item() == pytest.approx(binary.item(), abs=1e-10)


def test_soft_confusion_sums():
    logits = torch.randn(12, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (12,))
    tp, fp, fn, tn = soft_confusion(logits, y)
    assert torch.allclose(tp + fp + fn + tn, torch.full((4,), 12.0, dtype=torch.float64))
    assert torch.allclose(tp + fn, torch.bincount(y, minlength=4).double())
    assert torch.allclose(tp + fp, logits.softmax(-1).sum(0))


def test_ce_equals_cross_entropy():
    logits, y = torch.randn(16, 5), torch.randint(0, 5, (16,))
    assert torch.allclose(build_loss("ce")(logits, y), F.cross_entropy(logits, y))


def test_ce_plus_zero_metric_equals_cross_entropy():
    logits, y = torch.randn(16, 5), torch.randint(0, 5, (16,))
    assert torch.allclose(build_loss("ce+0*mcc")(logits, y), F.cross_entropy(logits, y))
    assert torch.allclose(build_loss("ce+0.0*f1")(logits, y), F.cross_entropy(logits, y))


def test_focal_gamma0_equals_ce():
    logits, y = torch.randn(16, 3), torch.randint(0, 3, (16,))
    assert torch.allclose(focal_loss(logits, y, gamma=0.0), F.cross_entropy(logits, y), atol=1e-6)


def test_focal_down_weights_easy_samples():
    logits = torch.tensor([[5.0, 0.0], [0.2, 0.0]])
    y = torch.tensor([0, 0])
    ce = F.cross_entropy(logits, y, reduction="none")
    fl = focal_loss(logits, y, gamma=2.0, reduction="none")
    assert (fl < ce).all() and fl[0] / ce[0] < fl[1] / ce[1]


def test_focal_alpha_weights_per_class():
    logits, y = torch.randn(10, 3), torch.randint(0, 3, (10,))
    alpha = torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(
        focal_loss(logits, y, gamma=0.0, alpha=alpha, reduction="none"),
        F.cross_entropy(logits, y, reduction="none") * alpha[y],
        atol=1e-6,
    )


def test_logit_adjusted_ce_reference():
    logits, y = torch.randn(10, 3), torch.randint(0, 3, (10,))
    priors = torch.tensor([0.7, 0.2, 0.1])
    ref = F.cross_entropy(logits + 0.5 * priors.log(), y)
    assert torch.allclose(logit_adjusted_ce(logits, y, priors * 10, tau=0.5), ref, atol=1e-6)
    assert torch.allclose(
        build_loss("la-ce", LossSettings(class_counts=[70, 20, 10]))(logits, y),
        F.cross_entropy(logits + priors.log(), y),
        atol=1e-6,
    )


def test_inverse_frequency_weights():
    w = inverse_frequency_weights([486, 128, 206, 194, 66])
    n = 486 + 128 + 206 + 194 + 66
    assert torch.allclose(w, torch.tensor([n / (5 * k) for k in [486, 128, 206, 194, 66]]))
    # the expected weight of a training sample is one
    counts = torch.tensor([486, 128, 206, 194, 66.0])
    assert (w * counts).sum() / counts.sum() == pytest.approx(1.0)
    assert torch.allclose(inverse_frequency_weights([5, 5]), torch.ones(2))


def test_weighted_combination_rule():
    logits, y = torch.randn(20, 3), torch.randint(0, 3, (20,))
    w = torch.tensor([0.5, 1.0, 4.0])
    loss = build_loss("ce+mcc", class_weights=w)(logits, y)
    per = F.cross_entropy(logits, y, reduction="none")
    ref = (per * w[y]).mean() + w[y].mean() * soft_mcc_loss(logits, y)
    assert torch.allclose(loss, ref, atol=1e-6)


def test_coefficients_and_sums():
    logits, y = torch.randn(20, 4), torch.randint(0, 4, (20,))
    got = build_loss("ce+0.5*mcc+2*f1")(logits, y)
    ref = F.cross_entropy(logits, y) + 0.5 * soft_mcc_loss(logits, y) + 2 * soft_f1_loss(logits, y)
    assert torch.allclose(got, ref, atol=1e-6)


LOSSES = {
    "mcc": lambda x, t: soft_mcc_loss(x, t),
    "f1": lambda x, t: soft_f1_loss(x, t),
    "f1-positive": lambda x, t: soft_f1_loss(x[:, :2], t.clamp(max=1), average="positive"),
    "focal": lambda x, t: focal_loss(x, t),
    "la-ce": lambda x, t: logit_adjusted_ce(x, t, torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)),
    "ce+mcc": lambda x, t: build_loss("ce+mcc")(x, t),
    "ce+f1+weights": lambda x, t: build_loss("ce+f1", class_weights=[1.0, 2.0, 3.0])(x, t),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck_float64(name):
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(9, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1])
    assert torch.autograd.gradcheck(lambda x: LOSSES[name](x, y), (logits,), eps=1e-6, atol=1e-5)


def test_loss_decreases_when_fitting():
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = (x[:, 0] > 0.8).long() + (x[:, 1] > 0.8).long()
    for name in ["mcc", "f1", "ce+mcc", "focal"]:
        model = torch.nn.Linear(8, 3)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        loss_fn = build_loss(name)
        first = loss_fn(model(x), y).item()
        for _ in range(100):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        assert loss.item() < first * 0.8, name


def test_sync_without_process_group_is_the_plain_batch_loss():
    # sync=True without a process group is the plain batch loss
    logits, y = torch.randn(10, 3), torch.randint(0, 3, (10,))
    assert torch.equal(soft_mcc_loss(logits, y, sync=True), soft_mcc_loss(logits, y, sync=False))
    assert np.isfinite(soft_mcc_loss(logits, y).item())
