"""Input validation shared by every loss: one place, one wording for each message."""

from __future__ import annotations

import torch


def compute_dtype(logits: torch.Tensor) -> torch.dtype:
    """The dtype losses compute in: float64 stays, everything else (bf16, fp16, fp32) becomes float32."""
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def check_logits_target(logits: torch.Tensor, target: torch.Tensor, validate: bool = True) -> int:
    """Validate ``logits (N, C)`` floating and ``target (N,)`` integer in ``[0, C)``; return ``C``.

    Shapes and dtypes are always checked. ``validate=False`` skips the label-range and finiteness
    checks: they read values back from the device, a host sync per call that a training loop on a
    GPU avoids (imbal's loop checks labels once at load time and the loss once per epoch).
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"logits and target must be torch.Tensor, got {type(logits).__name__} and {type(target).__name__}"
        )
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got ndim={logits.ndim} shape={tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating tensor, got dtype={logits.dtype}")
    n, c = logits.shape
    if c < 2:
        raise ValueError(f"logits must have C >= 2 classes, got C={c}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(
            f"target must hold integer class indices of shape (N,), got dtype={target.dtype}"
            " (one-hot or probability targets are not accepted)"
        )
    if target.ndim != 1:
        raise ValueError(
            f"target must have shape (N,) with class indices, got shape={tuple(target.shape)}"
            " (one-hot targets are not accepted)"
        )
    if target.shape[0] != n:
        raise ValueError(
            f"logits and target must have the same N, got logits N={n} and target N={target.shape[0]}"
        )
    if not validate:
        return c
    if n > 0:
        lo, hi = int(target.min()), int(target.max())
        if lo < 0 or hi >= c:
            raise ValueError(f"target labels must lie in [0, {c}), got min={lo} max={hi}")
    bad = (~torch.isfinite(logits)).sum()
    if bad:
        raise ValueError(f"logits must be finite, got {int(bad)} non-finite value(s) (NaN or inf)")
    return c
