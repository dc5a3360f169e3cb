"""Report figures (matplotlib, Agg): metric heatmaps, class-wise F1 bars, the best confusion matrix, reliability."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _cells(ax: Axes, data: np.ndarray, labels: list[list[str]], dark: Callable[[float], bool]) -> None:
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


def reliability(curves: dict[str, dict[str, np.ndarray]], title: str, path: Path) -> Path:
    """One panel per configuration: accuracy against mean confidence in each bin, before and after scaling.

    ``curves`` maps a panel title to ``{"plain": bins, "scaled": bins}``, each ``(3, B)`` per-bin sums
    (samples, confidence, correct) from :func:`imbal.metrics.calibration_bins`. Empty bins are left out;
    the bars show where the samples are (share per bin, right axis). The diagonal is perfect calibration.
    """
    fig, axes = plt.subplots(
        1, len(curves), figsize=(5.2 * len(curves), 4.4), squeeze=False, layout="constrained"
    )
    for ax, (name, bins) in zip(axes[0], curves.items()):
        n_bins = bins["plain"].shape[1]
        edges = np.linspace(0, 1, n_bins + 1)
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":", label="perfect")
        for key, style in (("plain", "-o"), ("scaled", "--s")):
            count, conf, correct = bins[key]
            seen = count > 0
            ece = np.abs(correct - conf).sum() / max(count.sum(), 1)
            label = f"{'softmax' if key == 'plain' else 'temperature-scaled'} (pooled ECE {ece:.3f})"
            ax.plot(conf[seen] / count[seen], correct[seen] / count[seen], style, ms=4, label=label)
        share = ax.twinx()
        share.bar(
            edges[:-1],
            bins["plain"][0] / max(bins["plain"][0].sum(), 1),
            width=1 / n_bins,
            align="edge",
            alpha=0.15,
            color="grey",
        )
        share.set_ylim(0, 1)
        share.set_ylabel("share of samples (softmax)", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (largest probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    return save(fig, path)
