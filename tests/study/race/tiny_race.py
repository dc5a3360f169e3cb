"""A tiny race's study file and the finished cells of a folder, shared by the race tests and the shard test."""

from pathlib import Path

import yaml

from imbal.engine import run_dir as rd

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 240, "size": 12, "class_ratios": [0.6, 0.4], "seed": 3}
TRAIN = {"dataset": SYN, "widen_factor": 0.125, "epochs": 1}
GRID = [{"samplers": ["uniform"], "losses": ["ce", "ce+0*f1", "mcc"]}]


def study(path: Path, **kw) -> Path:
    data = {"train": TRAIN, "grid": GRID, "budget": {"max_seeds": 3}, **kw}
    path.write_text(yaml.safe_dump(data))
    return path


def finished(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in rd.cell_dirs(root) if rd.is_finished(p))
