"""Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021).

A classifier trained on imbalanced data learns the training prior into its logits. Subtracting
``tau * log(prior)`` afterwards removes it (``tau = 1`` is the balanced-error Bayes rule when the
logits are calibrated), with no retraining. ``tau`` is chosen on the validation split by the metric
the study selects on, and the test split is only scored, never used for the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from imbal.metrics import METRICS, confusion_matrices, confusion_scores, metrics_from_confusion

# what a hard decision rule can be tuned for: the metrics that are ratios of the confusion matrix
SELECTION_METRICS = tuple(name for name, m in METRICS.items() if m.from_confusion)
FALLBACK_SELECTION = "balanced_accuracy"  # what tau is tuned for when a run selects on a score-based metric


def tuned_for(select_metric: str) -> str:
    """The metric tau is tuned for: the run's selection metric if a decision rule can be tuned for it."""
    return select_metric if select_metric in SELECTION_METRICS else FALLBACK_SELECTION


# 0, 0.1, ..., 3.0: Menon et al. find tau = 1 best for calibrated logits; the grid reaches past it
# for under-confident ones. k / 10 (not k * 0.1) so that each grid point is the nearest double.
DEFAULT_TAUS = torch.arange(31, dtype=torch.float64) / 10
TIE_TOLERANCE = 1e-12  # scores this close are ties (equal ratios can differ in the last bits)


@dataclass(frozen=True)
class TauFit:
    """The chosen ``tau``, its validation score, and the whole score curve over the grid."""

    tau: float
    score: float
    metric: str
    taus: torch.Tensor  # (T,) float64, as given
    scores: torch.Tensor  # (T,) float64, the validation metric at each tau
    n: int  # validation samples


def _priors(class_priors: torch.Tensor | Sequence[float] | np.ndarray, num_classes: int) -> torch.Tensor:
    """Priors (or class counts) as a normalised float64 tensor of shape ``(C,)``."""
    p = torch.as_tensor(class_priors, dtype=torch.float64).cpu()
    if p.shape != (num_classes,):
        raise ValueError(f"class_priors must have shape ({num_classes},), got {tuple(p.shape)}")
    if not (torch.isfinite(p).all() and (p > 0).all()):
        raise ValueError(f"class_priors must be finite and > 0 (log of a zero prior), got {p.tolist()}")
    return p / p.sum()


def _check_logits(logits: torch.Tensor, name: str = "logits") -> None:
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (N, C), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {logits.dtype}")


def _check_labels(labels: torch.Tensor, logits: torch.Tensor, name: str) -> torch.Tensor:
    labels = torch.as_tensor(labels, device=logits.device)
    if labels.shape != (logits.shape[0],) or labels.is_floating_point():
        raise ValueError(
            f"{name} must be integer class indices of shape ({logits.shape[0]},), "
            f"got {labels.dtype} of shape {tuple(labels.shape)}"
        )
    c = logits.shape[1]
    if len(labels) and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(f"{name} must lie in [0, {c}), got min={int(labels.min())}, max={int(labels.max())}")
    return labels.long()


def adjust_logits(
    logits: torch.Tensor, class_priors: torch.Tensor | Sequence[float] | np.ndarray, tau: float
) -> torch.Tensor:
    """``logits - tau * log(prior)`` for logits ``(N, C)`` and training priors or class counts ``(C,)``.

    Priors are normalised first (counts are fine). The result keeps the logits' dtype and device.
    ``tau = 0`` returns an unchanged copy, bit for bit.

    Example:
        >>> import torch
        >>> from imbal.posthoc import adjust_logits
        >>> logits = torch.tensor([[2.0, 1.0], [1.0, 0.5]])
        >>> adjust_logits(logits, [90, 10], tau=1.0).argmax(-1)  # the rare class 1 now wins both
        tensor([1, 1])
    """
    _check_logits(logits)
    log_p = _priors(class_priors, logits.shape[1]).log()
    tau = float(tau)
    if not np.isfinite(tau):
        raise ValueError(f"tau must be finite, got {tau}")
    if tau == 0:
        # subtracting 0 * log(p) = -0.0 would still turn -0.0 logits into +0.0
        return logits.clone()
    return logits - (tau * log_p).to(logits.device, logits.dtype)


def _check_taus(taus: torch.Tensor | Sequence[float] | None) -> torch.Tensor:
    t = DEFAULT_TAUS if taus is None else torch.as_tensor(taus, dtype=torch.float64).cpu()
    if t.ndim != 1 or len(t) == 0 or not torch.isfinite(t).all():
        raise ValueError(f"taus must be a non-empty 1-D grid of finite values, got {t.tolist()}")
    return t


