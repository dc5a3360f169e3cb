"""Read a study folder once: a row per finished run, grouped into data sets, with every run's outputs.

:func:`collect_study` is what a report reads: one :class:`~imbal.study.report.data.DatasetReport`
per data set (runs that share a test set and their training settings). Every value read from a
run's ``metrics.json`` is checked here first (type, finiteness, the metric's range from
:data:`imbal.metrics.METRICS`, consistency of the confusion matrix with the test count), and every
``outputs_<split>.npz`` is read by :func:`load_outputs` alone: a tampered or damaged file is one
line naming the run and the key, never a mean of impossible numbers or a crash deep inside the
statistics, and nothing is written before all of it was read.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imbal.engine import run_dir as rd
from imbal.engine.config import NEUTRAL_KEYS, KeyRole, TrainConfig, keys_of
from imbal.errors import DataError, MissingFileError, RunFolderError
from imbal.losses import loss_sort_key
from imbal.metrics import METRICS
from imbal.naming import HELD_OUT
from imbal.samplers import SAMPLERS
from imbal.study.analysis.outputs import BASELINE, Config, SplitOutputs, StudyOutputs
from imbal.study.report.data import DatasetReport, Facts
from imbal.study.report.folds import is_cross_validated, pool_folds

# what a finding compares (loss, sampler), repeats (seed) or may differ without changing the
# numbers' meaning (thread count: reported in the findings' settings table instead); any other
# setting that differs splits the runs into separate data sets
COMPARED_KEYS = (*keys_of(KeyRole.VARIED, KeyRole.EXECUTION), *NEUTRAL_KEYS)
_TOLERANCE = 1e-9  # float sums may overshoot a range end by a rounding error


def loss_order(values: Iterable[str]) -> list[str]:
    return sorted(dict.fromkeys(values), key=loss_sort_key)


def sampler_order(values: Iterable[str]) -> list[str]:
    positions = {name: i for i, name in enumerate(SAMPLERS)}
    return sorted(dict.fromkeys(values), key=lambda s: (positions.get(s, len(positions)), s))


class _Checker:
    """Reads keys of one run's metrics.json; every failure is one RunFolderError naming run and key."""

    def __init__(self, run: Path, data: dict[str, Any]) -> None:
        self.file, self.data = run / rd.METRICS_FILE, data

    def fail(self, key: str, problem: str) -> RunFolderError:
        return RunFolderError(
            f"{self.file}: {key} {problem}; the file is damaged or was edited: delete the run folder to "
            "train it again"
        )

    def get(self, key: str) -> Any:
        value: Any = self.data
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise self.fail(key, "is missing")
            value = value[part]
        return value

    def number(self, key: str, low: float = -math.inf, high: float = math.inf) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise self.fail(key, f"must be finite, got {value!r}")
        if not low - _TOLERANCE <= value <= high + _TOLERANCE:
            raise self.fail(key, f"is {value!r}, outside its range [{low:g}, {high:g}]")
        return float(value)

    def integer(self, key: str, low: int = 0) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(key, f"must be an integer >= {low}, got {value!r}")
        return value

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {value!r}")
        return value

    def matrix(self, key: str, n_test: int) -> list[list[int]]:
        cm = self.get(key)
        ok = (
            isinstance(cm, list)
            and len(cm) >= 2
            and all(isinstance(r, list) and len(r) == len(cm) for r in cm)
        )
        if not ok or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for r in cm for v in r
        ):
            raise self.fail(key, "must be a square matrix of counts >= 0")
        if sum(map(sum, cm)) != n_test:
            raise self.fail(key, f"counts {sum(map(sum, cm))} samples, dataset.n.test says {n_test}")
        return cm


def _metric(c: _Checker, key: str, cm: list[list[int]]) -> float:
    m = METRICS[key]
    if key == "auroc" and c.get("test.auroc") is None and sum(1 for row in cm if sum(row)) < 2:
        return math.nan  # undefined with one class in the test split: null is the honest value
    if m.optional and key not in (c.data.get("test") or {}):
        return math.nan
    return c.number(f"test.{key}", m.low, m.high)


