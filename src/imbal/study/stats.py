"""Paired comparisons against the baseline: t intervals over seeds, bootstrap over test samples.

Also the corrections that keep a table of such comparisons honest: Holm / Benjamini-Hochberg adjusted
p-values (:func:`adjust_pvalues`, :func:`adjust_comparisons`), verdicts that say when only test samples
(one seed) were varied, and :func:`seeds_needed`, how many seeds an observed difference would need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps

from imbal.metrics import confusion_scores

PAIRED_T = "paired t over seeds"
PAIRED_BOOTSTRAP = "paired bootstrap over test samples"
ONE_SEED = "test samples only, 1 seed"
# what to say instead of a seed count when there is one seed: its seed-to-seed SD is unknown, so no
# number can be computed; 3 is the fewest seeds whose t interval has a usable width (2 seeds: t = 12.7)
ONE_SEED_ADVICE = "unknown from 1 seed: run at least 3 seeds (the example study uses 5)"
ADJUST_METHODS = ("holm", "bh")


def verdict_label(direction: str, seeds: int) -> str:
    """``direction`` ("better", "worse", "inconclusive") as reported for a comparison over ``seeds`` seeds.

    With one seed the comparison varied the test samples only, never the training run, so a
    difference is qualified as "better (test samples only, 1 seed)" rather than claimed outright.
    """
    if direction not in ("better", "worse", "inconclusive"):
        raise ValueError(f"direction must be 'better', 'worse' or 'inconclusive', got {direction!r}")
    # "not >= 2" so that an unknown (NaN) seed count is qualified too
    return f"{direction} ({ONE_SEED})" if not seeds >= 2 and direction != "inconclusive" else direction


@dataclass
class Comparison:
    mean_diff: float
    low: float
    high: float
    n: int  # seeds paired, or test samples bootstrapped
    method: str  # PAIRED_T or PAIRED_BOOTSTRAP
    p_value: float = math.nan
    seeds: int | None = None  # training runs (seeds) behind the difference; None: 1 unless paired t

    def __post_init__(self) -> None:
        if self.seeds is None:
            self.seeds = self.n if self.method == PAIRED_T else 1

    @property
    def seed_count(self) -> int:
        return int(self.seeds) if self.seeds is not None else (self.n if self.method == PAIRED_T else 1)

    @property
    def seed_variation(self) -> bool:
        """Whether the interval includes seed-to-seed variation (False: test samples of one seed only)."""
        return self.seed_count >= 2

    @property
    def direction(self) -> str:
        """The interval alone: "better" / "worse" when it excludes 0, else "inconclusive"."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return "inconclusive"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "inconclusive"

    @property
    def verdict(self) -> str:
        """:attr:`direction`, qualified "(test samples only, 1 seed)" without seed variation."""
        return verdict_label(self.direction, self.seed_count)


def paired_t(candidate: np.ndarray, baseline: np.ndarray, confidence: float = 0.95) -> Comparison:
    """Mean paired difference with a t confidence interval (seeds matched one to one)."""
    d = np.asarray(candidate, float) - np.asarray(baseline, float)
    n = len(d)
    if n < 2:
        raise ValueError(f"a paired t interval needs >= 2 paired seeds, got {n}")
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    if se == 0:
        return Comparison(mean, mean, mean, n, PAIRED_T, 0.0 if mean != 0 else 1.0)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * se
    p = float(2 * sps.t.sf(abs(mean / se), n - 1))
    return Comparison(mean, mean - half, mean + half, n, PAIRED_T, p)


def _confusions(y: np.ndarray, pred: np.ndarray, k: int, rows: np.ndarray) -> torch.Tensor:
    """Confusion matrices ``(B, k, k)`` of the resamples ``rows`` ``(B, n)``, in one bincount."""
    b = rows.shape[0]
    codes = np.arange(b)[:, None] * k * k + y[rows] * k + pred[rows]
    return torch.from_numpy(np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k))


