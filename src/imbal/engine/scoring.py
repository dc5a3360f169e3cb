"""Scoring a split: metrics synced over ranks, per-sample outputs gathered in the original order."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from lightning_fabric import Fabric

from imbal.calibration import TEMPERATURE_RANGE, calibration_scores, fit_temperature
from imbal.data import Augmentation
from imbal.data.stream import AnyDataset, iterate_batches
from imbal.engine import run_dir as rd
from imbal.errors import RunFolderError
from imbal.evaluator import Evaluator
from imbal.posthoc import DEFAULT_TAUS, fit_tau, tuned_for


def shard(n: int, fabric: Fabric) -> torch.Tensor:
    return torch.arange(fabric.global_rank, n, fabric.world_size)


@torch.no_grad()
def evaluate_split(
    fabric: Fabric,
    model: torch.nn.Module,
    data: AnyDataset,
    aug: Augmentation,
    batch_size: int,
    *,
    minority: int | None = None,
    collect: bool = False,
    ordinal: bool = False,
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Metrics over a split sharded across ranks (synced); optionally gather per-sample outputs.

    ``minority`` (the rarest training class) adds ``minority_f1`` to the metrics, ``ordinal`` (ordered
    grades) ``qwk``. The outputs are ``index``, ``logits`` (float32) and ``features``, in the split's order.
    """
    model.eval()
    evaluator = Evaluator(data.num_classes, fabric.device, minority, ordinal)
    chunks = list(shard(len(data), fabric).split(batch_size))
    outputs: dict[str, list[torch.Tensor]] = {"index": [], "logits": [], "features": []}
    inner: Any = getattr(model, "module", model)  # Fabric's wrapper holds our Classifier
    for idx, (x, y) in zip(chunks, iterate_batches(data, chunks, fabric.device)):
        x = aug.eval(x)
        with fabric.autocast():
            feats = inner.features(x)
            logits = inner.head(feats)
        evaluator.update(logits, y)
        if collect:
            outputs["index"].append(idx.to(fabric.device))
            outputs["logits"].append(logits.float())
            outputs["features"].append(feats.float())
    metrics = evaluator.compute()
    if not collect:
        return metrics, None
    local = {k: torch.cat(v) for k, v in outputs.items()}
    if fabric.world_size > 1:
        # pad to a common length, gather, then put samples back in their original order
        per_rank = math.ceil(len(data) / fabric.world_size)
        pad = per_rank - len(local["index"])
        local["index"] = torch.cat([local["index"], local["index"].new_full((pad,), -1)])
        for k in ("logits", "features"):
            local[k] = torch.cat([local[k], local[k].new_zeros((pad, local[k].shape[1]))])
        gathered = {k: torch.as_tensor(fabric.all_gather(v)).flatten(0, 1) for k, v in local.items()}
        keep = gathered["index"] >= 0
        local = {k: v[keep] for k, v in gathered.items()}
    order = torch.argsort(local["index"])
    return metrics, {k: v[order].cpu() for k, v in local.items()}


def write_outputs(out: Path, split: str, data: AnyDataset, outputs: dict[str, torch.Tensor]) -> None:
    """``predictions_<split>.csv`` (labels, probabilities, predictions) and ``outputs_<split>.npz``
    (index, labels, logits, penultimate features): logits let a report re-decide post hoc."""
    logits = outputs["logits"]
    probs = logits.softmax(-1).numpy()
    labels = data.labels.cpu().numpy()
    frame = pd.DataFrame({"index": outputs["index"].numpy(), "label": labels})
    # a cross-validation fold: where each image sits in the pool, so a report can put folds together
    pool = {} if data.pool_index is None else {rd.POOL_INDEX: data.pool_index.cpu().numpy()}
    frame = frame.assign(**pool)
    for k in range(probs.shape[1]):
        frame[f"prob_{k}"] = probs[:, k]
    frame["prediction"] = probs.argmax(1)
    rd.write_csv(out / rd.predictions_file(split), frame)
    rd.save_npz(
        out / rd.outputs_file(split),
        index=outputs["index"].numpy(),
        labels=labels,
        logits=logits.numpy(),
        features=outputs["features"].numpy(),
        **pool,
    )


def posthoc_record(
    val_logits: torch.Tensor, val_labels: torch.Tensor, train_counts: torch.Tensor, select_metric: str
) -> dict[str, Any]:
    """The two free post-hoc options, fit on validation: logit adjustment's tau and a temperature.

    tau is chosen for the run's selection metric when that is a confusion-matrix metric, else for
    balanced accuracy (as the report's post-hoc column); the temperature minimises the validation NLL.
    What ``imbal predict --posthoc`` applies, stored as ``posthoc.json`` when a run finishes.
    """
    metric = tuned_for(select_metric)
    logits, labels = val_logits.float().cpu(), val_labels.long().cpu()
    tau = fit_tau(logits, labels, train_counts, metric)
    temp = fit_temperature(logits, labels)
    plain, scaled = calibration_scores(logits, labels), calibration_scores(logits, labels, temp.temperature)
    return {
        "tau": tau.tau,
        "tau_metric": metric,
        "tau_validation_score": tau.score,
        "train_counts": [int(v) for v in train_counts.tolist()],
        "temperature": temp.temperature,
        "validation": {
            "n": temp.n,
            "nll": temp.nll_before,
            "nll_scaled": temp.nll,
            "ece": plain["ece"],
            "ece_scaled": scaled["ece"],
            "brier": plain["brier"],
            "brier_scaled": scaled["brier"],
        },
    }


def _posthoc_value(record: dict[str, Any], key: str, low: float, high: float, path: Path) -> None:
    value = record.get(key)
    if not _in_range(value, low, high):
        raise RunFolderError(
            f"{path}: {key} is {value!r}, not a number in [{low:g}, {high:g}] (the range a fit gives); the file "
            f"is damaged or was edited: delete it, and --posthoc fits it again from {rd.outputs_file('val')}"
        )


def _in_range(value: object, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and low <= value <= high


def check_posthoc(record: dict[str, Any], path: Path, num_classes: int) -> dict[str, Any]:
    """A ``posthoc.json`` read back: temperature and tau within the ranges a fit gives, one count per class."""
    _posthoc_value(record, "temperature", *TEMPERATURE_RANGE, path)
    _posthoc_value(record, "tau", float(DEFAULT_TAUS.min()), float(DEFAULT_TAUS.max()), path)
    counts = record.get("train_counts")
    if (
        not isinstance(counts, list)
        or len(counts) != num_classes
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
        or not sum(counts)
    ):
        raise RunFolderError(
            f"{path}: train_counts is {counts!r}, not {num_classes} training counts >= 0; the file is damaged or "
            "was edited: delete it to fit it again"
        )
    if not isinstance(record.get("tau_metric"), str):
        raise RunFolderError(f"{path}: tau_metric is {record.get('tau_metric')!r}, not a metric name")
    return record