def _check_metric(metric: str) -> None:
    if metric not in SELECTION_METRICS:
        raise ValueError(f"metric must be one of {SELECTION_METRICS}, got {metric!r}")


def _grid_confusions(
    logits: torch.Tensor, labels: torch.Tensor, log_p: torch.Tensor, taus: torch.Tensor
) -> torch.Tensor:
    """Confusion matrices ``(T, C, C)`` of the adjusted argmax at every tau, in one bincount.

    Holds ``(T, N, C)`` adjusted logits at once: 31 taus x 100k samples x 10 classes is 124 MB in float32.
    """
    c = logits.shape[1]
    # the shift is formed in float64 and then cast, exactly as adjust_logits does, so the curve's
    # predictions at a tau are those of adjust_logits at that tau
    shift = (taus[:, None] * log_p[None]).to(logits.device, logits.dtype)[:, None, :]
    pred = (logits[None] - shift).argmax(-1)  # (T, N); ties go to the first class, as in Evaluator
    return confusion_matrices(labels, pred, c)


def fit_tau(
    val_logits: torch.Tensor,
    val_labels: torch.Tensor,
    class_priors: torch.Tensor | Sequence[float] | np.ndarray,
    metric: str = "balanced_accuracy",
    taus: torch.Tensor | Sequence[float] | None = None,
) -> TauFit:
    """The tau on the grid (default :data:`DEFAULT_TAUS`, 0 to 3 by 0.1) that maximises ``metric``.

    All taus are scored in one batched :func:`~imbal.metrics.confusion_scores` call. Ties, within
    :data:`TIE_TOLERANCE`, go to the smallest ``|tau|`` (then the non-negative one): with a grid
    holding 0, the logits are left alone unless adjusting strictly helps on validation.
    ``minority_f1`` is the F1 of the class with the smallest prior.
    """
    _check_logits(val_logits, "val_logits")
    _check_metric(metric)
    labels = _check_labels(val_labels, val_logits, "val_labels")
    if len(labels) == 0:
        raise ValueError("val_logits must hold >= 1 sample to fit tau, got 0")
    p = _priors(class_priors, val_logits.shape[1])
    grid = _check_taus(taus)
    cm = _grid_confusions(val_logits, labels, p.log(), grid).cpu()
    scores = confusion_scores(cm, minority=int(p.argmin()))[metric]
    best = scores.max()
    tied = torch.nonzero(scores >= best - TIE_TOLERANCE).ravel().tolist()
    pick = min(tied, key=lambda i: (abs(float(grid[i])), float(grid[i]) < 0))
    return TauFit(float(grid[pick]), float(scores[pick]), metric, grid, scores, len(labels))


def _metrics(logits: torch.Tensor, labels: torch.Tensor, minority: int) -> dict[str, float | list[float]]:
    cm = confusion_matrices(labels, logits.argmax(-1), logits.shape[1]).cpu()
    return metrics_from_confusion(cm, minority)


def posthoc_scores(
    val_logits: torch.Tensor,
    val_labels: torch.Tensor,
    test_logits: torch.Tensor,
    test_labels: torch.Tensor,
    class_priors: torch.Tensor | Sequence[float] | np.ndarray,
    metric: str = "balanced_accuracy",
    taus: torch.Tensor | Sequence[float] | None = None,
) -> dict:
    """Fits tau on validation, then scores the test split with and without the adjustment.

    Returns plain Python values (for JSON): ``tau``, ``metric``, ``validation_score`` (at ``tau``),
    ``validation_curve`` (``taus``, ``scores``), ``n_validation``, ``n_test``, and ``test`` /
    ``test_adjusted``: :func:`~imbal.metrics.metrics_from_confusion` of the plain and the adjusted
    test predictions. ``class_priors`` are the training priors (or counts) the model learned.
    """
    fit = fit_tau(val_logits, val_labels, class_priors, metric, taus)
    _check_logits(test_logits, "test_logits")
    labels = _check_labels(test_labels, test_logits, "test_labels")
    if test_logits.shape[1] != val_logits.shape[1]:
        raise ValueError(
            f"test_logits must have the validation's {val_logits.shape[1]} classes, got {test_logits.shape[1]}"
        )
    minority = int(_priors(class_priors, test_logits.shape[1]).argmin())
    return {
        "tau": fit.tau,
        "metric": metric,
        "validation_score": fit.score,
        "validation_curve": {"taus": fit.taus.tolist(), "scores": fit.scores.tolist()},
        "n_validation": fit.n,
        "n_test": len(labels),
        "test": _metrics(test_logits, labels, minority),
        "test_adjusted": _metrics(adjust_logits(test_logits, class_priors, fit.tau), labels, minority),
    }
