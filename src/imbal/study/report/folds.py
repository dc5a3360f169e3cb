"""A cross-validated data set put back together: its fold runs pooled into one run per configuration and repeat.

Each fold run wrote its test and validation outputs with the images' positions in the pool
(``pool_index``); per configuration and repeat, the folds' test outputs give every pooled image one
test prediction and their validation outputs one validation prediction (docs/method.md,
"Cross-validated studies"). The pooled runs read like the seeds of an official-split study: their
metrics come from one confusion matrix over all images, and :class:`~imbal.study.analysis.outputs.Folds`
tells the statistics which fold each image was tested in.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from imbal.engine import run_dir as rd
from imbal.errors import RunFolderError
from imbal.evaluator import Evaluator
from imbal.metrics import METRICS
from imbal.naming import HELD_OUT
from imbal.study.analysis.outputs import (
    Config,
    Folds,
    SplitOutputs,
    StudyOutputs,
    assemble_folds,
    pool_labels,
)


def _agreed(rows: pd.DataFrame, values: list[Any], what: str) -> Any:
    """The one value every fold run records for ``what``; fold runs that disagree are not one study."""
    distinct = set(values)
    if len(distinct) != 1:
        raise RunFolderError(
            f"the fold runs of {rows.label.tolist()[:1]} disagree on their {what}: {sorted(map(str, distinct))}"
        )
    return values[0]


def is_cross_validated(rows: pd.DataFrame) -> bool:
    """The rows are fold runs (their config set ``cv_folds``)."""
    return bool(len(rows)) and all(rd.is_fold_run(cfg) for cfg in rows.config)


def _group_runs(rows: pd.DataFrame, k: int) -> tuple[dict[tuple[Config, int], dict[int, Any]], list[str]]:
    """Fold runs by (configuration, repeat) -> fold -> row; groups missing a fold are left out (named)."""
    groups: dict[tuple[Config, int], dict[int, Any]] = {}
    for row in rows.itertuples():
        cfg = row.config
        key = ((row.sampler, row.loss), int(cfg.get("cv_repeat", 0)))
        fold = rd.fold_of(cfg)
        if fold is None:
            raise RunFolderError(
                f"{row.run_dir} trained no fold; a cross-validated data set holds fold runs only"
            )
        if fold in groups.get(key, {}):
            raise RunFolderError(
                f"{row.run_dir} and {groups[key][fold].run_dir} are both fold {fold} of {key[0][0]}/{key[0][1]} "
                f"repeat {key[1]}; a study holds one run per fold"
            )
        groups.setdefault(key, {})[fold] = row
    complete = {key: g for key, g in groups.items() if sorted(g) == list(range(k))}
    left = [
        f"{c[0]}/{c[1]} repeat {r} ({len(g)} of {k} folds)"
        for (c, r), g in groups.items()
        if (c, r) not in complete
    ]
    return complete, left


def _fold_ids(groups: dict, loaded: dict, repeats: list[int], n: int, k: int) -> np.ndarray:
    """``(R, N)`` test fold of every image per repeat; every configuration of a repeat must share it,
    and each fold's validation images must be the next fold's."""
    ids = np.full((len(repeats), n), -1, dtype=np.int64)
    for (config, repeat), g in groups.items():
        r = repeats.index(repeat)
        for fold in g:
            idx = loaded[(config, repeat)][fold]["test"][rd.POOL_INDEX]
            if (ids[r, idx] >= 0).any() and not (ids[r, idx] == fold).all():
                raise RunFolderError(
                    f"{g[fold].run_dir}: its test fold differs from another configuration's fold {fold} of repeat "
                    f"{repeat}; the configurations of a repeat must share its partition"
                )
            ids[r, idx] = fold
    if (ids < 0).any():
        raise RunFolderError("a repeat's folds do not cover every pooled image")
    for (config, repeat), g in groups.items():
        for fold in g:
            val = loaded[(config, repeat)][fold]["val"][rd.POOL_INDEX]
            if not (ids[repeats.index(repeat), val] == (fold + 1) % k).all():
                raise RunFolderError(
                    f"{g[fold].run_dir}: it validated on images outside the fold after its test fold"
                )
    return ids


def pool_folds(
    rows: pd.DataFrame, load: Any, class_count: int, baseline: Config
) -> tuple[pd.DataFrame, StudyOutputs, list[str]]:
    """Pooled rows (one per configuration and repeat), the pooled outputs with their folds, and what was left out.

    ``load(run, split)`` reads a run's outputs (:func:`imbal.study.report.collect.load_outputs`).
    """
    k = _agreed(rows, [int(c["cv_folds"]) for c in rows.config], "fold count (cv_folds)")
    groups, left = _group_runs(rows, k)
    if not groups:
        raise RunFolderError(f"no configuration has all {k} folds of a repeat yet ({'; '.join(left[:3])})")
    loaded = {
        key: {f: {s: load(Path(r.run_dir), s) for s in HELD_OUT} for f, r in g.items()}
        for key, g in groups.items()
    }
    labels = pool_labels([o[s] for g in loaded.values() for o in g.values() for s in HELD_OUT])
    repeats = sorted({r for _, r in groups})
    ids = _fold_ids(groups, loaded, repeats, len(labels), k)
    keys = sorted(groups, key=lambda key: (key[0] != baseline, key[1], key[0]))
    logits = {
        s: np.stack(
            [
                assemble_folds(
                    f"{c[0]}/{c[1]} repeat {r}",
                    sorted((f, o[s]) for f, o in loaded[(c, r)].items()),
                    labels,
                    class_count,
                )
                for c, r in keys
            ]
        )
        for s in HELD_OUT
    }
    frame = pd.DataFrame(
        [_pooled_row(groups[key], labels, logits["test"][i], *key, len(labels)) for i, key in enumerate(keys)]
    )
    splits = {s: SplitOutputs(labels, logits[s].argmax(-1), logits[s]) for s in HELD_OUT}
    names = _agreed(rows, [tuple(n) if n else None for n in rows.class_names], "class names")
    minority = _agreed(rows, [int(m) for m in rows.minority_class], "rarest class")
    outputs = StudyOutputs(
        keys,
        splits["val"],
        splits["test"],
        class_count,
        minority,
        baseline,
        list(names) if names else None,
        Folds(ids, k, tuple(repeats)),
    )
    return frame, outputs, left


def _pooled_row(
    folds: dict[int, Any], labels: np.ndarray, logits: np.ndarray, config: Config, repeat: int, n: int
) -> dict[str, Any]:
    """collect_runs' columns for one pooled run: its metrics from all N images' test predictions."""
    first = folds[0]
    info = dict(first.dataset_info)
    evaluator = Evaluator(
        len(first.f1_per_class), minority=int(first.minority_class), ordinal=bool(info.get("ordinal"))
    )
    evaluator.update(torch.from_numpy(logits), torch.from_numpy(labels))
    metrics = evaluator.compute()
    counts = np.bincount(labels, minlength=len(first.f1_per_class)).tolist()
    info.update(
        n={"train": int(sum(len_of(r, "train") for r in folds.values()) // len(folds)), "val": n, "test": n}
    )
    info.update(test_counts=counts, train_counts=counts, pooled=True)
    row = {
        "label": first.label,
        "sampler": config[0],
        "loss": config[1],
        "seed": repeat,
        "threads": first.threads,
        "run_dir": first.run_dir,
        "fold_dirs": [folds[f].run_dir for f in sorted(folds)],
        "best_epoch": float(np.mean([folds[f].best_epoch for f in folds])),
        "n_test": n,
        "synthetic": first.synthetic,
        "class_names": first.class_names,
        "minority_class": first.minority_class,
        "train_counts": counts,
        "test_fingerprint": hashlib.sha256(labels.tobytes()).hexdigest()[:16],
        "settings": first.settings,
        "f1_per_class": metrics["f1_per_class"],
        "confusion_matrix": metrics["confusion_matrix"],
        "wall_seconds": float(sum(folds[f].wall_seconds or 0 for f in folds)),
        "config": first.config,
        "dataset_info": info,
        "select_metric": first.select_metric,
    }
    for key in METRICS:
        value = metrics.get(key)
        row[key] = float(value) if isinstance(value, int | float) else np.nan
    return row


def len_of(row: Any, split: str) -> int:
    return int((row.dataset_info.get("n") or {}).get(split, 0))
