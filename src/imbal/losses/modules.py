"""Thin ``nn.Module`` wrappers: each stores its settings and calls the functional core."""

from __future__ import annotations

import torch
from torch import nn

from imbal.losses.metric_losses import soft_f1_loss, soft_mcc_loss
from imbal.losses.sample_losses import Reduction, cross_entropy, focal_loss, logit_adjusted_ce


class SoftMCCLoss(nn.Module):
    """Module form of :func:`imbal.losses.soft_mcc_loss` (a batch-level loss)."""

    per_sample = False

    def __init__(self, eps: float = 1e-7, sync: bool = True, validate: bool = True) -> None:
        super().__init__()
        self.eps, self.sync, self.validate = eps, sync, validate

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_mcc_loss(logits, target, eps=self.eps, sync=self.sync, validate=self.validate)


class SoftF1Loss(nn.Module):
    """Module form of :func:`imbal.losses.soft_f1_loss` (a batch-level loss)."""

    per_sample = False

    def __init__(
        self, average: str = "macro", eps: float = 1e-7, sync: bool = True, validate: bool = True
    ) -> None:
        super().__init__()
        if average not in ("macro", "positive"):
            raise ValueError(f"average must be 'macro' or 'positive', got {average!r}")
        self.average, self.eps, self.sync, self.validate = average, eps, sync, validate

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_f1_loss(
            logits, target, average=self.average, eps=self.eps, sync=self.sync, validate=self.validate
        )


class CrossEntropy(nn.Module):
    """Module form of :func:`imbal.losses.cross_entropy`; ``reduction='none'`` gives ``(N,)``."""

    per_sample = True

    def __init__(self, validate: bool = True) -> None:
        super().__init__()
        self.validate = validate

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean"
    ) -> torch.Tensor:
        return cross_entropy(logits, target, reduction=reduction, validate=self.validate)


class FocalLoss(nn.Module):
    """Module form of :func:`imbal.losses.focal_loss`; ``alpha`` is kept as a buffer."""

    per_sample = True
    alpha: torch.Tensor | None

    def __init__(self, gamma: float = 2.0, alpha: torch.Tensor | None = None, validate: bool = True) -> None:
        super().__init__()
        self.validate = validate
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        self.register_buffer("alpha", None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32))

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean"
    ) -> torch.Tensor:
        return focal_loss(
            logits, target, gamma=self.gamma, alpha=self.alpha, reduction=reduction, validate=self.validate
        )


class LogitAdjustedCE(nn.Module):
    """Module form of :func:`imbal.losses.logit_adjusted_ce`; the priors are a buffer."""

    per_sample = True
    class_priors: torch.Tensor

    def __init__(self, class_priors: torch.Tensor, tau: float = 1.0, validate: bool = True) -> None:
        super().__init__()
        self.tau, self.validate = tau, validate
        self.register_buffer("class_priors", torch.as_tensor(class_priors, dtype=torch.float32))

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean"
    ) -> torch.Tensor:
        return logit_adjusted_ce(
            logits, target, self.class_priors, self.tau, reduction=reduction, validate=self.validate
        )
