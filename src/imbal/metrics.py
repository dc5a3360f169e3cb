"""Classification metrics from an accumulated confusion matrix (never averaged over batches).

:class:`imbal.evaluator.Evaluator` accumulates with torchmetrics (so DDP ranks are synced on ``compute``) and turns
the confusion matrix into balanced accuracy, accuracy, macro F1, multi-class MCC, class-wise F1 and
(ordinal data) quadratic weighted kappa, plus macro one-vs-rest ROC-AUC and the calibration of the
probabilities: expected calibration error over :data:`ECE_BINS` equal-width bins and the Brier score
(docs/method.md, "Calibration"), both from per-bin sums that add over batches and ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15)
ECE_BINS = 15


@dataclass(frozen=True)
class Metric:
    """A scalar test metric: its label, range, and whether the report compares it to the baseline."""

    name: str
    label: str
    low: float  # the metric's range, used for fixed figure scales
    high: float
    compared: bool  # paired against the baseline in reports (AUROC needs scores, not hard labels)
    from_confusion: bool = True  # a function of the confusion matrix (AUROC, ECE, Brier need scores)
    higher_is_better: bool = True
    ordinal_only: bool = False  # defined for ordered classes only (in metrics.json of ordinal data only)
    chance_note: bool = False  # the report states what always predicting the majority class scores
    # may be absent from a run's metrics.json: runs trained before the metric existed (and unordered
    # data for an ordinal-only one) read as missing, never as damaged
    optional: bool = False


# the one home of metric names; the order is the order of report sections
METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("balanced_accuracy", "Balanced accuracy", 0.0, 1.0, True, chance_note=True),
        Metric("macro_f1", "Macro F1", 0.0, 1.0, True),
        Metric("mcc", "MCC", -1.0, 1.0, True),
        Metric("minority_f1", "F1 of the rarest class", 0.0, 1.0, True),
        Metric("auroc", "Macro AUROC (one-vs-rest)", 0.0, 1.0, False, from_confusion=False),
        Metric("accuracy", "Accuracy", 0.0, 1.0, False, chance_note=True),
        Metric(
            "qwk",
            "Quadratic weighted kappa (ordinal grades)",
            -1.0,
            1.0,
            False,
            ordinal_only=True,
            optional=True,
        ),
        Metric(
            "ece",
            f"Expected calibration error ({ECE_BINS} equal-width bins)",
            0.0,
            1.0,
            False,
            from_confusion=False,
            higher_is_better=False,
            optional=True,
        ),
        Metric(
            "brier",
            "Brier score (multi-class)",
            0.0,
            2.0,
            False,
            from_confusion=False,
            higher_is_better=False,
            optional=True,
        ),
    ]
}


def confusion_matrices(labels: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Confusion matrices ``(..., C, C)`` (rows true, columns predicted) in one bincount.

    ``preds`` ``(..., N)`` are hard predictions of the ``N`` samples whose ``labels`` are ``(N,)``;
    the leading dimensions (runs, taus) become matrices of a batch, which :func:`confusion_scores`
    scores in one call.

    Example:
        >>> import torch
        >>> from imbal.metrics import confusion_matrices
        >>> labels = torch.tensor([0, 0, 0, 1, 1, 2])
        >>> confusion_matrices(labels, torch.tensor([0, 0, 1, 1, 1, 0]), num_classes=3)
        tensor([[2, 1, 0],
                [0, 2, 0],
                [1, 0, 0]])
    """
    c, batch = num_classes, preds.shape[:-1]
    rows = math.prod(batch)
    flat = preds.reshape(rows, preds.shape[-1]).long()
    index = torch.arange(rows, device=preds.device)[:, None] * c * c
    codes = index + labels.to(preds.device).long()[None] * c + flat
    return torch.bincount(codes.ravel(), minlength=rows * c * c).reshape(*batch, c, c)


def confusion_scores(cm: torch.Tensor, minority: int | None = None) -> dict[str, torch.Tensor]:
    """Ratio metrics of confusion matrices ``(..., C, C)`` (rows true, columns predicted), batched.

    Returns tensors of shape ``(...)`` (``balanced_accuracy``, ``accuracy``, ``macro_f1``, ``mcc``,
    ``qwk``: quadratic weighted kappa, meaningful for ordered classes only) and
    ``(..., C)`` (``f1_per_class``, ``recall_per_class``, ``support``). Conventions follow
    scikit-learn: balanced accuracy averages recall over classes present in the targets; macro F1
    averages over all C classes with 0 for undefined ones; MCC is Gorodkin's R_K, 0 when its
    denominator vanishes. A batch of matrices (e.g. bootstrap resamples) is scored in one call.
    ``minority`` (the rarest training class) adds ``minority_f1``, that class's F1.
    """
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f"confusion matrix must be square (..., C, C), got shape={tuple(cm.shape)}")
    cm = cm.double()
    tp = cm.diagonal(dim1=-2, dim2=-1)
    support, predicted, n = cm.sum(-1), cm.sum(-2), cm.sum((-2, -1))
    present = support > 0
    zero = torch.zeros_like(tp)
    recall = torch.where(present, tp / support.clamp_min(1), zero)
    f1_den = support + predicted
    f1 = torch.where(f1_den > 0, 2 * tp / f1_den.clamp_min(1), zero)
    num = tp.sum(-1) * n - (support * predicted).sum(-1)
    den = (n * n - (predicted * predicted).sum(-1)) * (n * n - (support * support).sum(-1))
    if minority is not None and not 0 <= minority < cm.shape[-1]:
        raise ValueError(f"minority must be a class index in [0, {cm.shape[-1]}), got {minority}")
    # quadratic weighted kappa: 1 - sum(W O) / sum(W E) with W_ij = (i - j)^2 and E the product of the
    # marginals (the 1 / (C - 1)^2 of the usual W cancels); undefined (NaN, as scikit-learn) when sum(W E) = 0
    k = torch.arange(cm.shape[-1], dtype=cm.dtype, device=cm.device)
    w = (k[:, None] - k[None, :]) ** 2
    expected = support[..., :, None] * predicted[..., None, :] / n.clamp_min(1)[..., None, None]
    w_obs, w_exp = (w * cm).sum((-2, -1)), (w * expected).sum((-2, -1))
    qwk = torch.where(w_exp > 0, 1 - w_obs / w_exp.clamp_min(1e-300), torch.full_like(w_exp, math.nan))
    out = {
        "balanced_accuracy": (recall * present).sum(-1) / present.sum(-1).clamp_min(1),
        "accuracy": tp.sum(-1) / n.clamp_min(1),
        "macro_f1": f1.mean(-1),
        "mcc": torch.where(den > 0, num / den.clamp_min(1e-300).sqrt(), torch.zeros_like(num)),
        "qwk": qwk,
        "f1_per_class": f1,
        "recall_per_class": recall,
        "support": support,
    }
    if minority is not None:
        out["minority_f1"] = f1[..., minority]
    return out


