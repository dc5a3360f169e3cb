"""Samples per second of imbal's training loop against a bare PyTorch loop (same model, data, batch, loss).

Both loops train the same ResNet-18 (small-input stem) with CE, Adam and batch 50 on in-memory data;
the bare loop is the minimal hand-written one (randperm, index, forward, backward, step). imbal's
number comes from its own history.csv (`train_seconds`: the training part of each epoch, without
validation), with augmentation off for a like-for-like comparison, and on for information.
Epoch 1 is warm-up and left out; medians over the remaining epochs.

Usage: python bench/train_throughput.py [--epochs 4] [--widen 0.25]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import pandas as pd
import torch
import torch.nn.functional as F

from imbal.engine import run_dir as rd
from imbal.engine.build import prepare_data
from imbal.engine.config import load_config
from imbal.engine.trainer import train
from imbal.models import build_model

SETTINGS = {
    "2D 28x28 RGB, 5 cls": dict(
        dataset={
            "kind": "synthetic",
            "spatial_dims": 2,
            "n": 1500,
            "size": 28,
            "channels": 3,
            "class_ratios": [0.45, 0.12, 0.19, 0.18, 0.06],
        }
    ),
    "3D 28^3, 2 cls": dict(
        dataset={"kind": "synthetic", "spatial_dims": 3, "n": 400, "size": 28, "class_ratios": [0.85, 0.15]}
    ),
}


def bare_loop(cfg, epochs: int) -> list[float]:
    torch.manual_seed(cfg.seed)
    data = prepare_data(cfg).train
    model = build_model(
        cfg.arch, data.spatial_dims, data.in_channels, data.num_classes, widen_factor=cfg.widen_factor
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    images, labels = data.images, data.labels
    steps = len(labels) // cfg.batch_size
    rates = []
    for _ in range(epochs):
        model.train()
        t = time.perf_counter()
        perm = torch.randperm(len(labels))
        for i in range(steps):
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x = images[idx].float() / 255
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), labels[idx]).backward()
            opt.step()
        rates.append(steps * cfg.batch_size / (time.perf_counter() - t))
    return rates[1:]


def imbal_loop(cfg) -> list[float]:
    out = train(cfg)
    h = pd.read_csv(out / rd.HISTORY)
    return (h.train_samples / h.train_seconds).tolist()[1:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--widen", type=float, default=0.25)
    args = ap.parse_args()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, widen_factor {args.widen}, batch 50, CE"
    )
    print(
        f"{'setting':<18} {'bare (samples/s)':>17} {'imbal (samples/s)':>18} {'ratio':>6} {'imbal+aug':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in SETTINGS.items():
            base = dict(
                extra, widen_factor=args.widen, epochs=args.epochs, loss="ce", quiet=True, eval_batch_size=500
            )
            cfg = load_config(None, dict(base, augment=False, out=f"{tmp}/{name[:2]}"))
            # alternate bare and imbal so that machine noise hits both alike
            bare = bare_loop(cfg, args.epochs)
            ours = imbal_loop(cfg)
            aug = imbal_loop(load_config(None, dict(base, augment=True, out=f"{tmp}/{name[:2]}aug")))
            b, o, a = statistics.median(bare), statistics.median(ours), statistics.median(aug)
            print(f"{name:<18} {b:>17.1f} {o:>18.1f} {o / b:>6.2f} {a:>10.1f}")
    print("Target ratio (imbal / bare, both without augmentation) >= 0.9.")


if __name__ == "__main__":
    main()
