"""torchmetrics states of imbal's score-based metrics, apart so that ``imbal.metrics`` imports without torchmetrics."""

import torch
from torchmetrics import Metric

from imbal.metrics import calibration_bins, summed_squared_error


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
