"""Study configuration: which cells (data set x sampler x loss x seed) a grid holds, with which settings.

A study YAML::

    config: retinamnist.yaml        # shared train settings (optional)
    train: {epochs: 18}             # shared overrides (optional)
    datasets:                       # a data-set spec, or an entry with its own settings
      - retinamnist
      - {config: vesselmnist3d.yaml, train: {epochs: 60}, label: vessel}
    grid: [{samplers: [uniform, oversample], losses: [ce, ce+mcc]}]   # default: the paper's 15
    seeds: 5                        # or a list of seeds
    cv: {folds: 5, repeats: 1}      # cross-validation over all labelled images (instead of seeds)
    primary_metric: balanced_accuracy   # the analysis plan (imbal.study.analysis.plan), fixed before the runs
    equivalence_margin: 0.02
    harm_margin: 0.02
    cluster: {partition: gpu, time_min: 240, gpus_per_cell: 1}   # jobs of --executor slurm|local

Settings are layered: the study's ``config`` <- its ``train`` <- an entry's ``config`` <- the entry's
``train`` <- command-line overrides. Every name and value is checked before any cell runs, and two
entries never share a label (their cells would share folders).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from imbal.engine import run_dir as rd
from imbal.engine.config import TrainConfig, config_differences, load_config, read_yaml_mapping
from imbal.errors import ConfigError
from imbal.study.analysis.plan import KEYS as PLAN_KEYS
from imbal.study.analysis.plan import Plan, plan_from

# the study's 15 configurations (Scholz et al., MIDL 2024, tables 1-2; docs/method.md, "Study design")
PAPER_GRID = [
    {"samplers": ["uniform", "oversample"], "losses": ["ce", "ce+f1", "ce+mcc", "f1", "focal", "mcc"]},
    {"samplers": ["weights"], "losses": ["ce", "ce+f1", "ce+mcc"]},
]
STUDY_KEYS = ("config", "train", "datasets", "grid", "seeds", "cv", "budget", "cluster", *PLAN_KEYS)
CV_KEYS = ("folds", "repeats", "over")
# config keys the grid sets for every cell itself (its folder, and no progress bar): not the user's
SET_BY_THE_GRID = ("out", "quiet")
ENTRY_KEYS = ("config", "train", "dataset", "label")


@dataclass(frozen=True)
class Cell:
    dataset: str  # the entry's label, used in paths and tables
    sampler: str
    loss: str
    seed: int
    # the entry's train settings; labels are unique per study, so they need not take part in equality
    settings: dict = field(default_factory=dict, compare=False, hash=False)
    fold: int | None = None  # a cross-validation cell's test fold (its repeat is its seed)

    @property
    def key(self) -> str:
        fold = "" if self.fold is None else f"/fold{self.fold}"
        return f"{self.dataset}/{self.sampler}/{self.loss}/seed{self.seed}{fold}"

    def run_dir(self, root: Path) -> Path:
        return rd.cell_dir(root, self.dataset, self.sampler, self.loss, self.seed, self.fold)


@dataclass(frozen=True)
class ClusterSettings:
    """The study file's ``cluster:`` block: what each cell's job asks the scheduler for."""

    partition: str | None = None
    time_min: int = 240
    gpus_per_cell: int = 0
    cpus_per_cell: int = 2
    mem_gb: float = 16.0
    array_parallelism: int = 8  # jobs of one batch running at once

    @classmethod
    def from_mapping(cls, raw: Any, where: str) -> ClusterSettings:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ConfigError(
                f"cluster in {where} must be a mapping like {{partition: gpu, time_min: 240}}, got {raw!r}"
            )
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise ConfigError(f"cluster in {where} has unknown keys {unknown}; expected {', '.join(names)}")
        for key in ("time_min", "cpus_per_cell", "array_parallelism"):
            if key in raw and (not isinstance(raw[key], int) or raw[key] < 1):
                raise ConfigError(f"cluster.{key} in {where} must be an integer >= 1, got {raw[key]!r}")
        if "gpus_per_cell" in raw and (not isinstance(raw["gpus_per_cell"], int) or raw["gpus_per_cell"] < 0):
            raise ConfigError(
                f"cluster.gpus_per_cell in {where} must be an integer >= 0, got {raw['gpus_per_cell']!r}"
            )
        if "mem_gb" in raw and (not isinstance(raw["mem_gb"], (int, float)) or raw["mem_gb"] <= 0):
            raise ConfigError(f"cluster.mem_gb in {where} must be a number > 0, got {raw['mem_gb']!r}")
        return cls(**raw)

    def parameters(self, executor: str) -> dict[str, Any]:
        """submitit's parameters for one cell's job."""
        common = {
            "timeout_min": self.time_min,
            "gpus_per_node": self.gpus_per_cell,
            "nodes": 1,
            "tasks_per_node": 1,
        }
        if executor == "local":
            return common
        slurm: dict[str, Any] = {
            "cpus_per_task": self.cpus_per_cell,
            "mem_gb": self.mem_gb,
            "slurm_array_parallelism": self.array_parallelism,
            "slurm_signal_delay_s": 120,  # time to write a checkpoint before preemption or the time limit
        }
        if self.partition:
            slurm["slurm_partition"] = self.partition
        return {**common, **slurm}


@dataclass
class StudySpec:
    entries: dict[str, dict[str, Any]]  # label -> resolved train settings (dataset included)
    grid: list[dict[str, list[str]]]
    seeds: list[int]
    plan: Plan = field(
        default_factory=Plan
    )  # the analysis, fixed before the runs (imbal.study.analysis.plan)
    grid_given: bool = True  # False: the study file named no grid (the paper's was used)
    budget: dict[str, Any] = field(default_factory=dict)  # `imbal recommend` limits (imbal.study.race.runner)
    seeds_given: bool = False  # the study file named its seeds (a race takes them as its seed limit)
    cluster: ClusterSettings = field(
        default_factory=ClusterSettings
    )  # each cell's job (imbal.study.run.cluster)
    folds: int = 0  # > 0: a cross-validated study; its seeds are its repeats (each a fresh partition)

    def cells(self) -> list[Cell]:
        out: list[Cell] = []
        folds = list(range(self.folds)) if self.folds else [None]
        for label, settings in self.entries.items():
            for block in self.grid:
                for sampler in block["samplers"]:
                    for loss in block["losses"]:
                        for seed in self.seeds:
                            out.extend(Cell(label, sampler, loss, seed, settings, f) for f in folds)
        # a configuration listed in two blocks is one cell
        return list(dict.fromkeys(out))

    def config_for(self, cell: Cell, root: Path, **extra: Any) -> TrainConfig:
        """The cell's full config: its entry's settings, its sampler, loss and seed, and its folder (quiet)."""
        values = dict(cell.settings)
        values.update(sampler=cell.sampler, loss=cell.loss, seed=cell.seed)
        if cell.fold is not None:  # repeat r is partition r, trained with seed r
            values.update(cv_fold=cell.fold, cv_repeat=cell.seed)
        values.update(zip(SET_BY_THE_GRID, (str(cell.run_dir(root)), True)))
        values.update(extra)
        return load_config(None, values)

    def changed_settings(self, cell: Cell, stored: dict[str, Any], root: Path) -> list[str]:
        """Keys a finished cell (its stored config) was trained with other values of than the study asks now."""
        wanted = self.config_for(cell, root, threads=stored.get("threads", 0)).to_dict()
        return [k for k in config_differences(stored, wanted) if k in stored]


def _relative(path: Any, base: Path) -> Path:
    p = Path(str(path))
    return p if p.is_absolute() or not (base / p).is_file() else base / p


def _layer(base: Path, block: dict[str, Any], where: str) -> dict[str, Any]:
    """``config`` (a train YAML, relative to ``base``) then ``train`` of one block, as plain values."""
    values: dict[str, Any] = {}
    if block.get("config") is not None:
        values.update(read_yaml_mapping(_relative(block["config"], base), f"train config of {where}"))
    train = block.get("train") or {}
    if not isinstance(train, dict):
        raise ConfigError(f"'train' of {where} must be a mapping of config keys, got {train!r}")
    values.update(train)
    return values


def _entry(raw: Any, index: int) -> dict[str, Any]:
    """A ``datasets`` item as ``{config, train, dataset, label}``."""
    if isinstance(raw, dict) and "kind" not in raw:
        unknown = sorted(set(raw) - set(ENTRY_KEYS))
        if unknown:
            raise ConfigError(
                f"datasets[{index}] has unknown keys {unknown}; an entry takes {', '.join(ENTRY_KEYS)} "
                "(or is a data-set mapping with 'kind')"
            )
        return dict(raw)
    if isinstance(raw, dict):  # a data-set mapping; its `label` names the entry
        return {"dataset": {k: v for k, v in raw.items() if k != "label"}, "label": raw.get("label")}
    return {"dataset": raw}


def _grid(data: dict[str, Any], where: str) -> list[dict[str, list[str]]]:
    if "grid" not in data:
        return PAPER_GRID
    grid = data["grid"]
    if not isinstance(grid, list) or not grid:
        raise ConfigError(
            f"grid in {where} must be a non-empty list of {{samplers, losses}} blocks, got {grid!r}"
        )
    for block in grid:
        if not isinstance(block, dict) or set(block) != {"samplers", "losses"}:
            raise ConfigError(f"each grid block needs exactly 'samplers' and 'losses', got {block!r}")
        for key in ("samplers", "losses"):
            if not isinstance(block[key], list) or not block[key]:
                raise ConfigError(f"grid block {key} must be a non-empty list, got {block[key]!r}")
    return grid


def _seeds(data: dict[str, Any], where: str) -> list[int]:
    seeds = data.get("seeds", [0])
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)):
        raise ConfigError(f"seeds in {where} must be a count (e.g. 5) or a list of ints, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"seeds in {where} must be >= 1, got {seeds}")
        return list(range(seeds))
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds in {where} must be a non-empty list of ints, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds in {where} repeat a seed: {seeds}")
    return list(seeds)


def _cv(data: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``cv`` block as train settings (cv_folds, cv_over) and its repeats; {} without one."""
    cv = data.get("cv")
    if cv is None:
        return {}
    if not isinstance(cv, dict) or "folds" not in cv:
        raise ConfigError(f"cv in {where} must be a mapping like {{folds: 5, repeats: 1}}, got {cv!r}")
    unknown = sorted(set(cv) - set(CV_KEYS))
    if unknown:
        raise ConfigError(
            f"cv in {where} has unknown keys {unknown}; expected {', '.join(CV_KEYS)} (patient groups come from "
            "the data set's group_column)"
        )
    if "seeds" in data:
        raise ConfigError(
            f"{where} has both seeds and cv: a cross-validated study's seeds are its repeats (cv.repeats)"
        )
    folds = cv["folds"]
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 3:
        raise ConfigError(
            f"cv.folds in {where} must be an integer >= 3 (a test, a validation, a training fold), got {folds!r}"
        )
    repeats = cv.get("repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"cv.repeats in {where} must be an integer >= 1, got {repeats!r}")
    values = {"cv_folds": cv["folds"], "repeats": repeats}
    if "over" in cv:
        values["cv_over"] = cv["over"]
    return values


def _check_cv_settings(entries: dict[str, dict[str, Any]], cv: dict[str, Any], path: Path) -> None:
    """Cross-validation is the study's cv block's: no entry sets its own folds, fold or repeat."""
    by_hand = sorted({k for v in entries.values() for k in ("cv_fold", "cv_repeat") if k in v})
    if by_hand:
        raise ConfigError(
            f"{path} sets {by_hand}; the grid sets each cell's fold and repeat (give a cv: block)"
        )
    if not cv and any(v.get("cv_folds") for v in entries.values()):
        raise ConfigError(
            f"{path} sets cv_folds without a cv: block; a cross-validated study is `cv: {{folds: 5, repeats: 1}}` "
            "(its cells are then one per fold)"
        )
    if cv and any(v.get("cv_folds") != cv["cv_folds"] for v in entries.values()):
        raise ConfigError(
            f"an entry of {path} sets its own cv_folds; the study's cv block sets them for every entry"
        )


def load_study(path: str | Path, overrides: dict[str, Any] | None = None) -> StudySpec:
    """Read and check a study YAML (see the module doc); ``overrides`` apply to every cell."""
    path = Path(path)
    data = read_yaml_mapping(path, "study file")
    unknown = sorted(set(data) - set(STUDY_KEYS))
    if unknown:
        raise ConfigError(f"unknown study keys {unknown} in {path}; expected {', '.join(STUDY_KEYS)}")
    shared = _layer(path.parent, data, str(path))
    cv = _cv(data, str(path))
    repeats = cv.pop("repeats", None)
    shared.update(cv)
    raw_entries = data.get("datasets") or [shared.get("dataset", TrainConfig().dataset)]
    if not isinstance(raw_entries, list):
        raise ConfigError(f"datasets in {path} must be a list, got {raw_entries!r}")
    grid = _grid(data, str(path))
    entries: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(raw_entries):
        entry = _entry(raw, i)
        values = {**shared, **_layer(path.parent, entry, f"datasets[{i}] of {path}")}
        if entry.get("dataset") is not None:
            values["dataset"] = entry["dataset"]
        values.update(overrides or {})
        dataset = values.get("dataset", TrainConfig().dataset)
        label = rd.safe_name(str(entry["label"])) if entry.get("label") else rd.dataset_label(dataset)
        if label in entries:
            raise ConfigError(
                f"datasets[{i}] of {path} has the label {label!r} of an earlier entry; give each entry its "
                "own 'label' (their cells would share folders)"
            )
        load_config(None, values)  # every entry's settings are checked before any cell runs
        for block in grid:
            for sampler in block["samplers"]:
                for loss in block["losses"]:
                    load_config(None, {**values, "sampler": sampler, "loss": loss})
        entries[label] = values
    budget = data.get("budget") or {}
    if not isinstance(budget, dict):
        raise ConfigError(
            f"budget in {path} must be a mapping like {{max_runs: 60, max_seeds: 5}}, got {budget!r}"
        )
    _check_cv_settings(entries, cv, path)
    return StudySpec(
        entries,
        grid,
        list(range(repeats)) if repeats else _seeds(data, str(path)),
        plan_from(data, str(path)),
        "grid" in data,
        dict(budget),
        "seeds" in data,
        ClusterSettings.from_mapping(data.get("cluster"), str(path)),
        cv.get("cv_folds", 0),
    )
