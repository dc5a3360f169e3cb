"""Soft MCC and soft F1: batch-level metric losses on the soft counts (docs/method.md, "Losses").

Both are ratios of soft counts, so they can be computed on the current batch's counts plus the
detached counts of earlier batches (``memory_counts``, the soft-count memory): the ratio then sees
a larger effective batch while the gradient flows through the current batch only.
"""

from __future__ import annotations

from typing import Literal

import torch

from imbal.losses.confusion import confusion_from_counts, soft_counts

F1Average = Literal["macro", "positive"]
F1_AVERAGES: tuple[F1Average, ...] = ("macro", "positive")


def with_memory(counts: torch.Tensor, memory_counts: torch.Tensor | None) -> torch.Tensor:
    """``counts + memory_counts`` with the memory detached: the ratio sees both, the gradient this batch only.

    Both are ``(4, C)`` soft counts (:func:`imbal.losses.soft_counts`); ``None`` returns ``counts``.
    A memory of another shape raises ``ValueError``.
    """
    if memory_counts is None:
        return counts
    if memory_counts.shape != counts.shape:
        raise ValueError(
            f"memory_counts must have the counts' shape {tuple(counts.shape)} (4, C), "
            f"got shape={tuple(memory_counts.shape)}"
        )
    return counts + memory_counts.detach().to(counts)


