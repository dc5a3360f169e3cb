"""Each run's score on a split and every image's influence on it, for the image level of the statistics.

A metric of a confusion matrix is a function of its counts; when the images of each class are
resampled (class sizes fixed), the first-order change of the metric is a sum over images of
``(w_i - 1) * g_i`` with ``g_i = d metric / d count[y_i, pred_i]``. That derivative comes from
:func:`imbal.metrics.confusion_scores` by autograd, so every confusion metric of the METRICS table
gets its image level from the one formula that defines it
(docs/method.md, "Statistics of a report"). A constant added to a whole row of the gradient does not change the variance within a
class, so the derivative with free row sums is as good as the one with fixed class sizes. Balanced
accuracy and accuracy are linear in the counts of a row: their image level is exact.

Macro AUROC is not a confusion metric: its influence values are the per-image placement values of
each one-vs-rest AUC (the Hajek projection of the U-statistic).
"""

from __future__ import annotations

import numpy as np
import torch

from imbal.metrics import METRICS, confusion_scores


def _check(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> None:
    if preds.ndim != 2 or preds.shape[1] != labels.shape[0]:
        raise ValueError(f"preds must have shape (runs, {labels.shape[0]}), got {preds.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    if preds.size and (preds.min() < 0 or preds.max() >= num_classes):
        raise ValueError(f"preds must lie in [0, {num_classes}), got {preds.min()}..{preds.max()}")


def confusion_influence(
    metric: str, labels: np.ndarray, preds: np.ndarray, num_classes: int, minority: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(R,)`` and influence values ``(R, n)`` of R runs' hard predictions ``preds`` ``(R, n)``."""
    scores, influence = grouped_confusion_influence(
        metric, labels, preds, np.zeros(len(labels), int), 1, num_classes, minority
    )
    return scores[:, 0], influence


def grouped_confusion_influence(
    metric: str,
    labels: np.ndarray,
    preds: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    num_classes: int,
    minority: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(R, G)`` of each run on each group of images (``groups`` ``(n,)`` in ``[0, G)``) and each image's
    influence ``(R, n)`` on its own group's score: one autograd pass for every group (a study's folds)."""
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    _check(labels, preds, num_classes)
    r, c = preds.shape[0], num_classes
    rows = np.arange(r)[:, None]
    cell = ((rows * n_groups + groups[None]) * c + labels[None]) * c + preds  # (R, n) flat confusion cell
    counts = np.bincount(cell.ravel(), minlength=r * n_groups * c * c).astype(np.float64)
    cm = torch.from_numpy(counts.reshape(r * n_groups, c, c)).requires_grad_(True)
    scores = confusion_scores(cm, minority)[metric]
    (grad,) = torch.autograd.grad(scores.sum(), cm)
    # a branch that torch.where did not select can still hand back 0 * inf; its true derivative is 0
    g = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0).numpy().reshape(r, n_groups, c, c)
    influence = g[rows, groups[None], labels[None], preds]
    return scores.detach().numpy().reshape(r, n_groups), influence


def _placements(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Share of ``ref`` below each value of ``x`` (ties count one half)."""
    ref = np.sort(ref)
    below = np.searchsorted(ref, x, side="left")
    upto = np.searchsorted(ref, x, side="right")
    return (below + upto) / (2 * len(ref))


def auroc_influence(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Macro one-vs-rest AUROC ``(R,)`` over the classes present, and influence values ``(R, n)``."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 3 or probs.shape[1] != len(labels):
        raise ValueError(f"probs must have shape (runs, {len(labels)}, classes), got {probs.shape}")
    r, n, c = probs.shape
    present = [k for k in range(c) if 0 < (labels == k).sum() < n]
    scores, influence = np.zeros(r), np.zeros((r, n))
    if not present:
        return np.full(r, np.nan), influence
    for run in range(r):
        for k in present:
            pos, s = labels == k, probs[run, :, k]
            p_place = _placements(s[pos], s[~pos])  # share of negatives below each positive
            q_place = 1 - _placements(s[~pos], s[pos])  # share of positives above each negative
            scores[run] += p_place.mean()
            influence[run, pos] += p_place / pos.sum()
            influence[run, ~pos] += q_place / (~pos).sum()
    return scores / len(present), influence / len(present)


def scores_and_influence(
    metric: str,
    labels: np.ndarray,
    preds: np.ndarray,
    num_classes: int,
    minority: int | None = None,
    probs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-run scores and per-image influence values of any METRICS name on one split."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if METRICS[metric].from_confusion:
        return confusion_influence(metric, labels, preds, num_classes, minority)
    if metric == "auroc":
        if probs is None:
            raise ValueError("auroc needs the runs' class probabilities (probs), got None")
        return auroc_influence(labels, probs)
    raise ValueError(f"no image-level influence is defined for the metric {metric!r}")
