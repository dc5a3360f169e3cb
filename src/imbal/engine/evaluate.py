"""``imbal evaluate``: rebuild a model from ``best.ckpt`` alone and score any split or data set.

Outputs go to ``<run>/evaluations/<data>_<split>/`` (or ``--out``), never over the run's own
training outputs, which the study report reads. The result file is ``evaluation.json``
(:data:`~imbal.engine.run_dir.EVALUATION_FILE`), never ``metrics.json``: that name marks a
finished run, and an evaluation folder is none.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from imbal.data.dataset import Split
from imbal.data.stream import place
from imbal.engine import run_dir as rd
from imbal.engine.build import augmentation_for, fingerprint, make_fabric, prepare_data
from imbal.engine.config import FIELDS, TrainConfig, config_differences, read_yaml_mapping
from imbal.engine.scoring import evaluate_split, write_outputs
from imbal.errors import DataError, MissingFileError, RunFolderError
from imbal.models import Classifier
from imbal.naming import SPLITS


def load_model(checkpoint: str | Path) -> tuple[Classifier, dict[str, Any]]:
    """The model of a checkpoint, rebuilt from the file alone (no config file, no code edits)."""
    ckpt = rd.load_torch(Path(checkpoint))
    try:
        model = Classifier(**ckpt["model_config"])
        model.load_state_dict(ckpt["model"])
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunFolderError(
            f"{checkpoint}: its model_config and weights do not rebuild a model ({first}); the file is damaged "
            "or was not written by imbal"
        ) from None
    if not isinstance(ckpt["config"], dict):
        raise RunFolderError(f"{checkpoint}: its config is not a mapping; the file is damaged")
    return model.eval(), ckpt


def stored_config(ckpt: dict[str, Any]) -> TrainConfig:
    """The run's config through TrainConfig, so every default means what it meant in training."""
    values = {k: v for k, v in ckpt["config"].items() if k in FIELDS}
    return TrainConfig(**values)


def check_checkpoint(run_dir: Path, ckpt: dict[str, Any]) -> None:
    """``best.ckpt`` must be this run's: its settings equal ``config.yaml``; its classes and data equal
    those ``metrics.json`` records. A checkpoint copied from another run would be scored under this
    run's name (and with its minority class), so any difference is one line, not a result."""
    best = run_dir / rd.BEST
    if (run_dir / rd.CONFIG).is_file():
        stored = read_yaml_mapping(run_dir / rd.CONFIG, "run config")
        diff = config_differences(stored, ckpt.get("config") or {})
        if diff:
            changes = ", ".join(
                f"{k} {stored.get(k)!r} vs {(ckpt.get('config') or {}).get(k)!r}" for k in diff[:4]
            )
            raise RunFolderError(
                f"{best} does not belong to {run_dir}: it was trained with other settings than its "
                f"{rd.CONFIG} ({changes}); copy back the run's own checkpoint or evaluate the run it came from"
            )
    if not rd.is_finished(run_dir):
        return
    data = rd.read_json(run_dir / rd.METRICS_FILE).get("dataset") or {}
    names, mine = data.get("class_names"), ckpt.get("class_names")
    stored_sum, mine_sum = data.get("data_checksum"), ckpt.get("data_checksum")
    if (names is not None and mine is not None and list(names) != list(mine)) or (
        stored_sum is not None and mine_sum is not None and stored_sum != mine_sum
    ):
        raise RunFolderError(
            f"{best} does not belong to {run_dir}: it was trained on other data (classes {mine}, data checksum "
            f"{mine_sum}) than {rd.METRICS_FILE} records (classes {names}, data checksum {stored_sum})"
        )


def evaluate_run(
    run_dir: str | Path, *, dataset: Any = None, split: str = "test", out: str | Path | None = None
) -> dict[str, Any]:
    """Score ``best.ckpt`` of a run on a split of its data (or of ``dataset``); the result lands in
    ``<out>/evaluation.json`` with the split's predictions and outputs."""
    run_dir = Path(run_dir)
    if not (run_dir / rd.BEST).is_file():
        raise MissingFileError(f"{run_dir} has no {rd.BEST}; train it first")
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    model, ckpt = load_model(run_dir / rd.BEST)
    check_checkpoint(run_dir, ckpt)
    cfg = stored_config(ckpt)
    if dataset is not None:
        cfg = dataclasses.replace(cfg, dataset=dataset, train_subset=0)
    label = rd.dataset_label(cfg.dataset)
    target = evaluation_target(run_dir, label, split, out)
    splits = prepare_data(cfg)
    data = splits[split]
    check_fits(model, data)
    # the shared builder, with the run's precision; one process on whatever device is here
    fabric = make_fabric(
        dataclasses.replace(cfg, accelerator="auto", devices=1, num_nodes=1, strategy="auto", logger="none")
    )
    device_data = place(data, fabric.device)  # streamed from disk when it does not fit
    minority = (
        rd.read_json(run_dir / rd.METRICS_FILE)["dataset"].get("minority_class")
        if rd.is_finished(run_dir)
        else None
    )
    metrics, outputs = evaluate_split(
        fabric,
        model.to(fabric.device),
        device_data,
        augmentation_for(cfg, data),
        cfg.eval_batch_size,
        minority=minority,
        collect=True,
        ordinal=splits.ordinal,
    )
    if outputs is not None:
        write_outputs(target, split, data, outputs)
    result = {
        "split": split,
        "dataset": data.name,
        "data_label": label,
        "source": cfg.dataset,
        "test_fingerprint": fingerprint(data),
        "metrics": metrics,
        "epoch": ckpt["epoch"],
        "run": str(run_dir),
    }
    rd.write_json(target / rd.EVALUATION_FILE, result)
    return {**result, "out": target}


def evaluation_target(run_dir: Path, label: str, split: str, out: str | Path | None) -> Path:
    """Where an evaluation writes: ``--out`` unless it is a run folder, else inside the run (no link leads out)."""
    if out:
        if rd.looks_like_run(Path(out)):
            raise RunFolderError(
                f"--out {out} is a run folder: its outputs and predictions would be replaced; choose another --out"
            )
        return Path(out)
    rd.check_no_links_out(run_dir)
    if (run_dir / rd.EVALUATIONS).is_dir():
        rd.check_no_links_out(run_dir / rd.EVALUATIONS)
    return rd.evaluation_dir(run_dir, label, split)


def check_fits(model: Classifier, data: Split) -> None:
    """The data's dimensions, channels and classes are the model's."""
    mc = model.config
    if (data.spatial_dims, data.in_channels, data.num_classes) != (
        mc["spatial_dims"],
        mc["in_channels"],
        mc["num_classes"],
    ):
        raise DataError(
            f"data has spatial_dims={data.spatial_dims}, in_channels={data.in_channels}, "
            f"num_classes={data.num_classes}; the model expects spatial_dims={mc['spatial_dims']}, "
            f"in_channels={mc['in_channels']}, num_classes={mc['num_classes']}"
        )
