"""Per-sample losses (CE, focal, logit-adjusted CE) and the inverse-frequency class weights."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from imbal.losses._checks import check_logits_target, compute_dtype

Reduction = Literal["mean", "sum", "none"]


def _reduce(per_sample: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, *, reduction: Reduction = "mean", validate: bool = True
) -> torch.Tensor:
    """Softmax cross-entropy ``-log p_t`` (validated ``F.cross_entropy``).

    ``logits (N, C)``, integer ``target (N,)``; ``reduction="none"`` gives ``(N,)`` losses.

    Example:
        >>> import torch
        >>> from imbal.losses import cross_entropy
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> round(float(cross_entropy(logits, torch.tensor([0, 0, 1, 1]))), 4)
        0.3309
    """
    check_logits_target(logits, target, validate)
    per_sample = F.cross_entropy(logits.to(compute_dtype(logits)), target, reduction="none")
    return _reduce(per_sample, reduction)


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    """Softmax focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` (Lin et al., ICCV 2017).

    Args:
        logits: ``(N, C)``; softmax is applied inside (log-softmax for stability).
        target: ``(N,)`` integer labels.
        gamma: focusing parameter; ``gamma = 0`` and no ``alpha`` is cross-entropy.
        alpha: optional per-class weights ``(C,)``.
        reduction: ``mean``, ``sum`` or ``none`` (``(N,)`` losses).
        validate: check label range and finiteness (a host sync per call).

    Raises ``ValueError`` for ``gamma < 0`` or an ``alpha`` that is not ``(C,)``.

    Example:
        >>> import torch
        >>> from imbal.losses import focal_loss
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> target = torch.tensor([0, 0, 1, 1])
        >>> round(float(focal_loss(logits, target)), 4)  # confident, correct samples weigh almost nothing
        0.0607
        >>> round(float(focal_loss(logits, target, gamma=0.0)), 4)  # cross-entropy
        0.3309
    """
    c = check_logits_target(logits, target, validate)
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    log_pt = logits.to(compute_dtype(logits)).log_softmax(-1).gather(1, target[:, None]).squeeze(1)
    pt = log_pt.exp()
    loss = -((1 - pt).clamp_min(0) ** gamma) * log_pt if gamma else -log_pt
    if alpha is not None:
        if alpha.shape != (c,):
            raise ValueError(f"alpha must have shape ({c},), got {tuple(alpha.shape)}")
        loss = loss * alpha.to(loss)[target]
    return _reduce(loss, reduction)


def logit_adjusted_ce(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_priors: torch.Tensor,
    tau: float = 1.0,
    *,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    """Logit-adjusted cross-entropy: ``CE(logits + tau * log(prior), target)`` (Menon et al., ICLR 2021).

    ``class_priors`` is ``(C,)``, positive; it is normalised to sum to 1 here. A wrong shape or a
    prior <= 0 raises ``ValueError``.

    Example:
        >>> import torch
        >>> from imbal.losses import logit_adjusted_ce
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> priors = torch.tensor([0.9, 0.1])  # class 1 is rare: its margin must be larger
        >>> round(float(logit_adjusted_ce(logits, torch.tensor([0, 0, 1, 1]), priors)), 4)
        0.6926
    """
    c = check_logits_target(logits, target, validate)
    if class_priors.shape != (c,):
        raise ValueError(f"class_priors must have shape ({c},), got {tuple(class_priors.shape)}")
    if validate and (class_priors <= 0).any():
        raise ValueError("class_priors must be > 0 for every class (a class with no samples has no prior)")
    priors = class_priors.to(compute_dtype(logits))
    adjusted = logits.to(priors.dtype) + tau * (priors / priors.sum()).log().to(logits.device)
    return _reduce(F.cross_entropy(adjusted, target, reduction="none"), reduction)


def inverse_frequency_weights(class_counts: torch.Tensor | list[int]) -> torch.Tensor:
    """Normalised inverse class frequency ``w_c = N / (C n_c)`` (docs/method.md, "Class weights"), float32 ``(C,)``.

    A balanced set gives all ones; the expected weight of a training sample is 1. Fewer than two
    classes, or a class without samples, raises ``ValueError``.

    Example:
        >>> from imbal.losses import inverse_frequency_weights
        >>> inverse_frequency_weights([70, 20, 10])
        tensor([0.4762, 1.6667, 3.3333])
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() < 2:
        raise ValueError(f"class_counts must have shape (C,) with C >= 2, got shape={tuple(counts.shape)}")
    if (counts <= 0).any():
        raise ValueError(f"every class needs at least one sample, got class_counts={counts.long().tolist()}")
    return (counts.sum() / (counts.numel() * counts)).float()
