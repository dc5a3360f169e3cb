"""A study's predictions in one small file, so its statistics can be recomputed without training.

``imbal report DIR --archive FILE`` writes, for every finished run, its hard predictions (exact)
and its logits (float16: enough for AUROC, a few hundred KB for a RetinaMNIST study of 80 runs) on
validation and test, with the labels and the data's facts. :func:`load_archive` gives back one
:class:`~imbal.study.analysis.outputs.StudyOutputs` per data set, the same object the report builds from the
run folders, so every verdict can be made again from the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from imbal.engine import run_dir as rd
from imbal.errors import DataError, MissingFileError
from imbal.naming import HELD_OUT
from imbal.study.analysis.outputs import BASELINE, SplitOutputs, StudyOutputs, _softmax, load_outputs

FORMAT = 1


def write_archive(runs: pd.DataFrame, path: str | Path) -> Path:
    """Packs the runs (rows of :func:`imbal.study.report.collect.collect_runs`) into ``path`` (npz)."""
    arrays: dict[str, np.ndarray] = {}
    datasets: dict[str, dict] = {}
    for dataset, grp in runs.groupby("dataset", sort=True):
        info = {
            "num_classes": len(grp.f1_per_class.iloc[0]),
            "minority": int(grp.minority_class.iloc[0]),
            "class_names": grp.class_names.iloc[0],
            "runs": [[r.sampler, r.loss, int(r.seed)] for r in grp.itertuples()],
        }
        key = f"d{len(datasets)}"
        datasets[dataset] = {"key": key, **info}
        for split in HELD_OUT:
            loaded = [load_outputs(Path(r.run_dir), split) for r in grp.itertuples()]
            labels = loaded[0]["labels"]
            if any(not np.array_equal(o["labels"], labels) for o in loaded):
                raise DataError(
                    f"{dataset}: runs disagree on the {split} labels; one archive holds one data set"
                )
            logits = np.stack([o["logits"] for o in loaded])
            arrays[f"{key}_{split}_labels"] = labels.astype(np.int16)
            arrays[f"{key}_{split}_preds"] = logits.argmax(-1).astype(np.int16)
            arrays[f"{key}_{split}_logits"] = logits.astype(np.float16)
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, "datasets": datasets}))
    path = Path(path)
    rd.save_npz(path, **arrays)
    return path


def load_archive(path: str | Path, baseline: tuple[str, str] = BASELINE) -> dict[str, StudyOutputs]:
    """``{data set: StudyOutputs}`` from a file written by :func:`write_archive`."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no archive at {path}")
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != FORMAT:
            raise DataError(f"{path}: archive format {meta.get('format')!r}, expected {FORMAT}")
        out = {}
        for dataset, info in meta["datasets"].items():
            key = info["key"]
            splits = {}
            for split in HELD_OUT:
                logits = z[f"{key}_{split}_logits"].astype(np.float64)
                splits[split] = SplitOutputs(
                    z[f"{key}_{split}_labels"].astype(np.int64),
                    z[f"{key}_{split}_preds"].astype(np.int64),
                    _softmax(logits),
                )
            out[dataset] = StudyOutputs(
                [((s, loss), seed) for s, loss, seed in info["runs"]],
                splits["val"],
                splits["test"],
                info["num_classes"],
                info["minority"],
                baseline,
                info["class_names"],
            )
    return out