def mcc_from_counts(counts: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Gorodkin's R_K of ``(4, C)`` soft counts; 0 (with zero gradient) when the denominator vanishes."""
    tp, q, t, _ = counts
    s = t.sum()
    c = tp.sum()
    num = c * s - (t * q).sum()
    den2 = (s * s - (q * q).sum()) * (s * s - (t * t).sum())
    # the clamp keeps the unselected branch of `where` finite, so no NaN leaks into the gradient
    safe = den2.clamp_min(eps)
    # NaN must propagate (a NaN comparison is False and would hide it behind the 0 branch)
    defined = (den2 > eps) | den2.isnan()
    return torch.where(defined, num / safe.sqrt(), torch.zeros_like(num))


def f1_from_counts(
    counts: torch.Tensor, average: F1Average = "macro", positive_class: int = 1, eps: float = 1e-7
) -> torch.Tensor:
    """Soft F1 of ``(4, C)`` counts: the mean over classes, or the F1 of ``positive_class`` (binary)."""
    tp, fp, fn, _ = confusion_from_counts(counts)
    precision = tp / (tp + fp + eps)
    recall = tp / (tp + fn + eps)
    f1 = 2 * precision * recall / (precision + recall + eps)
    return f1[positive_class] if average == "positive" else f1.mean()


def check_f1_settings(average: str, positive_class: int, num_classes: int | None) -> None:
    """Raise ``ValueError`` unless ``average`` is macro or positive, and positive is binary (class 0 or 1).

    ``num_classes=None`` skips the binary check (the number of classes is not known yet).
    """
    if average not in F1_AVERAGES:
        raise ValueError(f"average must be 'macro' or 'positive', got {average!r}")
    if average == "positive":
        if num_classes is not None and num_classes != 2:
            raise ValueError(f"average='positive' needs binary logits of shape (N, 2), got C={num_classes}")
        if positive_class not in (0, 1):
            raise ValueError(f"positive_class must be 0 or 1 for binary F1, got {positive_class}")


def soft_mcc(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    memory_counts: torch.Tensor | None = None,
    eps: float = 1e-7,
    sync: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """Gorodkin's multi-class R_K on the soft confusion matrix (a scalar in [-1, 1]).

    ``c = sum_k TP_k``, ``s = N``, ``t_k`` true counts, ``q_k`` predicted mass::

        R_K = (c s - sum_k t_k q_k) / (sqrt(s^2 - sum_k q_k^2) sqrt(s^2 - sum_k t_k^2))

    R_K is defined as 0 when the denominator vanishes (one class in the batch, or all probability
    mass on one class), as ``sklearn.metrics.matthews_corrcoef`` does. The gradient is then 0,
    never NaN. For C = 2 this equals the binary ``(TP TN - FP FN) / sqrt(...)``.
    ``memory_counts`` ``(4, C)`` are detached counts of earlier batches added before the ratio.

    Example:
        >>> import torch
        >>> from imbal.losses import soft_mcc
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> round(float(soft_mcc(logits, torch.tensor([0, 0, 1, 1]))), 4)
        0.4882
    """
    counts = soft_counts(logits, target, sync=sync, validate=validate)
    return mcc_from_counts(with_memory(counts, memory_counts), eps)


def soft_mcc_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    memory_counts: torch.Tensor | None = None,
    eps: float = 1e-7,
    sync: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """``1 - soft_mcc(logits, target)``: in [0, 2], 0 for a perfect confident batch.

    Args:
        logits: ``(N, C)`` logits; softmax is applied inside.
        target: ``(N,)`` integer labels.
        memory_counts: optional ``(4, C)`` soft counts of earlier batches (no gradient), added to
            this batch's counts before the ratio (docs/method.md, "Soft-count memory").
        eps: floor of the squared denominator.
        sync: under ``torch.distributed``, sum the soft counts over ranks before the ratio, so the
            loss is the one of the global batch.
        validate: check label range and finiteness (a host sync per call).

    Reference: Gorodkin, "Comparing two K-category assignments by a K-category correlation
    coefficient", Comput. Biol. Chem. 2004; Scholz et al., MIDL 2024.

    Example:
        >>> import torch
        >>> from imbal.losses import soft_mcc_loss
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]], requires_grad=True)
        >>> loss = soft_mcc_loss(logits, torch.tensor([0, 0, 1, 1]))
        >>> round(loss.item(), 4)
        0.5118
        >>> loss.backward()  # gradients reach every logit of the batch
        >>> logits.grad.shape
        torch.Size([4, 2])
    """
    return 1.0 - soft_mcc(logits, target, memory_counts=memory_counts, eps=eps, sync=sync, validate=validate)


def soft_f1(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    average: F1Average = "macro",
    positive_class: int = 1,
    memory_counts: torch.Tensor | None = None,
    eps: float = 1e-7,
    sync: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """Soft F1 on the soft confusion counts.

    ``P_k = TP_k / (TP_k + FP_k + eps)``, ``R_k = TP_k / (TP_k + FN_k + eps)``,
    ``F1_k = 2 P_k R_k / (P_k + R_k + eps)``; ``macro`` averages over all C classes (a class absent
    from the batch and never predicted scores 0), ``positive`` returns ``F1`` of ``positive_class``
    (binary only; imbal's training loop passes the training set's minority class).

    Example:
        >>> import torch
        >>> from imbal.losses import soft_f1
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> round(float(soft_f1(logits, torch.tensor([0, 0, 1, 1]))), 4)
        0.7441
    """
    check_f1_settings(average, positive_class, logits.shape[1] if logits.ndim == 2 else None)
    counts = soft_counts(logits, target, sync=sync, validate=validate)
    return f1_from_counts(with_memory(counts, memory_counts), average, positive_class, eps)


def soft_f1_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    average: F1Average = "macro",
    positive_class: int = 1,
    memory_counts: torch.Tensor | None = None,
    eps: float = 1e-7,
    sync: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """``1 - soft_f1(...)`` in [0, 1]; see :func:`soft_f1`. Softmax is applied inside; ``sync`` as in MCC.

    Raises ``ValueError`` for an unknown ``average``, or ``average="positive"`` with more than two classes.

    Example:
        >>> import torch
        >>> from imbal.losses import soft_f1_loss
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> target = torch.tensor([0, 0, 1, 1])
        >>> round(float(soft_f1_loss(logits, target)), 4)  # 1 - mean of both classes' F1
        0.2559
        >>> round(float(soft_f1_loss(logits, target, average="positive", positive_class=1)), 4)
        0.2577
    """
    return 1.0 - soft_f1(
        logits,
        target,
        average=average,
        positive_class=positive_class,
        memory_counts=memory_counts,
        eps=eps,
        sync=sync,
        validate=validate,
    )
