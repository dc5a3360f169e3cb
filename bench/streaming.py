"""Training from a prepared cache (streamed from disk) against in-memory data: speed and peak memory.

Throughput: samples/s of a few training steps (augmentation, forward, backward, Adam) on synthetic
random images written as a cache to a temporary folder, the same model and batches either way:
in memory (the plain gather), streamed (``iterate_batches`` on the disk-backed set, page cache
warm as after a first epoch) and, with ``--cold``, streamed cold (the cache file's pages dropped
from the page cache first with ``posix_fadvise``, so every read hits the disk). Blocks of steps
alternate between the modes (ABBA) since the machine may be shared; the ratio is given from the
median step and from the fastest step (contention only ever adds time). "wait" is the median time
a step waited for its batch (gather, read, float conversion), the data path's whole cost.

Peak memory: subprocesses train a few steps on a 3D cache at least 4x larger than ``--budget-mb``
and report their own peak RSS (``VmHWM``, see :func:`peak_rss_mib`): streamed (``place`` picks
the disk view), the model with one batch only (the floor: torch, model, optimiser, activations),
and the whole set loaded.

Usage: python bench/streaming.py [--quick] [--cold] [--steps 2] [--repeats 2] [--budget-mb 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from imbal.data import Augmentation, ImageDataset, Splits, iterate_batches, place
from imbal.data.cache import load_cache, write_cache
from imbal.models import build_model

# name -> (spatial_dims, channels, size, crop, arch, widen, batch, samples)
FULL = {
    "2D 240x240 RGB, ResNet-34": (2, 3, 240, None, "resnet34", 1.0, 16, 128),
    "3D 96^3 x4, crop 64^3, ResNet-18 w0.25": (3, 4, 96, 64, "resnet18", 0.25, 8, None),
}
QUICK = {
    "2D 64x64 RGB, ResNet-18 w0.25": (2, 3, 64, None, "resnet18", 0.25, 8, 64),
    "3D 32^3 x4, crop 24^3, ResNet-18 w0.25": (3, 4, 32, 24, "resnet18", 0.25, 4, None),
}


def settings(quick: bool) -> dict:
    return QUICK if quick else FULL


def model_for(setting, num_classes: int = 3) -> torch.nn.Module:
    dims, channels, _, _, arch, widen, _, _ = setting
    # small_input=False: the 7x7 stride-2 stem and max-pool for inputs of 64 px and more
    return build_model(arch, dims, channels, num_classes, small_input=False, widen_factor=widen)


def write_random_cache(folder: Path, setting, n: int, seed: int = 0) -> Path:
    dims, channels, size, *_ = setting
    g = torch.Generator().manual_seed(seed)

    def part(k: int) -> ImageDataset:
        images = torch.randint(0, 256, (k, channels, *([size] * dims)), dtype=torch.uint8, generator=g)
        return ImageDataset(images, torch.randint(0, 3, (k,), generator=g), 3, "random", synthetic=True)

    return write_cache(Splits(part(n), part(2), part(2), "random"), folder, source="random", settings={})


def drop_page_cache(path: Path) -> None:
    """Evict one file's pages (clean after the cache's fsync), so the next reads go to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def train_steps(batches, model, opt, aug, g, device) -> tuple[list[float], list[float]]:
    """Seconds per step, each from the end of the previous one (waiting for data counts), and the
    seconds of each spent waiting for its batch."""
    times, waits = [], []
    t = time.perf_counter()
    for x, y in batches:
        waits.append(time.perf_counter() - t)
        x = aug(x, g)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - t)
        t = now
    return times, waits


def throughput(name: str, setting, folder: Path, args, device: torch.device) -> dict:
    dims, _, _, crop, _, _, batch, _ = setting
    disk = load_cache(folder).train
    mem = place(disk, device, budget_bytes=1 << 62)  # all of it in memory on the device
    stream = disk.to(device)
    model = model_for(setting).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    aug = Augmentation(dims, crop_size=crop)
    g = torch.Generator(device=device).manual_seed(0)
    pick = torch.Generator().manual_seed(1)

    def epoch():
        return torch.randint(0, len(disk), (args.steps, batch), generator=pick)

    # first steps are slow (kernel selection, allocator growth): not timed
    train_steps(iterate_batches(mem, epoch()[:2], device), model, opt, aug, g, device)
    times = {k: [] for k in args.modes}
    waits = {k: [] for k in args.modes}
    for rep in range(args.repeats):
        # alternate the order so that a drift in machine speed favours no mode
        for mode in args.modes if rep % 2 == 0 else args.modes[::-1]:
            if mode == "cold":
                drop_page_cache(disk.images.path)
            data = mem if mode == "memory" else stream
            t, w = train_steps(iterate_batches(data, epoch(), device), model, opt, aug, g, device)
            times[mode] += t
            waits[mode] += w
    return {
        "rate": {k: batch / statistics.median(v) for k, v in times.items()},
        "best": {k: batch / min(v) for k, v in times.items()},
        "wait_ms": {k: 1000 * statistics.median(v) for k, v in waits.items()},
    }


