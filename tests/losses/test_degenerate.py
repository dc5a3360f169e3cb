"""Degenerate batches: finite, defined values and finite gradients."""

import pytest
import torch

from imbal.losses import LOSS_TERMS, LossSettings, build_loss, soft_mcc_loss

# every term of the table alone, and each batch-level term next to CE: a new term is tested here
# without an edit
NAMES = [*LOSS_TERMS, *(f"ce+{n}" for n, t in LOSS_TERMS.items() if not t.per_sample)]


def loss_fn(name):
    return build_loss(name, LossSettings(class_counts=[5, 3, 2]))


def check_finite(name, logits, y):
    logits = logits.clone().requires_grad_(True)
    loss = loss_fn(name)(logits, y)
    loss.backward()
    assert torch.isfinite(loss), (name, loss)
    assert torch.isfinite(logits.grad).all(), name
    return loss


@pytest.mark.parametrize("name", NAMES)
def test_one_class_batch(name):
    check_finite(name, torch.randn(8, 3), torch.zeros(8, dtype=torch.long))


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_one(name):
    check_finite(name, torch.randn(1, 3), torch.tensor([2]))


@pytest.mark.parametrize("name", NAMES)
def test_confident_all_correct_and_all_wrong(name):
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    right = torch.nn.functional.one_hot(y, 3).float() * 200 - 100
    wrong = torch.nn.functional.one_hot((y + 1) % 3, 3).float() * 200 - 100
    check_finite(name, right, y)
    check_finite(name, wrong, y)


def test_mcc_values_at_extremes():
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    right = torch.nn.functional.one_hot(y, 3).float() * 60
    assert soft_mcc_loss(right, y).item() == pytest.approx(0.0, abs=1e-5)
    # one class in the batch: R_K := 0 as sklearn does, so the loss is exactly 1
    one = torch.zeros(5, dtype=torch.long)
    assert soft_mcc_loss(torch.randn(5, 3), one).item() == pytest.approx(1.0)
    # all mass on one class for every sample: predicted-side denominator is 0
    same = torch.tensor([[80.0, 0.0, 0.0]]).repeat(6, 1)
    assert soft_mcc_loss(same, y).item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", NAMES)
def test_low_precision_logits(name, dtype):
    torch.manual_seed(1)
    logits = (torch.randn(32, 3) * 4).to(dtype)
    y = torch.randint(0, 3, (32,))
    loss = check_finite(name, logits, y)
    ref = loss_fn(name)(logits.float(), y)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_under_cpu_autocast(name):
    model = torch.nn.Linear(6, 3)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = loss_fn(name)(logits, y)
    loss.backward()
    assert logits.dtype == torch.bfloat16
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
