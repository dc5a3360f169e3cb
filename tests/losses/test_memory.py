"""Soft-count memory: K = 0 is the plain loss, the memory equals the concatenated batch, state rules."""

import pytest
import torch

from imbal.losses import (
    LossSettings,
    SoftF1Loss,
    SoftMCCLoss,
    build_loss,
    soft_counts,
    soft_f1_loss,
    soft_mcc_loss,
)
from tests.ddp_utils import run_gloo


def batch(seed, n=12, c=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=torch.float64), torch.randint(0, c, (n,), generator=g)


@pytest.mark.parametrize("module", [SoftMCCLoss, SoftF1Loss])
def test_memory_zero_is_the_plain_loss(module):
    logits, y = batch(0)
    plain = soft_mcc_loss(logits, y) if module is SoftMCCLoss else soft_f1_loss(logits, y)
    assert module()(logits, y).item() == plain.item()
    assert module(memory=0, num_classes=3)(logits, y).item() == plain.item()
    assert (
        build_loss("ce+mcc", LossSettings(metric_memory=0))(logits, y).item()
        == build_loss("ce+mcc")(logits, y).item()
    )


@pytest.mark.parametrize("fn", [soft_mcc_loss, soft_f1_loss])
def test_memory_counts_equal_the_concatenated_batch(fn):
    (a, ya), (b, yb) = batch(1), batch(2)
    b = b.clone().requires_grad_(True)
    with_memory = fn(b, yb, memory_counts=soft_counts(a, ya).detach())
    b2 = b.detach().clone().requires_grad_(True)
    joint = fn(torch.cat([a, b2]), torch.cat([ya, yb]))
    assert with_memory.item() == pytest.approx(joint.item(), abs=1e-12)
    with_memory.backward()
    joint.backward()
    # the gradient flows through the current batch only, and it is the joint loss's gradient there
    assert torch.allclose(b.grad, b2.grad, atol=1e-12)


def test_queue_keeps_the_last_k_training_batches_and_eval_never_changes_it():
    loss = SoftMCCLoss(memory=2, num_classes=3)
    batches = [batch(s) for s in range(4)]
    for logits, y in batches:
        loss(logits, y)
    expected = sum(soft_counts(*batches[i]) for i in (2, 3)).float()
    assert torch.allclose(loss.memory_counts.sum(0), expected)
    before = loss.memory_counts.clone()
    loss.eval()
    value = loss(*batches[0])
    assert torch.equal(loss.memory_counts, before)  # read in eval, never written
    joint = soft_mcc_loss(
        torch.cat([batches[i][0] for i in (2, 3, 0)]), torch.cat([batches[i][1] for i in (2, 3, 0)])
    )
    assert value.item() == pytest.approx(joint.item(), abs=1e-6)


def test_queue_is_state_dict_state():
    a = SoftF1Loss(memory=3, num_classes=3)
    for s in range(5):
        a(*batch(s))
    b = SoftF1Loss(memory=3, num_classes=3)
    b.load_state_dict(a.state_dict())
    nxt = batch(9)
    assert a(*nxt).item() == b(*nxt).item()
    assert set(a.state_dict()) == {"memory_counts", "memory_position"}


def test_memory_messages():
    with pytest.raises(ValueError, match="memory=2 needs num_classes >= 2 to size its queue, got None"):
        SoftMCCLoss(memory=2)
    with pytest.raises(ValueError, match="memory must be an int >= 0"):
        SoftMCCLoss(memory=-1, num_classes=3)
    with pytest.raises(ValueError, match="logits have C=4 classes, the memory was built for C=3"):
        SoftMCCLoss(memory=1, num_classes=3)(torch.randn(5, 4), torch.randint(0, 4, (5,)))
    with pytest.raises(ValueError, match=r"memory_counts must have the counts' shape \(4, 3\)"):
        soft_mcc_loss(torch.randn(5, 3), torch.randint(0, 3, (5,)), memory_counts=torch.zeros(4, 2))


def make_problem():
    g = torch.Generator().manual_seed(5)
    xs = [torch.randn(24, 6, generator=g) for _ in range(3)]
    ys = [torch.tensor([0, 0, 0, 0, 1, 2] * 4)[torch.randperm(24, generator=g)] for _ in range(3)]
    model = torch.nn.Linear(6, 3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 6, generator=g))
        model.bias.zero_()
    return xs, ys, model


def steps(model, loss_fn, xs, ys, part=slice(None)):
    """Three forward passes (memory fills), the gradient of the third."""
    for x, y in zip(xs[:2], ys[:2]):
        loss_fn(model(x[part]), y[part])
    loss = loss_fn(model(xs[2][part]), ys[2][part])
    loss.backward()
    return loss.detach()


def ddp_memory_step(rank, world, name):
    from torch.nn.parallel import DistributedDataParallel as DDP

    xs, ys, model = make_problem()
    ddp = DDP(model)
    loss_fn = build_loss(name, LossSettings(metric_memory=2, num_classes=3))
    loss = steps(ddp, loss_fn, xs, ys, slice(rank, None, world))
    memory = next(m.memory_counts.clone() for m in loss_fn.terms if hasattr(m, "memory_counts"))
    return loss, model.weight.grad.clone(), model.bias.grad.clone(), memory


@pytest.mark.parametrize("name", ["mcc", "ce+f1"])
def test_ddp_memory_equals_one_process(name):
    xs, ys, model = make_problem()
    loss_fn = build_loss(name, LossSettings(metric_memory=2, num_classes=3))
    full = steps(model, loss_fn, xs, ys)
    results = run_gloo(ddp_memory_step, name)
    for rank, (loss, gw, gb, _) in enumerate(results):
        if name == "mcc":
            assert loss.item() == pytest.approx(full.item(), abs=1e-6), rank
        assert torch.allclose(gw, model.weight.grad, atol=1e-6), rank
        assert torch.allclose(gb, model.bias.grad, atol=1e-6), rank
    # every rank holds the same queue, the one of the whole batch
    assert torch.allclose(results[0][3], results[1][3])