def _row(run: Path) -> dict:
    m = rd.read_json(run / rd.METRICS_FILE)
    c = _Checker(run, m)
    n_test = c.integer("dataset.n.test", 1)
    cm = c.matrix("test.confusion_matrix", n_test)
    classes = len(cm)
    f1 = c.get("test.f1_per_class")
    if not isinstance(f1, list) or len(f1) != classes:
        raise c.fail("test.f1_per_class", f"must be a list of {classes} numbers, got {f1!r}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in f1):
        raise c.fail("test.f1_per_class", f"must hold numbers in [0, 1], got {f1!r}")
    cfg, data = c.get("config"), c.get("dataset")
    minority = c.integer("dataset.minority_class")
    if minority >= classes:
        raise c.fail("dataset.minority_class", f"is {minority}, not one of the {classes} classes")
    names = data.get("class_names")
    if names is not None and (not isinstance(names, list) or len(names) != classes):
        raise c.fail("dataset.class_names", f"must be a list of {classes} names, got {names!r}")
    row = {
        "label": rd.cell_label(run),
        "sampler": c.text("config.sampler"),
        "loss": c.text("config.loss"),
        "seed": c.integer("config.seed"),
        "threads": cfg.get("threads"),
        "run_dir": str(run),
        "best_epoch": m.get("best_epoch"),
        "n_test": n_test,
        "synthetic": bool(data.get("synthetic", False)),
        "class_names": names,
        "minority_class": minority,
        "train_counts": data.get("train_counts"),
        "test_fingerprint": data.get("test_fingerprint", "unknown"),
        "settings": settings_fingerprint(cfg),
        "f1_per_class": f1,
        "confusion_matrix": cm,
        "wall_seconds": m.get("timing", {}).get("wall_seconds"),
        "config": cfg,
        "dataset_info": data,
        "select_metric": m.get("select_metric"),
    }
    if rd.is_fold_run(cfg):  # a fold run: which fold it tested (runs.csv lists it)
        row["cv_fold"] = rd.fold_of(cfg)
    for k in METRICS:
        row[k] = _metric(c, k, cm)
    return row


def training_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a run's numbers depend on, apart from what a finding compares (``COMPARED_KEYS``)."""
    full = {**TrainConfig().to_dict(), **config}  # a key added since a run was trained has its default
    return {k: v for k, v in full.items() if k not in COMPARED_KEYS}


def settings_fingerprint(config: dict[str, Any]) -> str:
    text = json.dumps(training_settings(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _settings_names(grp: pd.DataFrame) -> dict[str, str]:
    """Per settings fingerprint of one data set, what sets it apart: "epochs 3" (the keys that vary)."""
    # runs of one fingerprint have the same training settings, by the fingerprint's definition
    by_print = {fp: training_settings(config) for fp, config in zip(grp.settings, grp.config)}
    keys = sorted(
        {k for s in by_print.values() for k in s if len({_short(t[k]) for t in by_print.values()}) > 1}
    )
    names = {}
    for fp, settings in by_print.items():
        shown = ", ".join(f"{k} {_short(settings[k])}" for k in keys[:3]) + (", ..." if len(keys) > 3 else "")
        names[fp] = f"trained with {shown}"
    return names


def collect_runs(root: str | Path) -> pd.DataFrame:
    """One row per finished run under ``root``, with a ``dataset`` key that never pools unlike runs.

    Runs are grouped by their cell's data-set label, the fingerprint of their test split and the
    fingerprint of their training settings (``settings``: everything but the loss, sampler, seed,
    thread count and presentation keys). When one label holds runs on different test sets (two
    synthetic grids of different size) or trained with different settings (a study edited between
    runs: epochs 3, then 4), each becomes its own data set in the report, named by why it was split,
    and nothing is paired or averaged across them. ``split_by_settings`` lists the labels split so.
    """
    root = Path(root)
    rows = [_row(run) for run in rd.cell_dirs(root) if rd.is_finished(run)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise MissingFileError(f"no finished runs under {root / rd.RUNS} (run `imbal grid` first)")
    frame["dataset"] = frame.label
    # the folds of a cross-validation pool test on different images by design: they are one data set
    folded = frame.config.map(rd.is_fold_run)
    frame.loc[folded, "test_fingerprint"] = "pooled folds"
    for label, grp in frame.groupby("label"):
        prints = sorted(grp.test_fingerprint.unique())
        if len(prints) > 1:
            for fp in prints:
                sel = (frame.label == label) & (frame.test_fingerprint == fp)
                sizes = "/".join(str(n) for n in sorted(frame.loc[sel, "n_test"].unique()))
                frame.loc[sel, "dataset"] = f"{label} (test set {fp[:6]}, n={sizes})"
    split: list[str] = []
    for name, grp in frame.groupby("dataset"):
        if grp.settings.nunique() > 1:
            split.append(str(name))
            for fp, why in _settings_names(grp).items():
                sel = (frame.dataset == name) & (frame.settings == fp)
                frame.loc[sel, "dataset"] = f"{name} ({why})"
    frame.attrs["split_by_settings"] = split
    return frame


def failed_runs(root: str | Path) -> list[str]:
    return [str(run) for run in rd.cell_dirs(Path(root)) if (run / rd.ERROR).is_file()]


def unfinished_runs(root: str | Path) -> list[str]:
    """Cells that started (hold a run's files) but have neither metrics.json nor error.txt: killed, or
    training right now (then they hold ``run.lock``)."""
    out = []
    for run in rd.cell_dirs(Path(root)):
        if rd.is_finished(run) or (run / rd.ERROR).is_file() or not rd.run_contents(run):
            continue
        out.append(f"{run} (training now)" if (run / rd.LOCK).is_file() else str(run))
    return out


# ---------------------------------------------------------------- outputs and data sets


def load_outputs(run: Path, split: str, features: bool = False) -> dict[str, np.ndarray]:
    """A finished run's outputs (:func:`imbal.engine.run_dir.read_outputs`, their one reader)."""
    return rd.read_outputs(run, split, features)


def read_outputs(rows: pd.DataFrame, facts: Facts, baseline: Config = BASELINE) -> StudyOutputs:
    """The validation and test outputs of one data set's runs, in row order (their labels must agree)."""
    splits = {}
    for split in HELD_OUT:
        folders = [Path(p) for p in rows.run_dir]
        loaded = [load_outputs(folder, split) for folder in folders]
        labels = loaded[0]["labels"]
        for folder, out in zip(folders, loaded):
            if not np.array_equal(out["labels"], labels):
                raise DataError(
                    f"{folder}: its {split} labels differ from {folders[0]}'s; runs of different data sets "
                    "cannot be compared (report them from separate folders)"
                )
        logits = np.stack([out["logits"] for out in loaded])
        splits[split] = SplitOutputs(labels.astype(np.int64), logits.argmax(-1), logits)
    runs = [((r.sampler, r.loss), int(r.seed)) for r in rows.itertuples()]
    return StudyOutputs(
        runs, splits["val"], splits["test"], facts.num_classes, facts.minority, baseline, facts.class_names
    )


@dataclass
class Study:
    """A study folder as a report reads it: every finished run, and its data sets."""

    root: Path
    runs: pd.DataFrame  # every finished run (:func:`collect_runs`)
    datasets: list[DatasetReport]

    @property
    def split_by_settings(self) -> list[str]:
        """Labels whose runs were split into data sets by their training settings."""
        return list(self.runs.attrs.get("split_by_settings") or [])


def collect_study(root: str | Path, baseline: Config = BASELINE) -> Study:
    """Every finished run of ``root`` and every data set with its facts and outputs, read and checked once."""
    root = Path(root)
    runs = collect_runs(root)
    datasets = []
    for key, rows in runs.groupby("dataset", sort=True):
        rows = rows.reset_index(drop=True)
        if is_cross_validated(rows):
            classes = max(len(f1) for f1 in rows.f1_per_class)
            rows, outputs, left = pool_folds(rows, load_outputs, classes, baseline)
            rows.attrs["left_out_folds"] = left
            datasets.append(DatasetReport(str(key), Facts.of(rows, str(key)), rows, outputs))
            continue
        facts = Facts.of(rows, str(key))
        datasets.append(DatasetReport(str(key), facts, rows, read_outputs(rows, facts, baseline)))
    return Study(root, runs, datasets)
