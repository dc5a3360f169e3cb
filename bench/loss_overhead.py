"""Forward+backward time of each loss, alone and as a share of one ResNet-18 training step.

Setting of the study's 2D stand-in: a 2D ResNet-18 (small-input stem) on 28x28 RGB batches of 50,
5 classes. Prints a table of medians over repeated measurements, all taken in this one run.
Usage: python bench/loss_overhead.py [--device cuda] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from imbal.losses import LossSettings, build_loss
from imbal.models import build_model

LOSSES = ["ce", "focal", "f1", "mcc", "ce+f1", "ce+mcc", "la-ce"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn, device, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    counts = [486, 128, 206, 194, 66]
    model = build_model("resnet18", 2, 3, 5).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(args.batch, 3, 28, 28, device=device)
    y = torch.randint(0, 5, (args.batch,), device=device)
    logits_fixed = torch.randn(args.batch, 5, device=device)

    def step(loss_fn):
        def run():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        return run

    ce_step = median_seconds(step(build_loss("ce", LossSettings(validate=False))), device, args.repeats)
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} batch={args.batch}")
    print(f"one training step (ResNet-18 2D, 28x28, CE): median {ce_step * 1e3:.2f} ms over {args.repeats}")
    print()
    print(f"{'loss':<8} {'fwd+bwd (ms)':>13} {'share of step':>14}  {'validated (ms)':>15}")
    for name in LOSSES:
        for validate in (False, True):
            loss_fn = build_loss(name, LossSettings(class_counts=counts, validate=validate)).to(device)

            def alone(loss_fn=loss_fn):
                z = logits_fixed.clone().requires_grad_(True)
                loss_fn(z, y).backward()

            t = median_seconds(alone, device, args.repeats * 10)
            if validate:
                print(f"{t * 1e3:>15.3f}")
            else:
                print(f"{name:<8} {t * 1e3:>13.3f} {t / ce_step:>13.2%}", end="  ")
    print()
    print("Target: every loss <= 1% of the training step. 'validated' includes the label-range and")
    print("finiteness checks that the training loop skips (they read values back to the host).")


if __name__ == "__main__":
    main()
