"""Paired comparisons against the baseline: t intervals over seeds, bootstrap over test samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats as sps

from imbal.metrics import confusion_scores


@dataclass
class Comparison:
    mean_diff: float
    low: float
    high: float
    n: int  # seeds paired, or test samples bootstrapped
    method: str  # "paired t over seeds" or "paired bootstrap over test samples"
    p_value: float = math.nan

    @property
    def verdict(self) -> str:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return "inconclusive"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "inconclusive"


def paired_t(candidate: np.ndarray, baseline: np.ndarray, confidence: float = 0.95) -> Comparison:
    """Mean paired difference with a t confidence interval (seeds matched one to one)."""
    d = np.asarray(candidate, float) - np.asarray(baseline, float)
    n = len(d)
    if n < 2:
        raise ValueError(f"a paired t interval needs >= 2 paired seeds, got {n}")
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    if se == 0:
        return Comparison(mean, mean, mean, n, "paired t over seeds", 0.0 if mean != 0 else 1.0)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * se
    p = float(2 * sps.t.sf(abs(mean / se), n - 1))
    return Comparison(mean, mean - half, mean + half, n, "paired t over seeds", p)


def _confusions(y: np.ndarray, pred: np.ndarray, k: int, rows: np.ndarray) -> torch.Tensor:
    """Confusion matrices ``(B, k, k)`` of the resamples ``rows`` ``(B, n)``, in one bincount."""
    b = rows.shape[0]
    codes = np.arange(b)[:, None] * k * k + y[rows] * k + pred[rows]
    return torch.from_numpy(np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k))


def paired_bootstrap(
    y: np.ndarray,
    pred_candidate: np.ndarray,
    pred_baseline: np.ndarray,
    num_classes: int,
    metric: str = "balanced_accuracy",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Percentile interval of metric(candidate) - metric(baseline) over test samples drawn with replacement.

    Both runs are scored on the same resampled test set each time (a paired bootstrap).
    """
    y, pc, pb = (np.asarray(a, dtype=np.int64) for a in (y, pred_candidate, pred_baseline))
    rng = np.random.default_rng(seed)
    # row 0 is the observed test set; rows 1.. are the resamples, all scored in one batched call
    rows = np.vstack([np.arange(len(y)), rng.integers(0, len(y), (n_boot, len(y)))])
    diff = (
        confusion_scores(_confusions(y, pc, num_classes, rows))[metric]
        - confusion_scores(_confusions(y, pb, num_classes, rows))[metric]
    ).numpy()
    observed, diffs = float(diff[0]), diff[1:]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    p = float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())))
    return Comparison(observed, float(low), float(high), len(y), "paired bootstrap over test samples", p)
