"""The loss-term table: the one home of every loss name (docs/method.md, "Losses").

Every list, check, order and help text of loss names derives from :data:`LOSS_TERMS`: the parser
of ``"ce+0.5*mcc"``, the config check, the CLI help and the column order of the report. Adding a
loss means one entry here plus its function (and tests); an unknown name is an error, never
another term's branch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from imbal.losses.metric_losses import F1Average
from imbal.losses.modules import CrossEntropy, FocalLoss, LogitAdjustedCE, SoftF1Loss, SoftMCCLoss


@dataclass(frozen=True)
class LossSettings:
    """The settings a term's builder may read; one object so that builders share one signature."""

    num_classes: int | None = None
    class_counts: torch.Tensor | None = None  # training counts per class (LA-CE's priors)
    focal_gamma: float = 2.0
    f1_average: F1Average = "macro"
    positive_class: int = 1
    la_tau: float = 1.0
    memory: int = 0  # soft-count memory of the metric terms, in batches
    sync: bool = True
    validate: bool = True


@dataclass(frozen=True)
class LossTerm:
    """One loss term.

    ``per_sample``: the module's ``forward(logits, target, reduction="none")`` returns ``(N,)``
    losses, and class weights weight each sample; otherwise the term is a batch-level statistic
    whose value class weights scale by the batch's mean weight (docs/method.md, "Class weights").
    """

    name: str
    build: Callable[[LossSettings], nn.Module]
    per_sample: bool
    help: str


def _la_ce(s: LossSettings) -> nn.Module:
    if s.class_counts is None:
        raise ValueError("loss 'la-ce' needs class_counts (its class priors)")
    counts = torch.as_tensor(s.class_counts, dtype=torch.float32)
    return LogitAdjustedCE(counts / counts.sum(), tau=s.la_tau, validate=s.validate)


# the order of this table is the column order of every report (the paper's: CE, CE+F1, CE+MCC, F1,
# Focal, MCC; see loss_sort_key)
LOSS_TERMS: dict[str, LossTerm] = {
    t.name: t
    for t in [
        LossTerm("ce", lambda s: CrossEntropy(validate=s.validate), True, "softmax cross-entropy"),
        LossTerm(
            "f1",
            lambda s: SoftF1Loss(
                s.f1_average,
                sync=s.sync,
                validate=s.validate,
                positive_class=s.positive_class,
                memory=s.memory,
                num_classes=s.num_classes,
            ),
            False,
            "1 - soft F1 (macro, or the positive class: f1_average, positive_class)",
        ),
        LossTerm(
            "focal",
            lambda s: FocalLoss(gamma=s.focal_gamma, validate=s.validate),
            True,
            "focal loss (focal_gamma)",
        ),
        LossTerm(
            "mcc",
            lambda s: SoftMCCLoss(
                sync=s.sync, validate=s.validate, memory=s.memory, num_classes=s.num_classes
            ),
            False,
            "1 - soft MCC (Gorodkin's R_K)",
        ),
        LossTerm(
            "la-ce", _la_ce, True, "logit-adjusted cross-entropy (la_tau; priors from the training counts)"
        ),
    ]
}


def loss_terms_help() -> str:
    """One line per term, for CLI help and error messages."""
    return "; ".join(f"{t.name}: {t.help}" for t in LOSS_TERMS.values())
