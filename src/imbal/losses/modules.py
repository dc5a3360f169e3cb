"""Thin ``nn.Module`` wrappers: each stores its settings and calls the functional core."""

from __future__ import annotations

import torch
from torch import nn

from imbal.losses.confusion import soft_counts
from imbal.losses.metric_losses import (
    F1Average,
    check_f1_settings,
    f1_from_counts,
    mcc_from_counts,
    with_memory,
)
from imbal.losses.sample_losses import Reduction, cross_entropy, focal_loss, logit_adjusted_ce


class _MetricLoss(nn.Module):
    """Base of the batch-level metric losses: holds the optional soft-count memory.

    With ``memory = K > 0`` the module keeps the detached ``(4, C)`` soft counts of its last ``K``
    training batches in the buffer ``memory_counts`` ``(K, 4, C)`` and adds their sum to the current
    batch's counts before the ratio (docs/method.md, "Soft-count memory"). This is state: a
    ``forward`` in training mode pushes the current batch's counts into the queue (after the DDP
    sum, so every rank holds the same queue); ``eval()`` mode reads the queue but never changes it.
    The buffers travel in ``state_dict``, so a checkpoint resumes the queue exactly. ``K = 0``
    (the default) is the plain batch loss.
    """

    memory_counts: torch.Tensor
    memory_position: torch.Tensor

    def __init__(self, memory: int, num_classes: int | None, sync: bool, validate: bool) -> None:
        super().__init__()
        if not isinstance(memory, int) or memory < 0:
            raise ValueError(f"memory must be an int >= 0 (batches remembered), got {memory!r}")
        if memory and (num_classes is None or num_classes < 2):
            raise ValueError(f"memory={memory} needs num_classes >= 2 to size its queue, got {num_classes}")
        self.memory, self.sync, self.validate = memory, sync, validate
        self.register_buffer("memory_counts", torch.zeros(memory, 4, num_classes or 0))
        self.register_buffer("memory_position", torch.zeros((), dtype=torch.long))

    def counts(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This batch's counts (synced, with gradient) and the remembered counts (or None)."""
        counts = soft_counts(logits, target, sync=self.sync, validate=self.validate)
        if not self.memory:
            return counts, None
        if counts.shape != self.memory_counts.shape[1:]:
            raise ValueError(
                f"logits have C={counts.shape[1]} classes, the memory was built for "
                f"C={self.memory_counts.shape[2]}"
            )
        remembered = self.memory_counts.sum(0)
        if self.training:
            with torch.no_grad():
                # index_copy_ with a device-side position: no host sync per step
                self.memory_counts.index_copy_(
                    0, self.memory_position.view(1), counts.detach().to(self.memory_counts)[None]
                )
                self.memory_position.add_(1).remainder_(self.memory)
        return counts, remembered

    def extra_repr(self) -> str:
        return f"memory={self.memory}" if self.memory else ""


class SoftMCCLoss(_MetricLoss):
    """Module form of :func:`imbal.losses.soft_mcc_loss`, with the optional soft-count memory.

    Args:
        eps: floor of the squared denominator.
        sync: sum the soft counts over DDP ranks before the ratio.
        validate: check label range and finiteness in every call (a host sync).
        memory: batches of detached counts to remember (0: the plain batch loss).
        num_classes: ``C``; required when ``memory > 0`` (it sizes the queue).

    Example:
        >>> import torch
        >>> from imbal.losses import SoftMCCLoss, soft_mcc_loss
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> target = torch.tensor([0, 0, 1, 1])
        >>> loss = SoftMCCLoss(memory=2, num_classes=2)
        >>> round(float(loss(logits, target)), 4)
        0.5118
        >>> round(float(soft_mcc_loss(logits[:2], target[:2])), 4)  # one class: no MCC, loss 1
        1.0
        >>> round(float(loss(logits[:2], target[:2])), 4)  # the remembered batch gives it an MCC
        0.5323
    """

    def __init__(
        self,
        eps: float = 1e-7,
        sync: bool = True,
        validate: bool = True,
        memory: int = 0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(memory, num_classes, sync, validate)
        self.eps = eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``1 - R_K`` of ``logits (N, C)`` and ``target (N,)``, a scalar in [0, 2]."""
        counts, remembered = self.counts(logits, target)
        return 1.0 - mcc_from_counts(with_memory(counts, remembered), self.eps)


class SoftF1Loss(_MetricLoss):
    """Module form of :func:`imbal.losses.soft_f1_loss`, with the optional soft-count memory.

    Args:
        average: ``"macro"`` (mean over classes) or ``"positive"`` (binary: ``positive_class``'s F1).
        eps: floor of the precision, recall and F1 denominators.
        sync: sum the soft counts over DDP ranks before the ratio.
        validate: check label range and finiteness in every call (a host sync).
        positive_class: 0 or 1, read with ``average="positive"`` only.
        memory: batches of detached counts to remember (0: the plain batch loss).
        num_classes: ``C``; required when ``memory > 0`` (it sizes the queue).

    Example:
        >>> import torch
        >>> from imbal.losses import SoftF1Loss
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> loss = SoftF1Loss(average="positive", positive_class=1)
        >>> round(float(loss(logits, torch.tensor([0, 0, 1, 1]))), 4)
        0.2577
    """

    def __init__(
        self,
        average: F1Average = "macro",
        eps: float = 1e-7,
        sync: bool = True,
        validate: bool = True,
        positive_class: int = 1,
        memory: int = 0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(memory, num_classes, sync, validate)
        check_f1_settings(average, positive_class, num_classes)
        self.average, self.positive_class, self.eps = average, positive_class, eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``1 - F1`` of ``logits (N, C)`` and ``target (N,)``, a scalar in [0, 1]."""
        check_f1_settings(self.average, self.positive_class, logits.shape[1] if logits.ndim == 2 else None)
        counts, remembered = self.counts(logits, target)
        return 1.0 - f1_from_counts(
            with_memory(counts, remembered), self.average, self.positive_class, self.eps
        )


class CrossEntropy(nn.Module):
    """Module form of :func:`imbal.losses.cross_entropy`; ``reduction='none'`` gives ``(N,)``.

    ``validate``: check label range and finiteness in every call (a host sync).

    Example:
        >>> import torch
        >>> from imbal.losses import CrossEntropy
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> CrossEntropy()(logits, torch.tensor([0, 0, 1, 1]), reduction="none").shape
        torch.Size([4])
    """

    def __init__(self, validate: bool = True) -> None:
        super().__init__()
        self.validate = validate

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean"
    ) -> torch.Tensor:
        """Cross-entropy of ``logits (N, C)`` and ``target (N,)``: a scalar, or ``(N,)`` for ``"none"``."""
        return cross_entropy(logits, target, reduction=reduction, validate=self.validate)


class FocalLoss(nn.Module):
    """Module form of :func:`imbal.losses.focal_loss`; ``alpha`` is kept as a buffer.

    Args:
        gamma: focusing parameter, >= 0 (``ValueError`` otherwise); 0 without ``alpha`` is cross-entropy.
        alpha: optional per-class weights ``(C,)``.
        validate: check label range and finiteness in every call (a host sync).

    Example:
        >>> import torch
        >>> from imbal.losses import FocalLoss
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> loss = FocalLoss(gamma=2.0, alpha=torch.tensor([0.25, 0.75]))
        >>> round(float(loss(logits, torch.tensor([0, 0, 1, 1]))), 4)
        0.0304
    """

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
        """Focal loss of ``logits (N, C)`` and ``target (N,)``: a scalar, or ``(N,)`` for ``"none"``."""
        return focal_loss(
            logits, target, gamma=self.gamma, alpha=self.alpha, reduction=reduction, validate=self.validate
        )


class LogitAdjustedCE(nn.Module):
    """Module form of :func:`imbal.losses.logit_adjusted_ce`; the priors are a buffer.

    Args:
        class_priors: ``(C,)`` positive class priors (normalised to sum to 1 in every call).
        tau: weight of ``log(prior)`` added to the logits; 0 is cross-entropy.
        validate: check label range, finiteness and the priors in every call (a host sync).

    Example:
        >>> import torch
        >>> from imbal.losses import LogitAdjustedCE
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> loss = LogitAdjustedCE(torch.tensor([0.9, 0.1]), tau=1.0)
        >>> round(float(loss(logits, torch.tensor([0, 0, 1, 1]))), 4)
        0.6926
    """

    class_priors: torch.Tensor

    def __init__(self, class_priors: torch.Tensor, tau: float = 1.0, validate: bool = True) -> None:
        super().__init__()
        self.tau, self.validate = tau, validate
        self.register_buffer("class_priors", torch.as_tensor(class_priors, dtype=torch.float32))

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean"
    ) -> torch.Tensor:
        """Logit-adjusted CE of ``logits (N, C)``, ``target (N,)``: a scalar, or ``(N,)`` for ``"none"``."""
        return logit_adjusted_ce(
            logits, target, self.class_priors, self.tau, reduction=reduction, validate=self.validate
        )