def paired_bootstrap(
    y: np.ndarray,
    pred_candidate: np.ndarray,
    pred_baseline: np.ndarray,
    num_classes: int,
    metric: str = "balanced_accuracy",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    minority: int | None = None,
) -> Comparison:
    """Percentile interval of metric(candidate) - metric(baseline) over test samples drawn with replacement.

    Both runs are scored on the same resampled test set each time (a paired bootstrap). One pair of
    runs is one seed: the interval ignores seed-to-seed variation, so the verdict says so.
    ``minority`` (the rarest training class) is needed for ``metric="minority_f1"``.
    """
    y, pc, pb = (np.asarray(a, dtype=np.int64) for a in (y, pred_candidate, pred_baseline))
    rng = np.random.default_rng(seed)
    # row 0 is the observed test set; rows 1.. are the resamples, all scored in one batched call
    rows = np.vstack([np.arange(len(y)), rng.integers(0, len(y), (n_boot, len(y)))])
    diff = (
        confusion_scores(_confusions(y, pc, num_classes, rows), minority)[metric]
        - confusion_scores(_confusions(y, pb, num_classes, rows), minority)[metric]
    ).numpy()
    observed, diffs = float(diff[0]), diff[1:]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    p = float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())))
    return Comparison(observed, float(low), float(high), len(y), PAIRED_BOOTSTRAP, p, seeds=1)


