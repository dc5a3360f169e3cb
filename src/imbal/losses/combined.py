"""Weighted sums of losses (``ce+mcc``, ``ce+0.5*f1``) with optional per-sample class weights."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from imbal.losses._checks import compute_dtype
from imbal.losses.terms import LOSS_TERMS, LossSettings, option_errors, settings_read

_TERM = re.compile(r"^\s*(?:(?P<coef>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*\*\s*)?(?P<name>[a-z0-9-]+)\s*$")


class CombinedLoss(nn.Module):
    """``sum_j coef_j * term_j(logits, target)``.

    With ``class_weights`` (``w_c``, a buffer), each per-sample term becomes ``mean_i w_{y_i} l_i``
    and each batch-level metric term is scaled by the batch's mean weight ``mean_i w_{y_i}``: what a
    per-sample weight does to a batch-level term (docs/method.md, "Class weights"). Without weights every term is a
    plain mean, so ``ce`` alone equals ``F.cross_entropy``.

    Args:
        terms: ``(coefficient, name, module)`` per term; names from :data:`LOSS_TERMS`, at least one
            (``ValueError`` otherwise). :func:`build_loss` builds them from a loss name.
        class_weights: optional per-class weights ``(C,)``.

    Example:
        >>> import torch
        >>> from imbal.losses import CombinedLoss, CrossEntropy, SoftMCCLoss
        >>> loss = CombinedLoss([(1.0, "ce", CrossEntropy()), (0.5, "mcc", SoftMCCLoss())])
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> round(float(loss(logits, torch.tensor([0, 0, 1, 1]))), 4)
        0.5868
    """

    class_weights: torch.Tensor | None

    def __init__(
        self, terms: list[tuple[float, str, nn.Module]], class_weights: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError("CombinedLoss needs at least one term")
        unknown = [n for _, n, _ in terms if n not in LOSS_TERMS]
        if unknown:
            raise ValueError(f"unknown loss terms {unknown}; expected names from {', '.join(LOSS_TERMS)}")
        self.coefficients = [float(c) for c, _, _ in terms]
        self.names = [n for _, n, _ in terms]
        self.per_sample = [LOSS_TERMS[n].per_sample for n in self.names]
        self.terms = nn.ModuleList([m for _, _, m in terms])
        self.register_buffer(
            "class_weights",
            None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32),
        )

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The weighted sum of the terms for ``logits (N, C)`` and ``target (N,)``, a scalar."""
        weights = None
        if self.class_weights is not None:
            weights = self.class_weights.to(logits.device)[target]
        total = logits.new_zeros((), dtype=compute_dtype(logits))
        for coef, per_sample, term in zip(self.coefficients, self.per_sample, self.terms):
            if per_sample:
                value = term(logits, target, reduction="none")
                value = (value * weights).mean() if weights is not None else value.mean()
            else:
                value = term(logits, target)
                if weights is not None:
                    value = value * weights.mean()
            total = total + coef * value
        return total

    def extra_repr(self) -> str:
        """The sum as written in a loss name, e.g. ``1*ce + 0.5*mcc`` (shown in ``repr``)."""
        return " + ".join(f"{c:g}*{n}" for c, n in zip(self.coefficients, self.names))


def parse_loss_name(name: str) -> list[tuple[float, str]]:
    """``"ce+0.5*mcc"`` -> ``[(1.0, "ce"), (0.5, "mcc")]``; unknown terms raise ``ValueError``.

    So do a coefficient that is negative or not finite, a term named twice, and a sum whose
    coefficients are all 0.

    Example:
        >>> from imbal.losses import parse_loss_name
        >>> parse_loss_name("CE + 0.5*mcc")
        [(1.0, 'ce'), (0.5, 'mcc')]
    """
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
        coef = float(m["coef"]) if m["coef"] else 1.0
        if not 0 <= coef < float("inf"):
            raise ValueError(
                f"loss term {part.strip()!r} in {name!r} needs a finite coefficient >= 0, got {coef:g}"
            )
        out.append((coef, m["name"]))
    if not any(c > 0 for c, _ in out):
        # a zero coefficient is allowed (e.g. ce+0*mcc, a reference equal to CE), an all-zero loss is not
        raise ValueError(f"loss {name!r} has no term with a coefficient > 0: it would train nothing")
    names = [t for _, t in out]
    if len(set(names)) != len(names):
        raise ValueError(f"loss {name!r} names a term twice; write one term with its total coefficient")
    return out


def loss_sort_key(name: str) -> tuple:
    """Order of loss names in tables: by the table positions of their terms, then coefficients.

    With the table order ce, f1, focal, mcc, la-ce this gives the paper's columns: ce, ce+f1,
    ce+mcc, f1, focal, mcc (then la-ce); names that do not parse go last, alphabetically.
    """
    try:
        terms = parse_loss_name(name)
    except ValueError:
        return ((len(LOSS_TERMS),), (), name)
    positions = list(LOSS_TERMS)
    return (tuple(positions.index(t) for _, t in terms), tuple(c for c, _ in terms), name)


def build_loss(
    name: str,
    settings: LossSettings | None = None,
    *,
    class_weights: torch.Tensor | list[float] | None = None,
    **fields: Any,
) -> CombinedLoss:
    """Build a loss from its name: any ``+``-sum of the terms in :data:`LOSS_TERMS`.

    Args:
        name: e.g. ``"ce+mcc"`` or ``"ce+0.5*mcc"``.
        settings: what the terms' builders read (the user's loss options, the training counts,
            DDP sync, value checks); defaults when omitted. ``la-ce`` needs ``class_counts``.
        class_weights: per-class weights ``(C,)`` applied per sample (see :class:`CombinedLoss`);
            pass ``inverse_frequency_weights(class_counts)`` for the study's "+Weights" rows.
        fields: :class:`LossSettings` fields by name, replacing those of ``settings``
            (``build_loss("mcc", metric_memory=4, num_classes=5)``): the dataclass stays their one home.

    Raises ``ValueError`` for an unknown term or a setting that fails its check, ``TypeError`` for
    an unknown field.

    Example:
        >>> import torch
        >>> from imbal.losses import build_loss, inverse_frequency_weights
        >>> loss = build_loss("ce+0.5*mcc")
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.2, 0.4]])
        >>> target = torch.tensor([0, 0, 1, 1])
        >>> loss.extra_repr(), round(float(loss(logits, target)), 4)
        ('1*ce + 0.5*mcc', 0.5868)
        >>> weighted = build_loss("ce+mcc", class_weights=inverse_frequency_weights([90, 10]))
        >>> round(float(weighted(logits, target)), 4)
        2.3577
    """
    known = [f.name for f in dataclasses.fields(LossSettings)]
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise TypeError(f"build_loss got unknown setting(s) {unknown}; LossSettings has {', '.join(known)}")
    settings = dataclasses.replace(settings or LossSettings(), **fields)
    errors = option_errors(settings)
    if errors:
        raise ValueError("; ".join(errors))
    terms = [(coef, term, LOSS_TERMS[term].build(settings)) for coef, term in parse_loss_name(name)]
    weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
    return CombinedLoss(terms, class_weights=weights)


def loss_settings_keys(names: Iterable[str]) -> list[str]:
    """The loss settings that the terms of these loss names read (unparsable names read none)."""
    terms = []
    for name in names:
        with contextlib.suppress(ValueError):
            terms += [t for _, t in parse_loss_name(name)]
    return settings_read(terms)
