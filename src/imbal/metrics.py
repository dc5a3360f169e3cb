"""Classification metrics from an accumulated confusion matrix (never averaged over batches).

:class:`Evaluator` accumulates with torchmetrics (so DDP ranks are synced on ``compute``) and turns
the confusion matrix into balanced accuracy, accuracy, macro F1, multi-class MCC and class-wise F1,
plus macro one-vs-rest ROC-AUC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Metric:
    """A scalar test metric: its label, range, and whether the report compares it to the baseline."""

    name: str
    label: str
    low: float  # the metric's range, used for fixed figure scales
    high: float
    compared: bool  # paired against the baseline in reports (AUROC needs scores, not hard labels)
    from_confusion: bool = True  # a ratio of the confusion matrix (AUROC is not: it needs scores)
    higher_is_better: bool = True
    chance_note: bool = False  # the report states what always predicting the majority class scores


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
    ]
}


def confusion_scores(cm: torch.Tensor, minority: int | None = None) -> dict[str, torch.Tensor]:
    """Ratio metrics of confusion matrices ``(..., C, C)`` (rows true, columns predicted), batched.

    Returns tensors of shape ``(...)`` (``balanced_accuracy``, ``accuracy``, ``macro_f1``, ``mcc``) and
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
    out = {
        "balanced_accuracy": (recall * present).sum(-1) / present.sum(-1).clamp_min(1),
        "accuracy": tp.sum(-1) / n.clamp_min(1),
        "macro_f1": f1.mean(-1),
        "mcc": torch.where(den > 0, num / den.clamp_min(1e-300).sqrt(), torch.zeros_like(num)),
        "f1_per_class": f1,
        "recall_per_class": recall,
        "support": support,
    }
    if minority is not None:
        out["minority_f1"] = f1[..., minority]
    return out


def metrics_from_confusion(cm: torch.Tensor, minority: int | None = None) -> dict[str, float | list[float]]:
    """:func:`confusion_scores` of one ``(C, C)`` matrix as plain Python numbers (for JSON and tables)."""
    if cm.ndim != 2:
        raise ValueError(f"confusion matrix must be square (C, C), got shape={tuple(cm.shape)}")
    scores = confusion_scores(cm, minority)
    out: dict[str, float | list[float]] = {k: float(v) for k, v in scores.items() if v.ndim == 0}
    out["f1_per_class"] = scores["f1_per_class"].tolist()
    out["recall_per_class"] = scores["recall_per_class"].tolist()
    out["support"] = [int(v) for v in scores["support"]]
    return out


class Evaluator:
    """Accumulates logits over a split; ``compute()`` syncs across DDP ranks and returns metrics."""

    def __init__(
        self, num_classes: int, device: torch.device | str = "cpu", minority: int | None = None
    ) -> None:
        # imported here: torchmetrics pulls in scipy and matplotlib (about 1 s), and config checks,
        # reports and the CLI need only METRICS and confusion_scores
        from torchmetrics.classification import MulticlassAUROC, MulticlassConfusionMatrix

        self.num_classes, self.minority = num_classes, minority
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
        out: dict[str, float | list[float] | list[list[int]]] = dict(
            metrics_from_confusion(cm, self.minority)
        )
        present = cm.sum(1) > 0
        if int(present.sum()) >= 2:
            per_class = self.auroc.compute().double().cpu()
            out["auroc"] = float(per_class[present.cpu()].mean())
            out["auroc_per_class"] = [float(v) if p else math.nan for v, p in zip(per_class, present.cpu())]
        else:  # AUC is undefined with a single class present
            out["auroc"] = math.nan
        out["confusion_matrix"] = cm.long().cpu().tolist()
        return out
