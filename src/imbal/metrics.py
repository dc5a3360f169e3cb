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


def metrics_from_confusion(cm: torch.Tensor) -> dict[str, float | list[float]]:
    """Metrics from a ``(C, C)`` confusion matrix, rows = true class, columns = prediction.

    Conventions follow scikit-learn: balanced accuracy averages recall over classes present in the
    targets; macro F1 averages over all C classes with 0 for undefined ones; MCC is Gorodkin's R_K,
    0 when its denominator vanishes.
    """
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got shape={tuple(cm.shape)}")
    cm = cm.double()
    tp = cm.diag()
    support, predicted, n = cm.sum(1), cm.sum(0), cm.sum()
    present = support > 0
    recall = torch.where(present, tp / support.clamp_min(1), torch.zeros_like(tp))
    f1_den = support + predicted
    f1 = torch.where(f1_den > 0, 2 * tp / f1_den.clamp_min(1), torch.zeros_like(tp))
    num = tp.sum() * n - (support * predicted).sum()
    den = (n * n - (predicted * predicted).sum()) * (n * n - (support * support).sum())
    return {
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "accuracy": float(tp.sum() / n) if n > 0 else 0.0,
        "macro_f1": float(f1.mean()),
        "mcc": float(num / den.sqrt()) if den > 0 else 0.0,
        "f1_per_class": [float(v) for v in f1],
        "recall_per_class": [float(v) for v in recall],
        "support": [int(v) for v in support],
    }


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
