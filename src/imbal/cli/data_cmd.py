"""``imbal data list | info NAME | fetch NAME | prepare SOURCE --out DIR``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from imbal.naming import SPLITS

if TYPE_CHECKING:  # the loaders import torch; this module is read by every `imbal` call
    from imbal.data.dataset import Splits


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list, describe and download data sets")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    ls = dsub.add_parser("list", help="MedMNIST sets and where each is found locally")
    ls.add_argument("--size", type=int, default=28)
    info = dsub.add_parser("info", help="class counts per split and imbalance ratio")
    info.add_argument("name", help="a MedMNIST name, an npz path, or 'synthetic'")
    info.add_argument("--size", type=int, default=28)
    fetch = dsub.add_parser("fetch", help="download (MD5-checked) into the cache")
    fetch.add_argument("names", nargs="+")
    fetch.add_argument("--size", type=int, default=28)
    prep = dsub.add_parser(
        "prepare", help="decode a data set once into a cache folder that training streams from"
    )
    prep.add_argument(
        "source", help="a MedMNIST name, an npz path or a YAML mapping ('{kind: folder, csv: ...}')"
    )
    prep.add_argument(
        "--out", required=True, help="the cache folder (built aside, renamed into place when complete)"
    )
    prep.add_argument("--size", type=int, default=28, help="image size for MedMNIST sets")
    prep.add_argument("--force", action="store_true", help="rebuild a cache of another source or settings")
    prep.add_argument(
        "--verify",
        action="store_true",
        help="when reusing a cache, also check its image checksums (labels and manifest are always checked)",
    )
    p.set_defaults(func=run)


# each command imports what it needs when it runs: `imbal --help` and `imbal data list` do without torch


def run(args: argparse.Namespace) -> int:
    command = {"list": run_list, "info": run_info, "fetch": run_fetch, "prepare": run_prepare}
    return command[args.data_cmd](args)


def run_list(args: argparse.Namespace) -> int:
    from imbal.data.medmnist import candidate_paths
    from imbal.data.medmnist_info import MEDMNIST

    print(f"{'name':<16} {'dims':>4} {'classes':>7} {'train':>7} {'val':>6} {'test':>6}  local file")
    for name, info in sorted(MEDMNIST.items()):
        if args.size not in info.md5:
            continue
        local = next((str(p) for p in candidate_paths(info, args.size, None) if p.is_file()), "-")
        n = info.n_samples
        print(
            f"{name:<16} {info.spatial_dims:>3}D {info.num_classes:>7} {n['train']:>7} {n['val']:>6} "
            f"{n['test']:>6}  {local}"
        )
    return 0


def run_info(args: argparse.Namespace) -> int:
    from imbal.data import load_dataset

    print_info(load_dataset(args.name, size=args.size))
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from imbal.data.medmnist import find_medmnist

    for name in args.names:
        print(find_medmnist(name, args.size))
    return 0


def print_info(splits: Splits) -> None:
    """Shape, then one row per class (name, count per split; the rarest training class marked)."""
    train = splits.train
    print(f"{train.name}  ({'SYNTHETIC' if splits.synthetic else splits.source})")
    print(f"  {train.spatial_dims}D, {train.in_channels} channel(s), size {train.spatial_size}")
    counts = {s: splits[s].class_counts.tolist() for s in SPLITS}
    # the counts, not a dataset property: a prepared cache's disk-backed splits have counts too
    minority = min(range(train.num_classes), key=lambda k: counts["train"][k])
    labels = [f"{k} {name}" if name != str(k) else str(k) for k, name in enumerate(train.class_names)]
    width = max(len("class"), *map(len, labels))
    print(f"  {'class':<{width}}  {'train':>7} {'val':>6} {'test':>6}")
    for k, label in enumerate(labels):
        row = f"  {label:<{width}}  {counts['train'][k]:>7} {counts['val'][k]:>6} {counts['test'][k]:>6}"
        print(row + ("  <- minority" if k == minority else ""))
    for split in SPLITS:
        d = splits[split]
        print(f"  {split:<5} n={len(d):>6}  counts={counts[split]}  imbalance={d.imbalance_ratio:.1f}:1")
    print(
        f"  imbalance ratio (train, largest / smallest class): {train.imbalance_ratio:.1f}:1; "
        f"minority class {labels[minority]}"
    )
    if splits.ordinal:
        print("  classes are ordinal grades: runs report the quadratic weighted kappa (qwk)")


def run_prepare(args: argparse.Namespace) -> int:
    from imbal.data.cache import load_cache
    from imbal.data.prepare import prepare_cache
    from imbal.engine.config import coerce

    out, reused = prepare_cache(
        coerce("dataset", args.source), args.out, size=args.size, force=args.force, verify=args.verify
    )
    splits = load_cache(out)
    counts = ", ".join(f"{s} n={len(splits[s])}" for s in SPLITS)
    mib = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    shape = "x".join(str(v) for v in (splits.train.in_channels, *splits.train.spatial_size))
    verb = "reused" if reused else "prepared"
    checked = (
        "all checksums checked" if args.verify else "label checksums checked; --verify checks the images too"
    )
    why = f" (same source and settings; {checked})" if reused else ""
    print(f"{verb} {out}{why}: {counts}; uint8 {shape}, {mib:.1f} MiB")
    return 0
