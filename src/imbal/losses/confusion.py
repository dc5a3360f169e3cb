"""Soft confusion counts, the batch statistic that the metric losses are ratios of."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imbal.losses._checks import check_logits_target, compute_dtype


def _all_reduce_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Sum ``x`` over all ranks when a process group is up; gradients flow back to every rank.

    ``torch.distributed.nn.functional.all_reduce`` is autograd-aware: its backward all-reduces the
    incoming gradient, so each rank receives d(global loss)/d(local counts) summed over ranks,
    i.e. ``world_size`` times the gradient it would get alone. DDP's gradient averaging divides by
    ``world_size`` again, which together yields exactly the full-batch gradient (tested with gloo).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import warnings

    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():
        # deprecated in favour of _functional_collectives, whose all_reduce has no autograd on CPU/gloo
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(x)


def soft_counts(
    logits: torch.Tensor,
    target: torch.Tensor,
    num_classes: int | None = None,
    *,
    sync: bool = False,
    validate: bool = True,
) -> torch.Tensor:
    """The four soft count vectors that every metric loss is a ratio of, stacked as ``(4, C)``.

    Rows: ``TP_k = sum_i y_ik p_ik``, predicted mass ``q_k = sum_i p_ik``, true count
    ``t_k = sum_i y_ik`` and the batch size ``N`` (repeated per class), with ``p = softmax(logits)``.
    Counts add over batches and ranks, which is what DDP sync and the soft-count memory rely on
    (docs/method.md, "Soft counts").

    Args:
        logits: ``(N, C)`` floating logits (softmax is applied here, in float32 at least).
        target: ``(N,)`` integer labels in ``[0, C)``.
        num_classes: optional check that ``C`` equals this.
        sync: sum the counts over all DDP ranks (with gradients) when distributed is initialised.
        validate: check label range and finiteness (a host sync; see ``check_logits_target``).
    """
    c = check_logits_target(logits, target, validate)
    if num_classes is not None and num_classes != c:
        raise ValueError(f"num_classes={num_classes} does not match logits C={c}")
    dtype = compute_dtype(logits)
    # float32 even under autocast: bf16 sums of ~N probabilities lose the small class counts
    with torch.autocast(device_type=logits.device.type, enabled=False):
        p = logits.to(dtype).softmax(dim=-1)
        y = F.one_hot(target, c).to(dtype)
        counts = torch.stack([(y * p).sum(0), p.sum(0), y.sum(0), torch.full_like(p[0], float(len(p)))])
        return _all_reduce_with_grad(counts) if sync else counts


def confusion_from_counts(
    counts: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(TP, FP, FN, TN)`` per class from the ``(4, C)`` counts of :func:`soft_counts`."""
    if counts.ndim != 2 or counts.shape[0] != 4:
        raise ValueError(f"counts must have shape (4, C), got shape={tuple(counts.shape)}")
    tp, q, t, n = counts
    fp = q - tp
    fn = t - tp
    return tp, fp, fn, n - tp - fp - fn


def soft_confusion(
    logits: torch.Tensor,
    target: torch.Tensor,
    num_classes: int | None = None,
    *,
    sync: bool = False,
    validate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft per-class counts from softmax probabilities.

    With ``p = softmax(logits)`` and ``y = one_hot(target)``, for each class ``k``::

        TP_k = sum_i y_ik p_ik          FP_k = sum_i (1 - y_ik) p_ik
        FN_k = sum_i y_ik (1 - p_ik)    TN_k = sum_i (1 - y_ik)(1 - p_ik)

    Arguments as in :func:`soft_counts`. Returns ``(tp, fp, fn, tn)``, each ``(C,)``, float32
    (float64 for float64 logits).
    """
    return confusion_from_counts(soft_counts(logits, target, num_classes, sync=sync, validate=validate))
