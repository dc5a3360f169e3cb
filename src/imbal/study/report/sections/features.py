"""How tightly each class clusters in the penultimate feature space (measured on features, not on t-SNE).

Two per-class numbers on a run's test features, standardised per dimension: the mean silhouette of the
class's samples (cohesion against the nearest other class, in [-1, 1]) and the k-nearest-neighbour
purity (the share of a sample's ``k`` nearest neighbours that carry its label, in [0, 1]).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imbal.engine import run_dir as rd


def class_tightness(features: np.ndarray, labels: np.ndarray, num_classes: int, k: int = 10) -> pd.DataFrame:
    """Per-class ``silhouette`` and ``knn_purity`` (NaN for a class with fewer than 2 samples)."""
    from sklearn.metrics import silhouette_samples
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(features, dtype=np.float64)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    labels = np.asarray(labels)
    sil = silhouette_samples(x, labels) if len(np.unique(labels)) > 1 else np.full(len(labels), np.nan)
    k_eff = min(k, len(x) - 1)
    _, idx = NearestNeighbors(n_neighbors=k_eff + 1).fit(x).kneighbors(x)
    purity = (labels[idx[:, 1:]] == labels[:, None]).mean(1)  # column 0 is the sample itself
    rows = []
    for c in range(num_classes):
        sel = labels == c
        enough = sel.sum() >= 2
        rows.append(
            {
                "class": c,
                "n": int(sel.sum()),
                "silhouette": float(sil[sel].mean()) if enough else np.nan,
                "knn_purity": float(purity[sel].mean()) if enough else np.nan,
            }
        )
    return pd.DataFrame(rows)


def tightness_table(runs: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """A row per run and class: the run's cell, the class, its silhouette and k-NN purity."""
    frames = []
    for r in runs.itertuples():
        with np.load(Path(r.run_dir) / rd.outputs_file("test")) as z:
            t = class_tightness(z["features"], z["labels"], len(r.f1_per_class), k)
        t.insert(0, "seed", r.seed)
        t.insert(0, "loss", r.loss)
        t.insert(0, "sampler", r.sampler)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)
