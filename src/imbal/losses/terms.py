"""The loss-term table and the loss settings: the one home of every loss name and loss setting.

Every list, check, order and help text of loss names derives from :data:`LOSS_TERMS`: the parser
of ``"ce+0.5*mcc"``, the config check, the CLI help and the column order of the report. Every
setting a term reads is one field of :class:`LossOptions`, with its help line and its check;
``TrainConfig`` inherits these fields, so each is a config key, a command-line option and a
setting the resume check compares, and the engine hands them to the terms as one
:class:`LossSettings`. Adding a loss, with or without a parameter, means edits in this file only:
one entry here, its function, and a field per parameter (tests/losses/test_terms.py proves it);
an unknown name is an error, never another term's branch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from imbal.losses.metric_losses import F1_AVERAGES, F1Average
from imbal.losses.modules import CrossEntropy, FocalLoss, LogitAdjustedCE, SoftF1Loss, SoftMCCLoss


def option(default: Any, help: str, ok: Callable[[Any], bool], expected: str) -> Any:
    """A loss setting: its default, help line and check (``ok(value)``, else "<name> <expected>, got v")."""
    return field(default=default, metadata={"help": help, "ok": ok, "expected": expected})


@dataclass
class LossOptions:
    """The settings of the loss terms that a user sets (config keys; ``TrainConfig`` inherits them).

    Each field names, in its metadata, its help line and its check; a term lists the fields it
    reads in :attr:`LossTerm.settings`, which the report uses to show the settings of the losses
    it compares.
    """

    focal_gamma: float = option(
        2.0, "focusing parameter of the focal loss", lambda v: math.isfinite(v) and v >= 0, "must be >= 0"
    )
    f1_average: str = option(
        "macro",
        "soft F1 over all classes ('macro') or one class ('positive', binary)",
        lambda v: v in F1_AVERAGES,
        f"must be one of {', '.join(F1_AVERAGES)}",
    )
    positive_class: int | None = option(
        None,
        "the positive class of binary soft F1; null = the training set's minority class",
        lambda v: v is None or v >= 0,
        "must be a class index >= 0 or null",
    )
    la_tau: float = option(
        1.0, "temperature of the logit-adjusted CE (la-ce)", math.isfinite, "must be finite"
    )
    metric_memory: int = option(
        0,
        "soft-count memory of the metric losses in batches (0 = off; see docs/method.md)",
        lambda v: v >= 0,
        "must be >= 0",
    )


LOSS_OPTIONS = {f.name: f for f in dataclasses.fields(LossOptions)}


def option_errors(options: LossOptions) -> list[str]:
    """One message per loss setting that fails its check, e.g. "la_tau must be finite, got inf"."""
    out = []
    for name, f in LOSS_OPTIONS.items():
        value = getattr(options, name)
        if not f.metadata["ok"](value):
            out.append(f"{name} {f.metadata['expected']}, got {value!r}")
    return out


@dataclass
class LossSettings(LossOptions):
    """What a term's builder reads: the user's :class:`LossOptions` plus what the data and the loop decide.

    One object from config to term: the engine fills it from the config and the training counts
    (:meth:`of`), :func:`imbal.losses.build_loss` hands it to every term's builder.
    """

    num_classes: int | None = None  # taken from class_counts when omitted (the memory sizes its queue by it)
    class_counts: torch.Tensor | None = None  # training counts per class (LA-CE's priors, F1's minority)
    sync: bool = True  # metric terms sum their counts over DDP ranks
    # value checks (label range, finiteness) in every call; a loop that checked its labels at load
    # time passes False to avoid a host sync per step
    validate: bool = True

    def __post_init__(self) -> None:
        if self.class_counts is not None:
            self.class_counts = torch.as_tensor(self.class_counts)
            if self.num_classes is None:
                self.num_classes = len(self.class_counts)

    @classmethod
    def of(cls, options: LossOptions, **context: Any) -> LossSettings:
        """The options' values (e.g. a ``TrainConfig``'s) with the data's and loop's ``context``."""
        return cls(**{name: getattr(options, name) for name in LOSS_OPTIONS}, **context)


@dataclass(frozen=True)
class LossTerm:
    """One loss term.

    ``per_sample``: the module's ``forward(logits, target, reduction="none")`` returns ``(N,)``
    losses, and class weights weight each sample; otherwise the term is a batch-level statistic
    whose value class weights scale by the batch's mean weight (docs/method.md, "Class weights").
    ``settings``: the :class:`LossOptions` fields its builder reads (named in its help and the report).
    """

    name: str
    build: Callable[[LossSettings], nn.Module]
    per_sample: bool
    help: str
    settings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [s for s in self.settings if s not in LOSS_OPTIONS]
        if unknown:
            raise ValueError(
                f"loss term {self.name!r} reads settings {unknown} that are not LossOptions fields "
                f"({', '.join(LOSS_OPTIONS)})"
            )


def _la_ce(s: LossSettings) -> nn.Module:
    if s.class_counts is None:
        raise ValueError("loss 'la-ce' needs class_counts (its class priors)")
    counts = torch.as_tensor(s.class_counts, dtype=torch.float32)
    return LogitAdjustedCE(counts / counts.sum(), tau=s.la_tau, validate=s.validate)


def positive_class(s: LossSettings) -> int:
    """Binary soft F1's positive class: the configured one, else the training counts' minority class.

    Data with more than two classes use macro F1, which reads no positive class (1 is a placeholder).
    """
    if s.f1_average == "positive" and s.num_classes is not None and s.num_classes != 2:
        raise ValueError(f"f1_average 'positive' needs a binary data set, got {s.num_classes} classes")
    if s.num_classes is not None and s.num_classes != 2:
        return 1
    if s.positive_class is None:
        # the lowest index on ties, as Split.minority_class
        return 1 if s.class_counts is None else int(torch.argmin(s.class_counts))
    if s.num_classes is not None and s.positive_class >= s.num_classes:
        raise ValueError(
            f"positive_class={s.positive_class} is not a class of the data (classes 0..{s.num_classes - 1})"
        )
    return s.positive_class


def _f1(s: LossSettings) -> nn.Module:
    return SoftF1Loss(
        cast(F1Average, s.f1_average),  # checked by option_errors
        sync=s.sync,
        validate=s.validate,
        positive_class=positive_class(s),
        memory=s.metric_memory,
        num_classes=s.num_classes,
    )


# the order of this table is the column order of every report (the paper's: CE, CE+F1, CE+MCC, F1,
# Focal, MCC; see loss_sort_key)
LOSS_TERMS: dict[str, LossTerm] = {
    t.name: t
    for t in [
        LossTerm("ce", lambda s: CrossEntropy(validate=s.validate), True, "softmax cross-entropy"),
        LossTerm(
            "f1",
            _f1,
            False,
            "1 - soft F1 (macro, or the positive class of binary data)",
            ("f1_average", "positive_class", "metric_memory"),
        ),
        LossTerm(
            "focal",
            lambda s: FocalLoss(gamma=s.focal_gamma, validate=s.validate),
            True,
            "focal loss",
            ("focal_gamma",),
        ),
        LossTerm(
            "mcc",
            lambda s: SoftMCCLoss(
                sync=s.sync, validate=s.validate, memory=s.metric_memory, num_classes=s.num_classes
            ),
            False,
            "1 - soft MCC (Gorodkin's R_K)",
            ("metric_memory",),
        ),
        LossTerm(
            "la-ce",
            _la_ce,
            True,
            "logit-adjusted cross-entropy (priors from the training counts)",
            ("la_tau",),
        ),
    ]
}


def loss_terms_help() -> str:
    """One line per term with the settings it reads, for CLI help and error messages."""
    return "; ".join(
        f"{t.name}: {t.help}" + (f" ({', '.join(t.settings)})" if t.settings else "")
        for t in LOSS_TERMS.values()
    )


def settings_read(terms: Iterable[str]) -> list[str]:
    """The loss settings the named terms read, in :class:`LossOptions` order."""
    wanted = {s for t in terms for s in LOSS_TERMS[t].settings}
    return [name for name in LOSS_OPTIONS if name in wanted]
