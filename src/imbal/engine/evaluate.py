"""``imbal evaluate``: rebuild a model from ``best.ckpt`` alone and score any split or data set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric

from imbal.data import Augmentation, load_dataset
from imbal.engine import run_dir as rd
from imbal.engine.scoring import evaluate_split, write_predictions
from imbal.models import Classifier


def load_model(checkpoint: str | Path) -> tuple[Classifier, dict[str, Any]]:
    """The model of a checkpoint, rebuilt from the file alone (no config file, no code edits)."""
    ckpt = rd.load_torch(Path(checkpoint))
    model = Classifier(**ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def evaluate_run(
    run_dir: str | Path, *, dataset: Any = None, split: str = "test", out: str | Path | None = None
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not (run_dir / rd.BEST).is_file():
        raise FileNotFoundError(f"{run_dir} has no {rd.BEST}; train it first")
    model, ckpt = load_model(run_dir / rd.BEST)
    cfg = ckpt["config"]
    splits = load_dataset(dataset if dataset is not None else cfg["dataset"], size=cfg.get("size", 28))
    data = splits[split]
    mc = model.config
    if (data.spatial_dims, data.in_channels) != (mc["spatial_dims"], mc["in_channels"]):
        raise ValueError(
            f"data has spatial_dims={data.spatial_dims}, in_channels={data.in_channels}; the model expects "
            f"spatial_dims={mc['spatial_dims']}, in_channels={mc['in_channels']}"
        )
    fabric = Fabric(accelerator="cuda" if torch.cuda.is_available() else "cpu", devices=1)
    data = data.to(fabric.device)
    model = model.to(fabric.device)
    aug = Augmentation(data.spatial_dims, enabled=False, crop_size=cfg.get("crop_size") or None)
    metrics, outputs = evaluate_split(fabric, model, data, aug, cfg.get("eval_batch_size", 500), collect=True)
    out = Path(out) if out else run_dir
    write_predictions(out, split, data, outputs)
    result = {
        "split": split,
        "dataset": data.name,
        "source": splits.source,
        "metrics": metrics,
        "epoch": ckpt["epoch"],
    }
    rd.write_json(out / f"metrics_{split}.json", result)
    return result