def adjust_pvalues(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Multiplicity-adjusted p-values: "holm" (family-wise error) or "bh" (Benjamini-Hochberg FDR).

    NaN p-values (comparisons that could not be made) stay NaN and do not count in the family size.
    Adjusted values are monotone in the raw ones and clipped to 1; the same as statsmodels'
    ``multipletests`` with ``"holm"`` / ``"fdr_bh"``.
    """
    if method not in ADJUST_METHODS:
        raise ValueError(f"method must be one of {ADJUST_METHODS}, got {method!r}")
    p = np.asarray(p, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p-values must be 1-D, got shape={p.shape}")
    valid = ~np.isnan(p)
    if ((p[valid] < 0) | (p[valid] > 1)).any():
        raise ValueError(
            f"p-values must lie in [0, 1] (or be NaN), got min={p[valid].min()}, max={p[valid].max()}"
        )
    out = np.full_like(p, np.nan)
    m = int(valid.sum())
    if m == 0:
        return out
    order = np.argsort(p[valid], kind="stable")
    ranked = p[valid][order]
    rank = np.arange(1, m + 1)
    if method == "holm":
        # step-down: the i-th smallest p is multiplied by the m - i + 1 hypotheses still in play
        adj = np.maximum.accumulate(np.minimum((m - rank + 1) * ranked, 1.0))
    else:
        # step-up: p_(i) * (m / i), made monotone from the largest p downwards; m / i >= 1 keeps it >= p
        adj = np.minimum.accumulate((ranked * (m / rank))[::-1])[::-1].clip(max=1.0)
    back = np.empty(m)
    back[order] = adj
    out[valid] = back
    return out


def adjust_comparisons(
    table: pd.DataFrame, method: str = "holm", alpha: float = 0.05, by: str | list[str] | None = None
) -> pd.DataFrame:
    """Adds multiplicity-corrected columns to a table of baseline comparisons (one row each).

    ``table`` needs ``difference``, ``ci_low``, ``ci_high``, ``p_value`` and either ``seeds`` or
    ``method`` (as :func:`imbal.study.tables.compare_to_baseline` writes). The whole table is one
    family unless ``by`` names columns whose groups are separate families (e.g. ``"metric"``).
    Added columns:

    - ``p_adjusted``: Holm or Benjamini-Hochberg adjusted p-value (NaN where ``p_value`` is NaN);
    - ``family_size``: how many comparisons (non-NaN p) were corrected together;
    - ``verdict_adjusted``: "better" / "worse" only when ``p_adjusted < alpha`` AND the observed
      difference and the whole interval lie on that side of 0; otherwise "inconclusive". Rows without
      seed variation (one seed) read "better (test samples only, 1 seed)" / "worse (...)".
    - ``ci_adjusted``: always False. The intervals are left unadjusted (per-comparison 95%) on
      purpose: the one-seed rows' intervals are bootstrap percentiles whose resamples the table does
      not keep, so no simultaneous interval can be rebuilt for every row, and mixing adjusted and
      unadjusted intervals in one table would mislead. The correction lives in ``p_adjusted`` and the
      verdict; a report must label the intervals as unadjusted.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    need = {"difference", "ci_low", "ci_high", "p_value"}
    missing = need - set(table.columns)
    if missing or not {"seeds", "method"} & set(table.columns):
        raise ValueError(
            f"table needs columns {sorted(need)} and 'seeds' or 'method', got {list(table.columns)}"
        )
    out = table.copy()
    if "seeds" in out.columns:
        seeds = out["seeds"].to_numpy(dtype=float)
    else:
        seeds = np.where(out["method"] == PAIRED_T, 2.0, 1.0)
    groups = (
        [np.arange(len(out))]
        if by is None
        else list(out.reset_index(drop=True).groupby(by, dropna=False).indices.values())
    )
    p = out["p_value"].to_numpy(dtype=float)
    p_adj, family = np.full(len(out), np.nan), np.zeros(len(out), dtype=int)
    for rows in groups:
        p_adj[rows] = adjust_pvalues(p[rows], method)
        family[rows] = int((~np.isnan(p[rows])).sum())
    diff, low, high = (out[c].to_numpy(dtype=float) for c in ("difference", "ci_low", "ci_high"))
    significant = p_adj < alpha  # False for NaN
    direction = np.where(
        significant & (diff > 0) & (low > 0),
        "better",
        np.where(significant & (diff < 0) & (high < 0), "worse", "inconclusive"),
    )
    out["p_adjusted"] = p_adj
    out["family_size"] = family
    out["verdict_adjusted"] = [verdict_label(d, s) for d, s in zip(direction, seeds)]
    out["ci_adjusted"] = False
    return out


def seeds_needed(differences: np.ndarray, alpha: float = 0.05, max_seeds: int = 50) -> int | None:
    """Fewest seeds n at which a paired t interval with the observed mean and SD would exclude 0.

    ``differences`` are the per-seed paired differences (>= 2 seeds). Returns the smallest n in
    ``[2, max_seeds]`` with ``|mean| / (SD / sqrt(n)) > t(1 - alpha / 2, n - 1)``, None when no n up
    to ``max_seeds`` suffices (or the mean is 0). With SD 0 and a non-zero mean any 2 seeds suffice.
    This plugs the observed mean and SD in as if they were the truth, so it is a planning hint
    (about a coin flip of reaching significance at that n), not a power analysis; pass ``alpha``
    divided by the family size for a Bonferroni-level answer. With one seed the SD is unknown and no
    number can be given: this raises, and a report should say :data:`ONE_SEED_ADVICE` instead.
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(
            f"seeds_needed needs the differences of >= 2 seeds (1-D), got shape={d.shape}; "
            f"with 1 seed the answer is {ONE_SEED_ADVICE!r}"
        )
    if not np.isfinite(d).all():
        raise ValueError(f"differences must be finite, got {d.tolist()}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if max_seeds < 2:
        raise ValueError(f"max_seeds must be >= 2, got {max_seeds}")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if mean == 0:
        return None
    if sd == 0:
        return 2
    n = np.arange(2, max_seeds + 1)
    enough = abs(mean) / sd * np.sqrt(n) > sps.t.ppf(1 - alpha / 2, n - 1)
    return int(n[enough.argmax()]) if enough.any() else None
