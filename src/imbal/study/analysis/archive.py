"""A study's predictions in one small file, so its statistics can be recomputed without training.

``imbal report DIR --archive FILE`` writes, for every finished run, its hard predictions (exact)
and its logits (float16: enough for AUROC, a few hundred KB for a RetinaMNIST study of 80 runs) on
validation and test, with the labels and the data's facts. :func:`load_archive` gives back one
:class:`~imbal.study.analysis.outputs.StudyOutputs` per data set, the same object the report builds from the
run folders, so every verdict can be made again from the file (a cross-validated study's fold ids
included).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from imbal.engine import run_dir as rd
from imbal.errors import DataError, MissingFileError
from imbal.naming import HELD_OUT
from imbal.study.analysis.outputs import BASELINE, Folds, SplitOutputs, StudyOutputs

FORMAT = 1


def write_archive(studies: dict[str, StudyOutputs], path: str | Path) -> Path:
    """Packs every data set's runs and outputs (``{data set: StudyOutputs}``, e.g. a report's) into ``path``."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}
    for name, study in studies.items():
        key = f"d{len(meta)}"
        meta[name] = {
            "key": key,
            "num_classes": study.num_classes,
            "minority": study.minority,
            "class_names": study.class_names,
            "runs": [[c[0], c[1], seed] for c, seed in study.runs],
        }
        for split in HELD_OUT:
            part = study.split(split)
            arrays[f"{key}_{split}_labels"] = part.labels.astype(np.int16)
            arrays[f"{key}_{split}_preds"] = part.preds.astype(np.int16)
            if part.logits is not None:
                arrays[f"{key}_{split}_logits"] = part.logits.astype(np.float16)
        if study.folds is not None:  # a cross-validated study: each image's test fold per repeat
            meta[name]["folds"] = study.folds.k
            meta[name]["fold_repeats"] = list(study.folds.repeat_ids)
            arrays[f"{key}_folds"] = study.folds.ids.astype(np.int16)
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, "datasets": meta}))
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
                logits = f"{key}_{split}_logits"  # absent for outputs that hold predictions only
                splits[split] = SplitOutputs(
                    z[f"{key}_{split}_labels"].astype(np.int64),
                    z[f"{key}_{split}_preds"].astype(np.int64),
                    z[logits] if logits in z.files else None,
                )
            out[dataset] = StudyOutputs(
                [((s, loss), seed) for s, loss, seed in info["runs"]],
                splits["val"],
                splits["test"],
                info["num_classes"],
                info["minority"],
                baseline,
                info["class_names"],
                Folds(
                    z[f"{key}_folds"].astype(np.int64),
                    int(info["folds"]),
                    tuple(info.get("fold_repeats", ())),
                )
                if "folds" in info
                else None,
            )
    return out
