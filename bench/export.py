"""`imbal export`: how long an export takes, how big the file is, and how fast each runtime scores.

For each run (given, or a 1-epoch synthetic run of the study's shapes trained into a temporary
folder: 2D 28x28 RGB 5 classes and 3D 28^3 2 classes, ResNet-18 at widen 0.25), the script exports
ONNX and TorchScript (wall time of ``export_run``, parity check included), then times the forward
pass on random inputs at batch 1 and batch 64 with the same thread count: PyTorch eager (what
``imbal predict`` runs), the TorchScript file and ONNX Runtime (CPUExecutionProvider). Medians over
``--repeats`` calls after two warm-up calls; calls of the three runtimes are interleaved so a busy
machine slows them alike.

Usage: python bench/export.py [RUN_DIR ...] [--repeats 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from imbal.engine.config import load_config
from imbal.engine.trainer import train
from imbal.export.bundle import FORMATS, export_run
from imbal.export.source import ExportedNet, load_run

SHAPES = {
    "2D 28x28 RGB, 5 classes": {
        "kind": "synthetic",
        "spatial_dims": 2,
        "n": 300,
        "channels": 3,
        "class_ratios": [0.45, 0.12, 0.19, 0.18, 0.06],
    },
    "3D 28^3, 2 classes": {"kind": "synthetic", "spatial_dims": 3, "n": 60, "class_ratios": [0.89, 0.11]},
}


def synthetic_runs(root: Path) -> dict[str, Path]:
    runs = {}
    for i, (name, spec) in enumerate(SHAPES.items()):
        cfg = {
            "dataset": spec,
            "widen_factor": 0.25,
            "epochs": 1,
            "batch_size": 20,
            "out": str(root / f"r{i}"),
        }
        runs[name] = train(load_config(None, {**cfg, "quiet": True}))
    return runs


def time_calls(fns: dict[str, object], x: np.ndarray, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(2):
        for fn in fns.values():
            fn(x)  # type: ignore[operator]
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn(x)  # type: ignore[operator]
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def bench_run(name: str, run: Path, out: Path, repeats: int, threads: int) -> None:
    loaded = load_run(run)
    net = ExportedNet(loaded).eval()
    files, fns = {}, {}

    @torch.no_grad()
    def eager(x: np.ndarray) -> np.ndarray:
        return net(torch.from_numpy(x))[1].numpy()

    fns["PyTorch eager (predict)"] = eager
    for fmt, spec in FORMATS.items():
        t = time.perf_counter()
        result = export_run(run, fmt, out / fmt, overwrite=True)
        seconds = time.perf_counter() - t
        data = (out / fmt / spec.model_file).read_bytes()
        files[fmt] = (seconds, len(data) / 2**20, result["parity"].max_abs_difference)
        fns[fmt] = spec.runner(data, threads)
    print(f"\n## {name} ({run})")
    for fmt, (seconds, mib, diff) in files.items():
        print(f"export {fmt}: {seconds:.2f} s (parity included), {mib:.2f} MiB, parity max diff {diff:.1e}")
    shape = (loaded.want.in_channels, *loaded.want.spatial_size)
    rng = np.random.default_rng(0)
    print("| batch | " + " | ".join(f"{k} (ms)" for k in fns) + " | ONNX / eager |")
    print("|---" * (len(fns) + 2) + "|")
    for batch in (1, 64):
        x = rng.random((batch, *shape), dtype=np.float32)
        ms = time_calls(fns, x, repeats)
        row = " | ".join(f"{v:.2f}" for v in ms.values())
        print(f"| {batch} | {row} | {ms['onnx'] / ms['PyTorch eager (predict)']:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "runs", nargs="*", help="finished run folders (default: synthetic runs of the study's shapes)"
    )
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), medians of {args.repeats} calls")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = {Path(r).name: Path(r) for r in args.runs} or synthetic_runs(root)
        for name, run in runs.items():
            bench_run(name, run, root / "exports" / name.replace(" ", "_"), args.repeats, args.threads)


if __name__ == "__main__":
    main()
