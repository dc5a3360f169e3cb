"""Study configuration: which cells (dataset x sampler x loss x seed) a grid holds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imbal.engine.config import ConfigError, load_config

# the study's 15 configurations (Scholz et al., MIDL 2024, tables 1-2)
PAPER_GRID = [
    {"samplers": ["uniform", "oversample"], "losses": ["ce", "ce+f1", "ce+mcc", "f1", "focal", "mcc"]},
    {"samplers": ["weights"], "losses": ["ce", "ce+f1", "ce+mcc"]},
]


@dataclass(frozen=True)
class Cell:
    dataset: str  # a label used in paths and tables
    sampler: str
    loss: str
    seed: int
    overrides: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.sampler}/{self.loss}/seed{self.seed}"

    def run_dir(self, root: Path) -> Path:
        return root / "runs" / self.dataset / self.sampler / safe_name(self.loss) / f"seed{self.seed}"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9+._-]", "x", text)


def dataset_label(dataset: Any) -> str:
    if isinstance(dataset, str):
        return safe_name(Path(dataset).stem if dataset.endswith(".npz") else dataset.lower())
    if isinstance(dataset, dict):
        return safe_name(str(dataset.get("label") or dataset.get("name") or dataset.get("kind", "data")))
    raise ConfigError(f"dataset must be a name, a path or a mapping, got {dataset!r}")


@dataclass
class StudySpec:
    train: dict[str, Any]
    datasets: list[Any]
    grid: list[dict[str, list[str]]]
    seeds: list[int]

    def cells(self) -> list[Cell]:
        out, seen = [], set()
        for dataset in self.datasets:
            label = dataset_label(dataset)
            if isinstance(dataset, dict):
                dataset = {k: v for k, v in dataset.items() if k != "label"}
            for block in self.grid:
                for sampler in block["samplers"]:
                    for loss in block["losses"]:
                        for seed in self.seeds:
                            cell = Cell(label, sampler, loss, seed, {"dataset": dataset})
                            if cell not in seen:
                                seen.add(cell)
                                out.append(cell)
        return out

    def config_for(self, cell: Cell, root: Path):
        values = dict(self.train)
        values.update(cell.overrides)
        values.update(
            sampler=cell.sampler, loss=cell.loss, seed=cell.seed, out=str(cell.run_dir(root)), quiet=True
        )
        return load_config(None, values)


def load_study(path: str | Path, overrides: dict[str, Any] | None = None) -> StudySpec:
    """Read a study YAML: ``config`` (a train YAML) and/or ``train`` (keys), ``datasets``, ``grid``, ``seeds``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - {"config", "train", "datasets", "grid", "seeds"}
    if unknown:
        raise ConfigError(
            f"unknown study keys {sorted(unknown)} in {path}; expected config, train, datasets, grid, seeds"
        )
    train: dict[str, Any] = {}
    if "config" in data:
        base = (
            (path.parent / data["config"]) if not Path(data["config"]).is_absolute() else Path(data["config"])
        )
        if not base.is_file():
            base = Path(data["config"])
        train.update(yaml.safe_load(base.read_text()) or {})
    train.update(data.get("train") or {})
    train.update(overrides or {})
    load_config(None, train)  # validate the shared settings before any cell runs
    datasets = data.get("datasets") or [train.get("dataset", "retinamnist")]
    grid = data.get("grid") or PAPER_GRID
    for block in grid:
        if set(block) != {"samplers", "losses"}:
            raise ConfigError(f"each grid block needs exactly 'samplers' and 'losses', got {sorted(block)}")
    seeds = data.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = list(range(seeds))
    return StudySpec(train, datasets, grid, [int(s) for s in seeds])
