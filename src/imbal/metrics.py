"""Classification metrics from an accumulated confusion matrix (never averaged over batches).

:class:`Evaluator` accumulates with torchmetrics (so DDP ranks are synced on ``compute``) and turns
the confusion matrix into balanced accuracy, accuracy, macro F1, multi-class MCC and class-wise F1,
plus macro one-vs-rest ROC-AUC.
"""

from __future__ import annotations

import math

import torch
from torchmetrics.classification import MulticlassAUROC, MulticlassConfusionMatrix

METRICS = ("balanced_accuracy", "accuracy", "macro_f1", "mcc", "auroc")


def confusion_scores(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Ratio metrics of confusion matrices ``(..., C, C)`` (rows true, columns predicted), batched.

    Returns tensors of shape ``(...)`` (``balanced_accuracy``, ``accuracy``, ``macro_f1``, ``mcc``) and
    ``(..., C)`` (``f1_per_class``, ``recall_per_class``, ``support``). Conventions follow
    scikit-learn: balanced accuracy averages recall over classes present in the targets; macro F1
    averages over all C classes with 0 for undefined ones; MCC is Gorodkin's R_K, 0 when its
    denominator vanishes. A batch of matrices (e.g. bootstrap resamples) is scored in one call.
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
    return {
        "balanced_accuracy": (recall * present).sum(-1) / present.sum(-1).clamp_min(1),
        "accuracy": tp.sum(-1) / n.clamp_min(1),
        "macro_f1": f1.mean(-1),
        "mcc": torch.where(den > 0, num / den.clamp_min(1e-300).sqrt(), torch.zeros_like(num)),
        "f1_per_class": f1,
        "recall_per_class": recall,
        "support": support,
    }


def metrics_from_confusion(cm: torch.Tensor) -> dict[str, float | list[float]]:
    """:func:`confusion_scores` of one ``(C, C)`` matrix as plain Python numbers (for JSON and tables)."""
    if cm.ndim != 2:
        raise ValueError(f"confusion matrix must be square (C, C), got shape={tuple(cm.shape)}")
    scores = confusion_scores(cm)
    out: dict[str, float | list[float]] = {k: float(v) for k, v in scores.items() if v.ndim == 0}
    out["f1_per_class"] = scores["f1_per_class"].tolist()
    out["recall_per_class"] = scores["recall_per_class"].tolist()
    out["support"] = [int(v) for v in scores["support"]]
    return out


class Evaluator:
    """Accumulates logits over a split; ``compute()`` syncs across DDP ranks and returns metrics."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        # argmax predictions and checked labels are in range by construction; torchmetrics' argument
        # validation would read values back to the host on every update
        self.confusion = MulticlassConfusionMatrix(num_classes, validate_args=False).to(device)
        self.auroc = MulticlassAUROC(num_classes, average="none", thresholds=None, validate_args=False).to(
            device
        )

    def reset(self) -> None:
        self.confusion.reset()
        self.auroc.reset()

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        probs = logits.float().softmax(-1)
        self.confusion.update(probs.argmax(-1), target)
        self.auroc.update(probs, target)

    def compute(self) -> dict[str, float | list[float] | list[list[int]]]:
        cm = self.confusion.compute()
        out = metrics_from_confusion(cm)
        present = cm.sum(1) > 0
        if int(present.sum()) >= 2:
            per_class = self.auroc.compute().double().cpu()
            out["auroc"] = float(per_class[present.cpu()].mean())
            out["auroc_per_class"] = [float(v) if p else math.nan for v, p in zip(per_class, present.cpu())]
        else:  # AUC is undefined with a single class present
            out["auroc"] = math.nan
        out["confusion_matrix"] = cm.long().cpu().tolist()
        return out
