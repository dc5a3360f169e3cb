"""Under DDP (two gloo processes) metric losses see the global batch: same loss, same gradients."""

import pytest
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from imbal.losses import LossSettings, build_loss
from tests.ddp_utils import run_gloo


def make_problem():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(24, 6, generator=g)
    y = torch.tensor([0, 0, 0, 0, 1, 2] * 4)[torch.randperm(24, generator=g)]
    model = torch.nn.Linear(6, 3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 6, generator=g))
        model.bias.zero_()
    return x, y, model


def ddp_step(rank, world, name):
    x, y, model = make_problem()
    ddp = DDP(model)
    xs, ys = x[rank::world], y[rank::world]
    loss = build_loss(name)(ddp(xs), ys)
    loss.backward()
    return loss.detach(), model.weight.grad.clone(), model.bias.grad.clone()


@pytest.mark.parametrize("name", ["mcc", "f1", "ce+mcc", "ce+f1", "ce"])
def test_ddp_loss_and_grads_equal_full_batch(name):
    x, y, model = make_problem()
    full = build_loss(name)(model(x), y)
    full.backward()
    results = run_gloo(ddp_step, name)
    for rank, (loss, gw, gb) in enumerate(results):
        if name in ("mcc", "f1"):
            # pure metric losses are global statistics: every rank sees the full-batch value
            assert loss.item() == pytest.approx(full.item(), abs=1e-6), rank
        assert torch.allclose(gw, model.weight.grad, atol=1e-6), (rank, gw, model.weight.grad)
        assert torch.allclose(gb, model.bias.grad, atol=1e-6), rank


def unsynced_step(rank, world):
    x, y, model = make_problem()
    ddp = DDP(model)
    build_loss("mcc", LossSettings(sync=False))(ddp(x[rank::world]), y[rank::world]).backward()
    return model.weight.grad.clone()


def test_without_sync_gradients_differ():
    # guards the test above: it can fail, because per-rank ratios are a different objective
    x, y, model = make_problem()
    build_loss("mcc")(model(x), y).backward()
    grads = run_gloo(unsynced_step)
    assert not torch.allclose(grads[0], model.weight.grad, atol=1e-4)
