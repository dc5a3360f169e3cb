"""``imbal predict``: a finished run's model on new, unlabelled images, streamed in batches.

The model is rebuilt from ``best.ckpt`` alone and preprocesses exactly as ``imbal evaluate`` does
(the loaders' decoding, then the run's evaluation transform: centre crop when it trained with
crops, no augmentation), so the same images get the same probabilities. Inputs are decoded one
batch ahead of the model in a background thread; only two batches are ever in memory.

``posthoc``: the probabilities are those of ``softmax(logits / T)`` and ``prediction_posthoc`` is
``argmax(logits - tau * log(training prior))``, with ``T`` and ``tau`` fit on the run's validation
split (``posthoc.json``; for a run finished before that file existed, fit now from its stored
validation outputs, the same computation). The plain ``prediction`` is always written too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from lightning_fabric import Fabric

from imbal.calibration import scale_logits
from imbal.data.augment import Augmentation
from imbal.data.inputs import Expected, Item, collect_inputs, decode
from imbal.engine import run_dir as rd
from imbal.engine.build import resolve_accelerator
from imbal.engine.evaluate import load_model, stored_config
from imbal.engine.scoring import check_posthoc, posthoc_record
from imbal.engine.user_output import output_target, write_output
from imbal.errors import ConfigError, RunFolderError
from imbal.models import Classifier
from imbal.posthoc import adjust_logits


def expected_input(run_dir: Path, ckpt: dict[str, Any], sequence_columns: Sequence[str] | None) -> Expected:
    """The run's input shape (from its metrics.json) and the sequence columns a CSV of cases uses."""
    if not rd.is_finished(run_dir):
        raise RunFolderError(
            f"{run_dir} has not finished (no {rd.METRICS_FILE}); predict needs a finished run"
        )
    data = rd.read_json(run_dir / rd.METRICS_FILE)["dataset"]
    mc = ckpt["model_config"]
    size = tuple(int(v) for v in data["spatial_size"])
    if len(size) != mc["spatial_dims"] or int(data["in_channels"]) != mc["in_channels"]:
        raise RunFolderError(
            f"{run_dir}: {rd.METRICS_FILE} describes {data['in_channels']}-channel images of size {size}, "
            f"{rd.BEST} a {mc['spatial_dims']}D model of {mc['in_channels']} channels; the folder is inconsistent"
        )
    spec = ckpt["config"].get("dataset")
    columns = sequence_columns or (spec.get("sequence_columns") if isinstance(spec, dict) else None) or ()
    return Expected(int(mc["in_channels"]), size, tuple(columns))


def load_posthoc(run_dir: Path, num_classes: int) -> tuple[dict[str, Any], bool]:
    """The run's ``posthoc.json`` (checked), or the same record fit now from ``outputs_val.npz`` (never written)."""
    if (run_dir / rd.POSTHOC).is_file():
        return check_posthoc(rd.read_json(run_dir / rd.POSTHOC), run_dir / rd.POSTHOC, num_classes), False
    val = run_dir / rd.outputs_file("val")
    if not val.is_file():
        raise RunFolderError(
            f"{run_dir} has neither {rd.POSTHOC} nor {val.name}; --posthoc has nothing to apply"
        )
    m = rd.read_json(run_dir / rd.METRICS_FILE)
    with np.load(val) as z:
        logits, labels = torch.from_numpy(z["logits"]), torch.from_numpy(z["labels"])
    counts = torch.tensor(m["dataset"]["train_counts"])
    return posthoc_record(logits, labels, counts, m.get("select_metric") or "balanced_accuracy"), True


def batches(items: list[Item], want: Expected, size: int) -> Iterator[tuple[list[str], torch.Tensor]]:
    """uint8 batches ``(B, C, *spatial)`` with their names, the next one decoded while this one is used."""

    def load(chunk: list[Item]) -> torch.Tensor:
        return torch.from_numpy(np.stack([decode(item, want) for item in chunk]))

    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(load, chunk) for chunk in chunks[:1]]
        for k, chunk in enumerate(chunks):
            images = pending.pop().result()
            pending += [pool.submit(load, c) for c in chunks[k + 1 : k + 2]]
            yield [item.name for item in chunk], images


@torch.no_grad()
def predict_logits(
    model: Classifier, stream: Iterator[tuple[list[str], torch.Tensor]], aug: Augmentation, fabric: Fabric
) -> tuple[list[str], torch.Tensor]:
    """Names and float32 logits ``(N, C)``, computed as :func:`~imbal.engine.scoring.evaluate_split` does."""
    names: list[str] = []
    logits: list[torch.Tensor] = []
    model.eval()
    for batch_names, images in stream:
        x = aug.eval(images.to(fabric.device).float().div_(255.0))
        with fabric.autocast():
            out = model.head(model.features(x))
        names += batch_names
        logits.append(out.float().cpu())
    return names, torch.cat(logits) if logits else torch.empty(0)


