"""Small fake studies for the report's unit tests: run folders with stored outputs and a complete
``metrics.json`` each (what ``imbal grid`` leaves), read back through the report's own reader. No training.

A configuration's runs predict about a given share of each class right (its per-class recall, on
validation and test alike unless given per split; one image more or less per seed and class); a
wrong prediction goes to another class at random. Each run's test metrics are computed from its own test confusion matrix, so every number a
section shows can be checked against the runs it was given.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from imbal.engine import run_dir as rd
from imbal.engine.config import TrainConfig
from imbal.metrics import brier_score, expected_calibration_error, metrics_from_confusion
from imbal.study.analysis.decision import Decision, decide
from imbal.study.analysis.outputs import Config, softmax
from imbal.study.analysis.plan import Plan
from imbal.study.report.collect import collect_study
from imbal.study.report.data import DatasetReport
from imbal.study.report.sections.section import Section

LABEL = "fake"
CLASS_NAMES = ["normal", "mild", "severe"]
TRAIN_COUNTS = [600, 200, 60]  # the rarest training class: "severe" (2)
MINORITY = 2
VAL_COUNTS = [120, 50, 30]
TEST_COUNTS = [180, 80, 40]
SOURCE = "/data/private/fake.npz"  # a report names the file only, never the machine's path

BASELINE: Config = ("uniform", "ce")
BETTER: Config = ("oversample", "ce+f1")  # planted: far better on every class but the majority
SAME: Config = ("uniform", "focal")  # drawn like the baseline

BASE_RECALL = [0.9, 0.5, 0.3]
GOOD_RECALL = [0.85, 0.8, 0.8]
# the default study: a clearly better configuration, and one like the baseline
PLANTED = {BASELINE: BASE_RECALL, BETTER: GOOD_RECALL, SAME: BASE_RECALL}

Recall = Sequence[float] | dict[str, Sequence[float]]  # per class, or per split ("val", "test") and class


def labels_of(counts: Sequence[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def fake_outputs(
    labels: np.ndarray, recall: Sequence[float], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Labels, logits whose argmax is right on about ``recall[k]`` of class k, and 4-d features."""
    c = len(recall)
    right = np.zeros(len(labels), dtype=bool)
    for k, r in enumerate(
        recall
    ):  # round(recall x class size) right, give or take one (recall 0 and 1 exact)
        members = np.flatnonzero(labels == k)
        jitter = rng.integers(-1, 2) if 0 < r < 1 else 0
        hits = int(np.clip(round(r * len(members)) + jitter, 0, len(members)))
        right[rng.choice(members, hits, replace=False)] = True
    wrong = (labels + rng.integers(1, c, len(labels))) % c
    preds = np.where(right, labels, wrong)
    logits = rng.normal(0, 0.5, (len(labels), c))
    logits[np.arange(len(labels)), preds] = logits.max(1) + 0.5 + rng.exponential(1.0, len(labels))
    features = rng.normal(0, 0.3, (len(labels), 4)) + 2.0 * np.eye(4)[labels % 4]
    return {
        "labels": labels.astype(np.int64),
        "logits": logits.astype(np.float32),
        "features": features.astype(np.float32),
    }


def split_metrics(labels: np.ndarray, logits: np.ndarray, minority: int = MINORITY) -> dict:
    """What a run's metrics.json holds for a split: the confusion matrix's metrics and the score-based ones."""
    c = logits.shape[1]
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (labels, logits.argmax(1)), 1)
    out = metrics_from_confusion(torch.from_numpy(cm), minority)
    probs = softmax(logits)
    t_probs, t_labels = torch.from_numpy(probs), torch.from_numpy(labels)
    out["auroc"] = float(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
    out["ece"] = expected_calibration_error(t_probs, t_labels)
    out["brier"] = brier_score(t_probs, t_labels)
    out["confusion_matrix"] = cm.tolist()
    return out


def dataset_info(
    val_counts: Sequence[int] = VAL_COUNTS,
    test_counts: Sequence[int] = TEST_COUNTS,
    synthetic: bool = False,
    class_names: list[str] | None = CLASS_NAMES,
    train_counts: Sequence[int] = TRAIN_COUNTS,
) -> dict:
    return {
        "name": "FakeMNIST",
        "source": SOURCE,
        "synthetic": synthetic,
        "class_names": class_names,
        "train_counts": list(train_counts),
        "test_counts": list(test_counts),
        "n": {"train": sum(train_counts), "val": sum(val_counts), "test": sum(test_counts)},
        "minority_class": int(np.argmin(train_counts)),
        "test_fingerprint": "f" * 12,
    }


def write_run(
    root: Path,
    config: Config,
    seed: int,
    recall: Recall,
    select_metric: str = "balanced_accuracy",
    val_counts: Sequence[int] = VAL_COUNTS,
    test_counts: Sequence[int] = TEST_COUNTS,
    draw: Config | None = None,
    **settings: object,
) -> Path:
    """One finished run folder of cell ``(config, seed)``: outputs_val/test.npz and metrics.json.

    ``draw``: take another configuration's random draws (same recall: the same predictions).
    """
    run = rd.cell_dir(root, LABEL, config[0], config[1], seed)
    metrics: dict = {}
    for split, counts in (("val", val_counts), ("test", test_counts)):
        per_class = recall[split] if isinstance(recall, dict) else recall
        out = fake_outputs(labels_of(counts), per_class, _rng(draw or config, seed, split))
        rd.save_npz(run / rd.outputs_file(split), **out)
        metrics[split] = split_metrics(out["labels"], out["logits"])
    cfg = {**TrainConfig().to_dict(), "sampler": config[0], "loss": config[1], "seed": seed}
    cfg.update(select_metric=select_metric, **settings)
    metrics.update(
        config=cfg,
        dataset=dataset_info(val_counts, test_counts),
        best_epoch=1,
        select_metric=select_metric,
        timing={"wall_seconds": 1.0},
    )
    (run / rd.METRICS_FILE).write_text(json.dumps(metrics))
    return run


def fake_report(
    root: Path, recalls: dict[Config, Recall] | None = None, seeds: Sequence[int] = (0, 1, 2), **kw: object
) -> DatasetReport:
    """A study folder of every configuration x seed, read as a report reads it (one data set)."""
    for config, recall in (PLANTED if recalls is None else recalls).items():
        for seed in seeds:
            write_run(root, config, seed, recall, **kw)  # type: ignore[arg-type]
    (data,) = collect_study(root).datasets
    return data


def section(
    tmp_path: Path, data: DatasetReport, decision: Decision | None = None, plan: Plan | None = None
) -> Section:
    return Section(data, plan or Plan(), decision, tmp_path / "tables", tmp_path / "figures")


def decided(tmp_path: Path, data: DatasetReport, plan: Plan | None = None) -> Section:
    """A section with the decision of its data set's outputs."""
    plan = plan or Plan()
    return section(tmp_path, data, decide(data.outputs, plan), plan)
