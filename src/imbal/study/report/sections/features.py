"""The feature space: how tightly each class clusters (measured on features, not on t-SNE), and the map.

Two per-class numbers on a run's test features, standardised per dimension: the mean silhouette of the
class's samples (cohesion against the nearest other class, in [-1, 1]) and the k-nearest-neighbour
purity (the share of a sample's ``k`` nearest neighbours that carry its label, in [0, 1]). The map
(t-SNE of the best and worst configurations) is drawn by ``imbal embed`` and shown when present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imbal.study.report import tables
from imbal.study.report.collect import load_outputs
from imbal.study.report.embed import embedding_file
from imbal.study.report.render import Block
from imbal.study.report.sections.section import Section
from imbal.study.report.sections.section import config_name as name


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
        z = load_outputs(Path(r.run_dir), "test", features=True)
        t = class_tightness(z["features"], z["labels"], len(r.f1_per_class), k)
        t.insert(0, "seed", r.seed)
        t.insert(0, "loss", r.loss)
        t.insert(0, "sampler", r.sampler)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def feature_space_section(s: Section) -> list[Block]:
    """How tightly the rarest class clusters in each configuration's test features."""
    tight = tightness_table(s.runs)
    s.csv(tight, "feature_tightness")
    t = tight[tight["class"] == s.facts.minority].groupby(["sampler", "loss"], sort=False)[
        ["silhouette", "knn_purity"]
    ]
    mean, std = t.mean(), t.std(ddof=1)
    rows = [
        [
            name(c),
            *[
                tables.format_cell(mean.loc[c, k], std.loc[c, k], s.seeds)
                for k in ("silhouette", "knn_purity")
            ],
        ]
        for c in tables.configurations(s.runs)
    ]
    text = (
        f"How tightly the rarest class {s.facts.minority_label} clusters in the penultimate test features "
        "(standardised; silhouette against the nearest other class, and the share of its 10 nearest neighbours "
        f"with its label), {s.cells_text}. Measured on the features, not on the t-SNE picture."
    )
    return [
        Block("h3", "Feature space of the rarest class"),
        Block("p", text),
        Block("table", header=["configuration", "silhouette", "10-NN purity"], rows=rows),
    ]


def embedding_section(s: Section, out: Path) -> list[Block]:
    """The t-SNE figure of ``imbal embed STUDY --best-worst K`` when it was drawn into ``out``."""
    path = out / embedding_file(s.dataset)
    if not path.is_file():
        return [
            Block(
                "p",
                "No feature map yet: run `imbal embed STUDY --best-worst 3` on this folder and report again.",
            )
        ]
    return [
        Block("h3", "Feature space (t-SNE of penultimate test features)"),
        Block(
            "image",
            "best and worst configurations chosen by mean test macro F1; each panel shows the median seed",
            path=path,
        ),
    ]