def child(args) -> None:
    """One peak-RSS measurement (run in a fresh process): prints a JSON line."""
    setting = settings(args.quick)[args.child_setting]
    dims, channels, size, crop, _, _, batch, _ = setting
    device = torch.device("cpu")
    model = model_for(setting)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    aug = Augmentation(dims, crop_size=crop)
    g = torch.Generator().manual_seed(0)
    if args.child == "model":
        x = torch.randint(0, 256, (batch, channels, *([size] * dims)), dtype=torch.uint8).float().div_(255)
        batches, kind = [(x, torch.zeros(batch, dtype=torch.long))] * args.steps, "one batch"
    else:
        disk = load_cache(args.cache).train
        budget = args.budget_mb << 20 if args.child == "stream" else 1 << 62
        data = place(disk, device, budget_bytes=budget)
        index = torch.randint(0, len(disk), (args.steps, batch), generator=torch.Generator().manual_seed(2))
        batches, kind = iterate_batches(data, index, device), type(data).__name__
    train_steps(batches, model, opt, aug, g, device)
    print(json.dumps({"peak_mib": peak_rss_mib(), "data": kind}))


def peak_rss_mib() -> float:
    """This process's peak resident set since exec: ``VmHWM``, not ``ru_maxrss``.

    Linux carries the parent's high-water mark into a child's ``ru_maxrss`` across the fork and
    exec of ``subprocess`` (exec records the outgoing address space's peak), so a child of a
    large parent would report the parent's size; ``VmHWM`` belongs to the new address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_peak(mode: str, name: str, folder: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--child-setting", name, "--cache", str(folder)]
    cmd += [
        "--budget-mb",
        str(args.budget_mb),
        "--steps",
        str(args.steps),
        "--threads",
        str(args.threads),
    ] + (["--quick"] if args.quick else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small images and models: a smoke run")
    ap.add_argument("--steps", type=int, default=None, help="training steps per timed block (default 2)")
    ap.add_argument("--repeats", type=int, default=None, help="timed blocks per mode (default 2, quick 1)")
    ap.add_argument(
        "--budget-mb", type=int, default=None, help="memory budget of the RSS test (default 128, quick 8)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on a shared machine, OpenMP threads outnumbering the "
        "free cores make steps 10-100x slower at random, swamping the comparison)",
    )
    ap.add_argument("--cold", action="store_true", help="also stream with the file's pages evicted")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--child", choices=["stream", "memory", "model"], help=argparse.SUPPRESS)
    ap.add_argument("--child-setting", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.steps = args.steps or 2
    args.repeats = args.repeats or (1 if args.quick else 2)
    args.budget_mb = args.budget_mb or (8 if args.quick else 128)
    args.modes = ["memory", "stream", *(["cold"] if args.cold else [])]
    torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return
    device = torch.device(args.device)
    table = settings(args.quick)
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
        f"{args.steps} steps x {args.repeats} blocks per mode, medians\n"
    )
    titles = {"memory": "in memory", "stream": "streamed", "cold": "streamed, cold"}
    print(
        "| setting | batch | "
        + " | ".join(f"{titles[m]} (samples/s)" for m in args.modes)
        + " | streamed / in memory (median step / fastest step) | wait per step, ms ("
        + " / ".join(titles[m] for m in args.modes)
        + ") |"
    )
    print("|---|---:|" + "---:|" * (len(args.modes) + 2))
    with tempfile.TemporaryDirectory(prefix="imbal-bench-") as tmp:
        rss_name = rss_folder = None
        for name, setting in table.items():
            dims, channels, size = setting[:3]
            n = setting[7]
            if n is None:  # the 3D cache doubles as the memory test's: >= 4x the budget
                sample = channels * size**dims
                n = math.ceil(4.2 * (args.budget_mb << 20) / sample)
                rss_name = name
            folder = write_random_cache(Path(tmp) / f"cache{dims}d", setting, n)
            if setting[7] is None:
                rss_folder = folder
            r = throughput(name, setting, folder, args, device)
            rates = " | ".join(f"{r['rate'][m]:.2f}" for m in args.modes)
            ratio = f"{r['rate']['stream'] / r['rate']['memory']:.2f} / {r['best']['stream'] / r['best']['memory']:.2f}"
            waits = " / ".join(f"{r['wait_ms'][m]:.0f}" for m in args.modes)
            print(f"| {name} | {setting[6]} | {rates} | {ratio} | {waits} |", flush=True)
        size_mib = sum(f.stat().st_size for f in rss_folder.glob("train_images.npy")) / 2**20
        print(
            f"\nPeak resident memory, CPU, {rss_name}: training set cache {size_mib:.0f} MiB, "
            f"budget {args.budget_mb} MiB, {args.steps} steps\n"
        )
        print("| process | data | peak RSS (MiB) |")
        print("|---|---|---:|")
        labels = {
            "model": "model and one batch only",
            "stream": "streamed from the cache",
            "memory": "whole set in memory",
        }
        for mode, label in labels.items():
            r = measure_peak(mode, rss_name, rss_folder, args)
            print(f"| {label} | {r['data']} | {r['peak_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
