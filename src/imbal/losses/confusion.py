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

    Args:
        logits: ``(N, C)`` floating logits (softmax is applied here, in float32 at least).
        target: ``(N,)`` integer labels in ``[0, C)``.
        num_classes: optional check that ``C`` equals this.
        sync: sum the counts over all DDP ranks (with gradients) when distributed is initialised.
        validate: check label range and finiteness (a host sync; see ``check_logits_target``).

    Returns:
        ``(tp, fp, fn, tn)``, each of shape ``(C,)`` and dtype float32 (float64 for float64 logits).
    """
    c = check_logits_target(logits, target, validate)
    if num_classes is not None and num_classes != c:
        raise ValueError(f"num_classes={num_classes} does not match logits C={c}")
    dtype = compute_dtype(logits)
    # float32 even under autocast: bf16 sums of ~N probabilities lose the small class counts
    with torch.autocast(device_type=logits.device.type, enabled=False):
        p = logits.to(dtype).softmax(dim=-1)
        y = F.one_hot(target, c).to(dtype)
        tp = (y * p).sum(0)
        q = p.sum(0)  # predicted mass per class
        t = y.sum(0)  # true count per class
        n = torch.full_like(tp, float(logits.shape[0]))
        counts = torch.stack([tp, q, t, n])
        if sync:
            counts = _all_reduce_with_grad(counts)
        tp, q, t, n = counts
        fp = q - tp
        fn = t - tp
        tn = n - tp - fp - fn
    return tp, fp, fn, tn