def predictions_frame(
    names: list[str], logits: torch.Tensor, class_names: list[str], posthoc: dict[str, Any] | None
) -> pd.DataFrame:
    """A row per input: ``input``, ``prob_<class>`` per class, ``prediction`` (and ``prediction_posthoc``)."""
    scaled = scale_logits(logits, posthoc["temperature"]) if posthoc else logits
    probs = scaled.softmax(-1).numpy()
    frame = pd.DataFrame({"input": names})
    for k, name in enumerate(class_names):
        frame[f"prob_{name}"] = probs[:, k]
    frame["prediction"] = [class_names[k] for k in logits.argmax(-1).tolist()]
    if posthoc:
        adjusted = adjust_logits(logits, posthoc["train_counts"], posthoc["tau"])
        frame["prediction_posthoc"] = [class_names[k] for k in adjusted.argmax(-1).tolist()]
    return frame


def predict_run(
    run_dir: str | Path,
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    posthoc: bool = False,
    accelerator: str = "auto",
    batch_size: int | None = None,
    sequence_columns: Sequence[str] | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    """Write ``out`` (CSV) for every input; returns what was done (rows, skipped files, post-hoc values, models).

    ``run_dir`` is a run folder, or with ``config`` ("sampler/loss") a cross-validated study folder:
    then the probabilities are the mean of that configuration's fold models' (nnU-Net's ensemble).
    """
    run_dir = Path(run_dir)
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    runs = fold_runs(run_dir, config) if config is not None else [run_dir]
    if posthoc and len(runs) > 1:
        raise ConfigError(
            "--posthoc applies one run's fitted temperature and tau; a fold ensemble has one per fold: score "
            "with a single fold's run folder for post-hoc values"
        )
    models = [load_model(r / rd.BEST) for r in runs]
    wants = [expected_input(r, ckpt, sequence_columns) for r, (_, ckpt) in zip(runs, models)]
    if any(w != wants[0] for w in wants[1:]):
        raise ConfigError(f"the fold models of {config} expect different inputs; they cannot be averaged")
    ckpt = models[0][1]
    cfg = stored_config(ckpt)
    want = wants[0]
    items, skipped = collect_inputs(inputs, want)  # every input checked before any is decoded
    target = output_target(out, inputs=[p for item in items for p in item.sources])
    num_classes = int(ckpt["model_config"]["num_classes"])
    record, refit = load_posthoc(runs[0], num_classes) if posthoc else (None, False)
    size = batch_size or cfg.eval_batch_size
    fabric = Fabric(
        accelerator=resolve_accelerator(dataclasses.replace(cfg, accelerator=accelerator)), devices=1
    )
    aug = Augmentation(want.spatial_dims, enabled=False, crop_size=cfg.crop_size or None)
    class_names = [str(c) for c in ckpt.get("class_names") or range(num_classes)]
    names, logits = ensemble_logits([m for m, _ in models], lambda: batches(items, want, size), aug, fabric)
    frame = predictions_frame(names, logits, class_names, record)
    write_output(target, frame.to_csv(index=False))
    return {
        "rows": len(frame),
        "out": target,
        "skipped": skipped,
        "posthoc": record,
        "refit": refit,
        "models": [str(r) for r in runs],
    }


def ensemble_logits(
    models: list[Classifier], stream: Any, aug: Augmentation, fabric: Fabric
) -> tuple[list[str], torch.Tensor]:
    """One model's logits, or for several the log of their mean probabilities (softmax gives that mean back)."""
    if len(models) == 1:
        return predict_logits(models[0].to(fabric.device), stream(), aug, fabric)
    probs = []
    for m in models:
        names, logits = predict_logits(m.to(fabric.device), stream(), aug, fabric)
        probs.append(logits.softmax(-1))
    return names, torch.stack(probs).mean(0).log()


def fold_runs(study: Path, config: str) -> list[Path]:
    """The finished fold runs of ``config`` ("sampler/loss") in a cross-validated study folder, every repeat."""
    parts = config.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(
            f"--config must be sampler/loss or label/sampler/loss (e.g. oversample/ce+f1), got {config!r}"
        )
    wanted = tuple(rd.safe_name(p) for p in parts)
    cells = [c for c in rd.cell_dirs(study) if c.parts[-1 - len(wanted) : -1] == wanted and rd.is_finished(c)]
    labels = sorted({rd.cell_label(c) for c in cells})
    if len(labels) > 1:
        raise ConfigError(
            f"{study} holds {config} runs of {len(labels)} data sets ({', '.join(labels)}); name one: "
            f"--config {labels[0]}/{config}"
        )
    folded = [c for c in cells if rd.is_fold_run(rd.read_json(c / rd.METRICS_FILE)["config"])]
    if not folded:
        found = sorted({"/".join(c.parts[-3:-1]) for c in rd.cell_dirs(study) if rd.is_finished(c)})
        raise ConfigError(
            f"{study} holds no finished fold runs of {config} (a cross-validated study's); finished configurations: "
            f"{', '.join(found) or 'none'}"
        )
    return folded
