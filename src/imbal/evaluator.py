"""The evaluation loop's metric state: torchmetrics accumulators, synced over DDP ranks.

Apart from :mod:`imbal.metrics` (the metric table and the functions of a confusion matrix) because
torchmetrics pulls in scipy and matplotlib (about 1 s), and config checks, reports and the CLI
need only the table.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAUROC, MulticlassConfusionMatrix

from imbal.metrics import (
    ECE_BINS,
    calibration_bins,
    ece_from_bins,
    metrics_from_confusion,
    summed_squared_error,
)


class CalibrationSums(Metric):
    """The ECE bins and the summed squared error as sum-reduced torchmetrics states (synced over ranks)."""

    full_state_update = False
    bins: torch.Tensor
    squared_error: torch.Tensor

    def __init__(self, n_bins: int) -> None:
        super().__init__()
        self.n_bins = n_bins
        self.add_state("bins", torch.zeros(3, n_bins, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("squared_error", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor, target: torch.Tensor) -> None:
        self.bins += calibration_bins(probs, target, self.n_bins)
        self.squared_error += summed_squared_error(probs, target)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.bins, self.squared_error


class Evaluator:
    """Accumulates logits over a split; ``compute()`` syncs across DDP ranks and returns metrics.

    ``ordinal`` (the classes are ordered grades) adds ``qwk``; ``ece`` and ``brier`` score the softmax.
    """

    def __init__(
        self,
        num_classes: int,
        device: torch.device | str = "cpu",
        minority: int | None = None,
        ordinal: bool = False,
    ) -> None:
        self.num_classes, self.minority, self.ordinal = num_classes, minority, ordinal
        # argmax predictions and checked labels are in range by construction; torchmetrics' argument
        # validation would read values back to the host on every update
        self.confusion = MulticlassConfusionMatrix(num_classes, validate_args=False).to(device)
        self.auroc = MulticlassAUROC(num_classes, average="none", thresholds=None, validate_args=False).to(
            device
        )
        self.calibration = CalibrationSums(ECE_BINS).to(device)

    def reset(self) -> None:
        self.confusion.reset()
        self.auroc.reset()
        self.calibration.reset()

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        probs = logits.float().softmax(-1)
        self.confusion.update(probs.argmax(-1), target)
        self.auroc.update(probs, target)
        self.calibration.update(probs, target)

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
        if not self.ordinal:
            del out["qwk"]  # class indices carry no order: the kappa's weights would be arbitrary
        bins, squared_error = self.calibration.compute()
        n = float(bins[0].sum())
        out["ece"] = ece_from_bins(bins.cpu())
        out["brier"] = float(squared_error) / n if n > 0 else math.nan
        out["confusion_matrix"] = cm.long().cpu().tolist()
        return out
