"""Scoring a split: metrics synced over ranks, per-sample outputs gathered in the original order."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from lightning_fabric import Fabric

from imbal.data import Augmentation, ImageDataset
from imbal.engine import run_dir as rd
from imbal.metrics import Evaluator


def shard(n: int, fabric: Fabric) -> torch.Tensor:
    return torch.arange(fabric.global_rank, n, fabric.world_size)


@torch.no_grad()
def evaluate_split(
    fabric: Fabric,
    model: torch.nn.Module,
    data: ImageDataset,
    aug: Augmentation,
    batch_size: int,
    *,
    collect: bool = False,
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Metrics over a split sharded across ranks (synced); optionally gather per-sample outputs."""
    model.eval()
    evaluator = Evaluator(data.num_classes, fabric.device)
    index = shard(len(data), fabric)
    outputs: dict[str, list[torch.Tensor]] = {"index": [], "probs": [], "features": []}
    inner = getattr(model, "module", model)
    for start in range(0, len(index), batch_size):
        idx = index[start : start + batch_size]
        x, y = data.batch(idx)
        x = aug.eval(x)
        with fabric.autocast():
            feats = inner.features(x)
            logits = inner.head(feats)
        evaluator.update(logits, y)
        if collect:
            outputs["index"].append(idx.to(fabric.device))
            outputs["probs"].append(logits.float().softmax(-1))
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
        for k in ("probs", "features"):
            local[k] = torch.cat([local[k], local[k].new_zeros((pad, local[k].shape[1]))])
        gathered = {k: fabric.all_gather(v).flatten(0, 1) for k, v in local.items()}
        keep = gathered["index"] >= 0
        local = {k: v[keep] for k, v in gathered.items()}
    order = torch.argsort(local["index"])
    return metrics, {k: v[order].cpu() for k, v in local.items()}


def write_predictions(out: Path, split: str, data: ImageDataset, outputs: dict[str, torch.Tensor]) -> None:
    probs = outputs["probs"].numpy()
    frame = pd.DataFrame({"index": outputs["index"].numpy(), "label": data.labels.cpu().numpy()})
    for k in range(probs.shape[1]):
        frame[f"prob_{k}"] = probs[:, k]
    frame["prediction"] = probs.argmax(1)
    rd.write_csv(out / f"predictions_{split}.csv", frame)
    rd.save_npz(
        out / f"features_{split}.npz", features=outputs["features"].numpy(), labels=data.labels.cpu().numpy()
    )
