"""Read a study folder into one table: a row per finished run, keyed by its data's identity."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from imbal.engine import run_dir as rd
from imbal.errors import MissingFileError
from imbal.losses import loss_sort_key
from imbal.metrics import METRICS
from imbal.samplers import SAMPLERS


def loss_order(values) -> list[str]:
    return sorted(dict.fromkeys(values), key=loss_sort_key)


def sampler_order(values) -> list[str]:
    positions = {name: i for i, name in enumerate(SAMPLERS)}
    return sorted(dict.fromkeys(values), key=lambda s: (positions.get(s, len(positions)), s))


def _row(run: Path) -> dict:
    m = rd.read_json(run / rd.METRICS_FILE)
    cfg, test, data = m.get("config", {}), m["test"], m["dataset"]
    row = {
        "label": rd.cell_label(run),
        "sampler": cfg["sampler"],
        "loss": cfg["loss"],
        "seed": int(cfg["seed"]),
        "run_dir": str(run),
        "best_epoch": m.get("best_epoch"),
        "n_test": data["n"]["test"],
        "synthetic": bool(data.get("synthetic", False)),
        "class_names": data.get("class_names"),
        "minority_class": data.get("minority_class"),
        "train_counts": data.get("train_counts"),
        "test_fingerprint": data.get("test_fingerprint", "unknown"),
        "f1_per_class": test["f1_per_class"],
        "confusion_matrix": test["confusion_matrix"],
        "wall_seconds": m.get("timing", {}).get("wall_seconds"),
        "config": cfg,
        "dataset_info": data,
        "select_metric": m.get("select_metric"),
    }
    for k in METRICS:
        row[k] = test.get(k)
    return row


def collect_runs(root: str | Path) -> pd.DataFrame:
    """One row per finished run under ``root``, with a ``dataset`` key that never pools two test sets.

    Runs are grouped by their cell's data-set label and the fingerprint of their test split: when
    one label holds runs on different test sets (e.g. two synthetic grids of different size), each
    test set becomes its own data set in the report, and nothing is paired or averaged across them.
    """
    root = Path(root)
    rows = [_row(run) for run in rd.cell_dirs(root) if rd.is_finished(run)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise MissingFileError(f"no finished runs under {root / rd.RUNS} (run `imbal grid` first)")
    frame["dataset"] = frame.label
    for label, grp in frame.groupby("label"):
        prints = sorted(grp.test_fingerprint.unique())
        if len(prints) > 1:
            for fp in prints:
                sel = (frame.label == label) & (frame.test_fingerprint == fp)
                n = int(frame.loc[sel, "n_test"].iloc[0])
                frame.loc[sel, "dataset"] = f"{label} (test set {fp[:6]}, n={n})"
    return frame


def failed_runs(root: str | Path) -> list[str]:
    return [str(run) for run in rd.cell_dirs(Path(root)) if (run / rd.ERROR).is_file()]