def metrics_from_confusion(cm: torch.Tensor, minority: int | None = None) -> dict[str, float | list[float]]:
    """:func:`confusion_scores` of one ``(C, C)`` matrix as plain Python numbers (for JSON and tables).

    Example:
        >>> import torch
        >>> from imbal.metrics import metrics_from_confusion
        >>> cm = torch.tensor([[2, 1, 0], [0, 2, 0], [1, 0, 0]])  # rows true, columns predicted
        >>> m = metrics_from_confusion(cm, minority=2)
        >>> round(m["balanced_accuracy"], 4), round(m["mcc"], 4), m["minority_f1"], m["support"]
        (0.5556, 0.4523, 0.0, [3, 2, 1])
    """
    if cm.ndim != 2:
        raise ValueError(f"confusion matrix must be square (C, C), got shape={tuple(cm.shape)}")
    scores = confusion_scores(cm, minority)
    out: dict[str, float | list[float]] = {k: float(v) for k, v in scores.items() if v.ndim == 0}
    out["f1_per_class"] = scores["f1_per_class"].tolist()
    out["recall_per_class"] = scores["recall_per_class"].tolist()
    out["support"] = [int(v) for v in scores["support"]]
    return out


def _check_probs(probs: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(probs, torch.Tensor) or probs.ndim != 2 or not probs.is_floating_point():
        shape = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise ValueError(f"probs must be floating point of shape (N, C), got {shape}")
    if not isinstance(labels, torch.Tensor) or labels.shape != probs.shape[:1] or labels.is_floating_point():
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be integer class indices of shape ({probs.shape[0]},), got {shape}")


def _bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> torch.Tensor:
    conf, pred = probs.max(-1)
    conf = conf.double()
    # bin b holds the confidences in (b / B, (b + 1) / B]; a confidence is >= 1 / C > 0
    index = (conf * n_bins).ceil().long().sub_(1).clamp_(0, n_bins - 1)
    out = torch.zeros(3, n_bins, dtype=torch.float64, device=probs.device)
    out[0].index_add_(0, index, torch.ones_like(conf))
    out[1].index_add_(0, index, conf)
    out[2].index_add_(0, index, (pred == labels).double())
    return out


def calibration_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> torch.Tensor:
    """Per-bin sums ``(3, n_bins)`` (float64) of probabilities ``(N, C)``: samples, confidence, correct.

    The confidence of a sample is its largest probability, its prediction that class; bin ``b``
    holds confidences in ``(b / n_bins, (b + 1) / n_bins]``. Sums add over batches and processes.
    """
    _check_probs(probs, labels)
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    return _bins(probs, labels, n_bins)


def ece_from_bins(bins: torch.Tensor) -> float:
    """``sum_b n_b / N * |accuracy_b - confidence_b|`` from :func:`calibration_bins`; NaN for no samples."""
    n = float(bins[0].sum())
    return float((bins[2] - bins[1]).abs().sum()) / n if n > 0 else math.nan


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-class confidence over ``n_bins`` equal-width bins.

    ``probs (N, C)`` are probabilities (not logits), ``labels (N,)`` integer; in [0, 1], NaN for N = 0.

    Example:
        >>> import torch
        >>> from imbal.metrics import expected_calibration_error
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
        >>> round(expected_calibration_error(probs, torch.tensor([0, 1, 1, 1])), 4)
        0.3
    """
    return ece_from_bins(calibration_bins(probs, labels, n_bins))


def summed_squared_error(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``sum_i sum_k (p_ik - y_ik)^2`` in float64, unchecked: the Brier sum, which adds over batches."""
    p = probs.double()
    # sum_k (p_k - y_k)^2 = sum_k p_k^2 - 2 p_y + 1, summed over samples
    return (p.square().sum(-1) - 2 * p.gather(-1, labels[:, None].long())[:, 0] + 1).sum()


def brier_score(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Multi-class Brier score ``mean_i sum_k (p_ik - y_ik)^2`` in [0, 2] (0 is perfect); NaN for N = 0.

    Example:
        >>> import torch
        >>> from imbal.metrics import brier_score
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
        >>> round(brier_score(probs, torch.tensor([0, 1, 1, 1])), 4)
        0.25
    """
    _check_probs(probs, labels)
    return float(summed_squared_error(probs, labels)) / len(labels) if len(labels) else math.nan
