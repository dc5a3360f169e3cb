"""Every input check raises the pinned message."""

import pytest
import torch

from imbal.losses import (
    LossSettings,
    build_loss,
    focal_loss,
    inverse_frequency_weights,
    soft_f1_loss,
    soft_mcc_loss,
)

ALL = [soft_mcc_loss, soft_f1_loss, focal_loss, build_loss("ce+mcc")]


@pytest.mark.parametrize("fn", ALL)
def test_logits_ndim(fn):
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\), got ndim=1"):
        fn(torch.randn(4), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("fn", ALL)
def test_n_mismatch(fn):
    with pytest.raises(ValueError, match="same N, got logits N=4 and target N=3"):
        fn(torch.randn(4, 3), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("fn", ALL)
def test_float_target(fn):
    with pytest.raises(TypeError, match="integer class indices of shape \\(N,\\), got dtype=torch.float32"):
        fn(torch.randn(4, 3), torch.zeros(4))


@pytest.mark.parametrize("fn", ALL)
def test_one_hot_target(fn):
    with pytest.raises(ValueError, match=r"target must have shape \(N,\).*got shape=\(4, 3\)"):
        fn(torch.randn(4, 3), torch.zeros(4, 3, dtype=torch.long))


@pytest.mark.parametrize("fn", ALL)
def test_label_range(fn):
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got min=0 max=3"):
        fn(torch.randn(4, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"got min=-1"):
        fn(torch.randn(4, 3), torch.tensor([0, 1, 2, -1]))


@pytest.mark.parametrize("fn", ALL)
def test_single_class_logits(fn):
    with pytest.raises(ValueError, match="C >= 2 classes, got C=1"):
        fn(torch.randn(4, 1), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("fn", ALL)
def test_non_finite(fn):
    x = torch.randn(4, 3)
    x[0, 0], x[1, 1] = float("nan"), float("inf")
    with pytest.raises(ValueError, match="must be finite, got 2 non-finite"):
        fn(x, torch.zeros(4, dtype=torch.long))


def test_integer_logits():
    with pytest.raises(TypeError, match="logits must be a floating tensor, got dtype=torch.int64"):
        soft_mcc_loss(torch.ones(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long))


def test_not_a_tensor():
    with pytest.raises(TypeError, match="must be torch.Tensor, got list"):
        soft_mcc_loss([[0.0, 1.0]], torch.zeros(1, dtype=torch.long))


def test_bad_names_and_settings():
    with pytest.raises(ValueError, match="unknown loss term 'dice'"):
        build_loss("ce+dice")
    with pytest.raises(ValueError, match="needs class_counts"):
        build_loss("la-ce")
    with pytest.raises(ValueError, match="average must be 'macro' or 'positive', got 'micro'"):
        soft_f1_loss(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), average="micro")
    with pytest.raises(ValueError, match=r"needs binary logits of shape \(N, 2\), got C=3"):
        soft_f1_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), average="positive")
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1"):
        focal_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), gamma=-1)
    with pytest.raises(ValueError, match=r"alpha must have shape \(3,\), got \(2,\)"):
        focal_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), alpha=torch.ones(2))
    with pytest.raises(ValueError, match="at least one sample, got class_counts=\\[3, 0\\]"):
        inverse_frequency_weights([3, 0])


def test_validate_false_skips_value_checks_only():
    x = torch.randn(4, 3)
    x[0, 0] = float("nan")
    y = torch.tensor([0, 1, 2, 1])
    for fn in (soft_mcc_loss, soft_f1_loss, focal_loss):
        assert torch.isnan(fn(x, y, validate=False))  # no value check, no host sync
    assert torch.isnan(build_loss("ce+mcc", LossSettings(validate=False))(x, y))
    with pytest.raises(ValueError, match="logits must have shape"):
        soft_mcc_loss(torch.randn(4), y, validate=False)  # shapes are still checked
