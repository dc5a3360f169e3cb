"""Imbalance-aware losses. Every function takes ``logits (N, C)`` and integer ``target (N,)``."""

from imbal.losses.combined import LOSS_TERMS, CombinedLoss, build_loss, parse_loss_name
from imbal.losses.confusion import soft_confusion
from imbal.losses.metric_losses import soft_f1, soft_f1_loss, soft_mcc, soft_mcc_loss
from imbal.losses.modules import CrossEntropy, FocalLoss, LogitAdjustedCE, SoftF1Loss, SoftMCCLoss
from imbal.losses.sample_losses import cross_entropy, focal_loss, inverse_frequency_weights, logit_adjusted_ce

__all__ = [
    "LOSS_TERMS",
    "CombinedLoss",
    "CrossEntropy",
    "FocalLoss",
    "LogitAdjustedCE",
    "SoftF1Loss",
    "SoftMCCLoss",
    "build_loss",
    "cross_entropy",
    "focal_loss",
    "inverse_frequency_weights",
    "logit_adjusted_ce",
    "parse_loss_name",
    "soft_confusion",
    "soft_f1",
    "soft_f1_loss",
    "soft_mcc",
    "soft_mcc_loss",
]
