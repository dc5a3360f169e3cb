"""Imbalance-aware losses. Every function takes ``logits (N, C)`` and integer ``target (N,)``."""

from imbal.losses.combined import CombinedLoss, build_loss, loss_settings_keys, loss_sort_key, parse_loss_name
from imbal.losses.confusion import confusion_from_counts, soft_confusion, soft_counts
from imbal.losses.metric_losses import (
    f1_from_counts,
    mcc_from_counts,
    soft_f1,
    soft_f1_loss,
    soft_mcc,
    soft_mcc_loss,
)
from imbal.losses.modules import CrossEntropy, FocalLoss, LogitAdjustedCE, SoftF1Loss, SoftMCCLoss
from imbal.losses.sample_losses import cross_entropy, focal_loss, inverse_frequency_weights, logit_adjusted_ce
from imbal.losses.terms import LOSS_OPTIONS, LOSS_TERMS, LossOptions, LossSettings, LossTerm

__all__ = [
    "LOSS_OPTIONS",
    "LOSS_TERMS",
    "CombinedLoss",
    "CrossEntropy",
    "FocalLoss",
    "LogitAdjustedCE",
    "LossOptions",
    "LossSettings",
    "LossTerm",
    "SoftF1Loss",
    "SoftMCCLoss",
    "build_loss",
    "confusion_from_counts",
    "cross_entropy",
    "f1_from_counts",
    "focal_loss",
    "inverse_frequency_weights",
    "logit_adjusted_ce",
    "loss_settings_keys",
    "loss_sort_key",
    "mcc_from_counts",
    "parse_loss_name",
    "soft_confusion",
    "soft_counts",
    "soft_f1",
    "soft_f1_loss",
    "soft_mcc",
    "soft_mcc_loss",
]
