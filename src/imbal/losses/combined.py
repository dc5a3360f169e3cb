"""Weighted sums of losses (``ce+mcc``, ``ce+0.5*f1``) with optional per-sample class weights."""

from __future__ import annotations

import re

import torch
from torch import nn

from imbal.losses._checks import compute_dtype
from imbal.losses.modules import CrossEntropy, FocalLoss, LogitAdjustedCE, SoftF1Loss, SoftMCCLoss

LOSS_TERMS = ("ce", "focal", "f1", "mcc", "la-ce")
_TERM = re.compile(r"^\s*(?:(?P<coef>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*\*\s*)?(?P<name>[a-z0-9-]+)\s*$")


class CombinedLoss(nn.Module):
    """``sum_j coef_j * term_j(logits, target)``.

    With ``class_weights`` (``w_c``, a buffer), each per-sample term becomes ``mean_i w_{y_i} l_i``
    and each batch-level metric term is scaled by the batch's mean weight ``mean_i w_{y_i}``: what a
    per-sample weight does to a batch-level term (SPEC section 1). Without weights every term is a
    plain mean, so ``ce`` alone equals ``F.cross_entropy``.
    """

    class_weights: torch.Tensor | None

    def __init__(
        self, terms: list[tuple[float, str, nn.Module]], class_weights: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError("CombinedLoss needs at least one term")
        self.coefficients = [float(c) for c, _, _ in terms]
        self.names = [n for _, n, _ in terms]
        self.terms = nn.ModuleList([m for _, _, m in terms])
        self.register_buffer(
            "class_weights",
            None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32),
        )

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weights = None
        if self.class_weights is not None:
            weights = self.class_weights.to(logits.device)[target]
        total = logits.new_zeros((), dtype=compute_dtype(logits))
        for coef, term in zip(self.coefficients, self.terms):
            if term.per_sample:
                value = term(logits, target, reduction="none")
                value = (value * weights).mean() if weights is not None else value.mean()
            else:
                value = term(logits, target)
                if weights is not None:
                    value = value * weights.mean()
            total = total + coef * value
        return total

    def extra_repr(self) -> str:
        return " + ".join(f"{c:g}*{n}" for c, n in zip(self.coefficients, self.names))


def parse_loss_name(name: str) -> list[tuple[float, str]]:
    """``"ce+0.5*mcc"`` -> ``[(1.0, "ce"), (0.5, "mcc")]``; unknown terms raise ``ValueError``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"loss name must be a non-empty string like 'ce+mcc', got {name!r}")
    out = []
    for part in name.lower().split("+"):
        m = _TERM.match(part)
        if m is None or m["name"] not in LOSS_TERMS:
            raise ValueError(
                f"unknown loss term {part.strip()!r} in {name!r}; expected a '+'-sum of {', '.join(LOSS_TERMS)}"
                " with optional coefficients such as 'ce+0.5*mcc'"
            )
        out.append((float(m["coef"]) if m["coef"] else 1.0, m["name"]))
    return out


def build_loss(
    name: str,
    *,
    class_counts: torch.Tensor | list[int] | None = None,
    class_weights: torch.Tensor | list[float] | None = None,
    focal_gamma: float = 2.0,
    f1_average: str = "macro",
    la_tau: float = 1.0,
    sync: bool = True,
    validate: bool = True,
) -> CombinedLoss:
    """Build a loss from its name: ``ce, focal, f1, mcc, ce+f1, ce+mcc, la-ce`` or any ``a+b`` sum.

    Args:
        name: e.g. ``"ce+mcc"`` or ``"ce+0.5*mcc"``.
        class_counts: training counts per class; needed by ``la-ce`` (its priors).
        class_weights: per-class weights ``(C,)`` applied per sample (see :class:`CombinedLoss`);
            pass ``inverse_frequency_weights(class_counts)`` for the study's "+Weights" rows.
        focal_gamma, f1_average, la_tau: settings of the focal, F1 and logit-adjusted terms.
        sync: metric terms sum their counts over DDP ranks.
        validate: value checks (label range, finiteness) in every call; a training loop that checked
            its labels at load time passes ``False`` to avoid a host sync per step.
    """
    terms: list[tuple[float, str, nn.Module]] = []
    for coef, term in parse_loss_name(name):
        if term == "ce":
            module: nn.Module = CrossEntropy(validate=validate)
        elif term == "focal":
            module = FocalLoss(gamma=focal_gamma, validate=validate)
        elif term == "f1":
            module = SoftF1Loss(average=f1_average, sync=sync, validate=validate)
        elif term == "mcc":
            module = SoftMCCLoss(sync=sync, validate=validate)
        else:
            if class_counts is None:
                raise ValueError("loss 'la-ce' needs class_counts (its class priors)")
            counts = torch.as_tensor(class_counts, dtype=torch.float32)
            module = LogitAdjustedCE(counts / counts.sum(), tau=la_tau, validate=validate)
        terms.append((coef, term, module))
    return CombinedLoss(terms, class_weights=class_weights)
