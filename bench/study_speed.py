"""Wall time of the study on this machine, and per-step time of a plain loop vs imbal's fast path.

The study: 15 configurations x 5 seeds x 2 data sets (RetinaMNIST 100 epochs, VesselMNIST3D 60 epochs,
the `configs/study_*.yaml` settings) = 150 runs. `--fraction f` runs the first f of the cells of each data
set (spread over configurations and seeds) with `--jobs N` concurrent runs on one device, and scales the
wall time by the number of runs honestly: estimate = measured wall x (150 / runs done). `--epochs-scale s`
shortens every run to s of its epochs (then the estimate is also divided by s and says so).

The plain path is the hand-written loop of the issue: data on the host, per-step host->device copy,
augmentation per sample on the CPU, scikit-learn metrics every epoch. The fast path is `imbal train`'s loop.

Writes a section to bench/RESULTS.md (--results) and prints it. Usage:
  python bench/study_speed.py --fraction 0.2 --jobs 8          # on a GPU
  python bench/study_speed.py --fraction 0.02 --epochs-scale 0.02 --jobs 2   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score

from imbal.data import Augmentation, load_dataset
from imbal.engine import run_dir as rd
from imbal.models import build_model
from imbal.study.run.grid import run_grid
from imbal.study.run.spec import load_study

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "configs/study_full.yaml"  # both public sets, each with its own train config


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_step_time(name: str, device: torch.device, n_steps: int) -> float:
    """Median seconds per step of the plain loop (host data, CPU augmentation per sample)."""
    splits = load_dataset(name)
    data = splits.train
    widen = 1.0 if data.spatial_dims == 2 else 0.25
    model = build_model(
        "resnet18", data.spatial_dims, data.in_channels, data.num_classes, widen_factor=widen
    ).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    aug = Augmentation(data.spatial_dims)
    g = torch.Generator().manual_seed(0)
    times = []
    for step in range(n_steps + 5):
        t = time.perf_counter()
        idx = torch.randint(0, len(data), (50,), generator=g)
        x = torch.cat(
            [aug(data.images[i : i + 1].float() / 255, g) for i in idx.tolist()]
        )  # per sample, on host
        x, y = x.to(device), data.labels[idx].to(device)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        _ = loss.item()  # the per-step read-back of a typical loop
        sync(device)
        if step >= 5:
            times.append(time.perf_counter() - t)
    # plus the per-epoch sklearn scoring, spread over the epoch's steps
    t = time.perf_counter()
    with torch.no_grad():
        preds = torch.cat(
            [
                model(splits.val.images[i : i + 50].float().to(device) / 255).argmax(1).cpu()
                for i in range(0, len(splits.val), 50)
            ]
        )
    balanced_accuracy_score(splits.val.labels.numpy(), preds.numpy())
    per_epoch_eval = time.perf_counter() - t
    return statistics.median(times) + per_epoch_eval / max(1, len(data) // 50)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--epochs-scale", type=float, default=1.0)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--plain-steps", type=int, default=30, help="steps timed in the plain loop")
    ap.add_argument("--results", default=str(REPO / "bench/RESULTS.md"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    )
    lines = [f"## Study speed on {name} ({time.strftime('%Y-%m-%d')})", ""]
    lines.append(
        f"torch {torch.__version__}; {args.jobs} concurrent run(s); fraction {args.fraction} of the cells; "
        f"epochs x {args.epochs_scale}"
    )
    lines += [
        "",
        "| data set | runs done | wall (s) | s/run | plain s/step | fast s/step | speed-up per step |",
        "|---|---|---|---|---|---|---|",
    ]
    total_runs, total_wall, estimate = 0, 0.0, 0.0
    spec = load_study(STUDY)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        for dataset, settings in list(spec.entries.items()):
            cells = [c for c in spec.cells() if c.dataset == dataset]
            take = max(1, round(len(cells) * args.fraction))
            picked = cells[:: max(1, len(cells) // take)][:take]
            full_epochs = settings["epochs"]
            epochs = max(1, round(full_epochs * args.epochs_scale))
            spec.entries[dataset] = dict(settings, epochs=epochs)
            picked = [dataclasses.replace(c, settings=spec.entries[dataset]) for c in picked]
            t = time.perf_counter()
            run_grid(spec, out, jobs=args.jobs, cells=picked, log=lambda *_: None, live_every=0)
            wall = time.perf_counter() - t
            fast_steps = []
            for cell in picked:
                h = pd.read_csv(cell.run_dir(out) / rd.HISTORY)
                h = h.iloc[1:] if len(h) > 1 else h  # epoch 1 carries warm-up (cuDNN autotuning, allocator)
                fast_steps += (h.train_seconds / (h.train_samples / 50)).tolist()
            plain = plain_step_time(dataset, device, args.plain_steps)
            fast = float(np.median(fast_steps))
            total_runs += len(picked)
            total_wall += wall
            # this data set's share of the study: all its cells, at full epochs
            estimate += wall * len(cells) / len(picked) * full_epochs / epochs
            lines.append(
                f"| {dataset} | {len(picked)} | {wall:.0f} | {wall / len(picked):.1f} | {plain * 1e3:.1f} ms | "
                f"{fast * 1e3:.1f} ms (with {args.jobs} runs sharing the device) | {plain / fast:.2f}x |"
            )
    lines += [
        "",
        f"Estimate for the whole study ({len(load_study(STUDY).cells())} runs): each data "
        f"set's wall time x (its cells / runs done) x (full epochs / epochs run) = {estimate:.0f} s = "
        f"{estimate / 60:.1f} min (measured: {total_runs} runs in {total_wall:.0f} s; target <= 10 min on one H100/H200).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with open(args.results, "a") as f:
        f.write("\n" + text)


if __name__ == "__main__":
    main()
