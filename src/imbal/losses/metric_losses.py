"""Soft MCC and soft F1: batch-level metric losses on the soft confusion counts (SPEC section 1)."""

from __future__ import annotations

from typing import Literal

import torch

from imbal.losses.confusion import soft_confusion


def soft_mcc(
    logits: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-7, sync: bool = True, validate: bool = True
) -> torch.Tensor:
    """Gorodkin's multi-class R_K on the soft confusion matrix (a scalar in [-1, 1]).

    ``c = sum_k TP_k``, ``s = N``, ``t_k`` true counts, ``q_k`` predicted mass::

        R_K = (c s - sum_k t_k q_k) / (sqrt(s^2 - sum_k q_k^2) sqrt(s^2 - sum_k t_k^2))

    R_K is defined as 0 when the denominator vanishes (one class in the batch, or all probability
    mass on one class), as ``sklearn.metrics.matthews_corrcoef`` does. The gradient is then 0,
    never NaN. For C = 2 this equals the binary ``(TP TN - FP FN) / sqrt(...)``.
    """
    tp, fp, fn, _ = soft_confusion(logits, target, sync=sync, validate=validate)
    t = tp + fn
    q = tp + fp
    s = t.sum()
    c = tp.sum()
    num = c * s - (t * q).sum()
    den2 = (s * s - (q * q).sum()) * (s * s - (t * t).sum())
    # the clamp keeps the unselected branch of `where` finite, so no NaN leaks into the gradient
    safe = den2.clamp_min(eps)
    # NaN must propagate (a NaN comparison is False and would hide it behind the 0 branch)
    defined = (den2 > eps) | den2.isnan()
    return torch.where(defined, num / safe.sqrt(), torch.zeros_like(num))


def soft_mcc_loss(
    logits: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-7, sync: bool = True, validate: bool = True
) -> torch.Tensor:
    """``1 - soft_mcc(logits, target)``: in [0, 2], 0 for a perfect confident batch.

    Args:
        logits: ``(N, C)`` logits; softmax is applied inside.
        target: ``(N,)`` integer labels.
        eps: floor of the squared denominator.
        sync: under ``torch.distributed``, sum the soft counts over ranks before the ratio, so the
            loss is the one of the global batch (SPEC section 1).
        validate: check label range and finiteness (a host sync per call).

    Reference: Gorodkin, "Comparing two K-category assignments by a K-category correlation
    coefficient", Comput. Biol. Chem. 2004; Scholz et al., MIDL 2024.
    """
    return 1.0 - soft_mcc(logits, target, eps=eps, sync=sync, validate=validate)


def soft_f1(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    average: Literal["macro", "positive"] = "macro",
    eps: float = 1e-7,
    sync: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """Soft F1 on the soft confusion counts.

    ``P_k = TP_k / (TP_k + FP_k + eps)``, ``R_k = TP_k / (TP_k + FN_k + eps)``,
    ``F1_k = 2 P_k R_k / (P_k + R_k + eps)``; ``macro`` averages over all C classes (a class absent
    from the batch and never predicted scores 0), ``positive`` returns ``F1_1`` (binary only).
    """
    if average not in ("macro", "positive"):
        raise ValueError(f"average must be 'macro' or 'positive', got {average!r}")
    if average == "positive" and logits.ndim == 2 and logits.shape[1] != 2:
        raise ValueError(f"average='positive' needs binary logits of shape (N, 2), got C={logits.shape[1]}")
    tp, fp, fn, _ = soft_confusion(logits, target, sync=sync, validate=validate)
    precision = tp / (tp + fp + eps)
    recall = tp / (tp + fn + eps)
    f1 = 2 * precision * recall / (precision + recall + eps)
    return f1[1] if average == "positive" else f1.mean()


def soft_f1_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    average: Literal["macro", "positive"] = "macro",
    eps: float = 1e-7,
    sync: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """``1 - soft_f1(...)``; see :func:`soft_f1`. Softmax is applied inside; ``sync`` as in MCC."""
    return 1.0 - soft_f1(logits, target, average=average, eps=eps, sync=sync, validate=validate)
