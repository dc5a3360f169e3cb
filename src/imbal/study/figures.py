"""Report figures (matplotlib, Agg): metric heatmaps, class-wise F1 bars, the best confusion matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _cells(ax, data: np.ndarray, labels: list[list[str]], dark) -> None:
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            if np.isfinite(data[i, j]):
                ax.text(
                    j,
                    i,
                    labels[i][j],
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    color="white" if dark(data[i, j]) else "black",
                )


def heatmap(mean: pd.DataFrame, title: str, path: Path, low: float = 0.0, high: float = 1.0) -> Path:
    """Means on the metric's fixed range [low, high] (never min-max of the cells), values in the cells."""
    fig, ax = plt.subplots(figsize=(1.3 * len(mean.columns) + 2, 0.7 * len(mean.index) + 1.6))
    data = mean.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", aspect="auto", vmin=low, vmax=high)
    ax.set_xticks(range(len(mean.columns)), mean.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(mean.index)), mean.index)
    _cells(ax, data, [[f"{v:.3f}" for v in row] for row in data], lambda v: v < low + 0.6 * (high - low))
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label=f"fixed scale [{low:g}, {high:g}]")
    return save(fig, path)


def difference_heatmap(diff: pd.DataFrame, marks: pd.DataFrame, title: str, path: Path, limit: float) -> Path:
    """Change against the baseline on a symmetric diverging scale [-limit, +limit] (shown on the bar).

    ``marks`` holds a short verdict per cell (e.g. "better", "n.s."): a colour with no mark next to
    it is a difference the intervals do not support.
    """
    fig, ax = plt.subplots(figsize=(1.4 * len(diff.columns) + 2.2, 0.75 * len(diff.index) + 1.7))
    data = diff.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", aspect="auto", vmin=-limit, vmax=limit)
    ax.set_xticks(range(len(diff.columns)), diff.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(diff.index)), diff.index)
    labels = [
        [
            f"{v:+.3f}\n{marks.iloc[i, j] if isinstance(marks.iloc[i, j], str) else ''}"
            for j, v in enumerate(row)
        ]
        for i, row in enumerate(data)
    ]
    _cells(ax, data, labels, lambda v: abs(v) > 0.6 * limit)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label=f"difference, scale [-{limit:g}, +{limit:g}]")
    return save(fig, path)


def class_f1_bars(table: pd.DataFrame, class_names: list[str], title: str, path: Path) -> Path:
    labels = [f"{s}/{l}" for s, l in zip(table.sampler, table.loss)]
    x = np.arange(len(class_names))
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(class_names) + 0.25 * len(labels)), 4))
    for i, label in enumerate(labels):
        ax.bar(
            x + i * width - 0.4 + width / 2,
            table.iloc[i][class_names].to_numpy(dtype=float),
            width,
            label=label,
        )
    ax.set_xticks(x, class_names)
    ax.set_xlabel("class")
    ax.set_ylabel("test F1 (mean over seeds)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    return save(fig, path)


def confusion(cm: np.ndarray, class_names: list[str], title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(0.7 * len(class_names) + 2.5, 0.7 * len(class_names) + 2))
    norm = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(int(cm[i, j])),
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return save(fig, path)
