"""Read a grid folder into one table: a row per finished run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from imbal.engine import run_dir as rd

LOSS_ORDER = ["ce", "ce+f1", "ce+mcc", "f1", "focal", "mcc", "la-ce"]
SAMPLER_ORDER = ["uniform", "weights", "oversample", "undersample"]
METRIC_LABELS = {
    "balanced_accuracy": "Balanced accuracy",
    "macro_f1": "Macro F1",
    "auroc": "Macro AUROC (one-vs-rest)",
    "mcc": "MCC",
    "accuracy": "Accuracy",
}


def ordered(values, order: list[str]) -> list[str]:
    values = list(dict.fromkeys(values))
    return [v for v in order if v in values] + sorted(v for v in values if v not in order)


def collect_runs(root: str | Path) -> pd.DataFrame:
    """One row per finished run under ``root/runs``: its cell, test metrics and files."""
    root = Path(root)
    rows = []
    for metrics_file in sorted((root / "runs").glob("*/*/*/seed*/metrics.json")):
        run = metrics_file.parent
        m = rd.read_json(metrics_file)
        cfg = m.get("config", {})
        test = m["test"]
        row = {
            "dataset": run.parts[-4],
            "sampler": cfg.get("sampler", run.parts[-3]),
            "loss": cfg.get("loss", run.parts[-2]),
            "seed": int(cfg.get("seed", run.name.removeprefix("seed"))),
            "run_dir": str(run),
            "best_epoch": m.get("best_epoch"),
            "n_test": m["dataset"]["n"]["test"],
            "synthetic": bool(m["dataset"].get("synthetic", False)),
            "class_names": m["dataset"].get("class_names"),
            "f1_per_class": test["f1_per_class"],
            "confusion_matrix": test["confusion_matrix"],
            "wall_seconds": m.get("timing", {}).get("wall_seconds"),
        }
        for k in METRIC_LABELS:
            row[k] = test.get(k)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise FileNotFoundError(f"no finished runs under {root / 'runs'} (run `imbal grid` first)")
    return frame


def failed_runs(root: str | Path) -> list[str]:
    return sorted(str(p.parent) for p in (Path(root) / "runs").glob("*/*/*/seed*/error.txt"))
