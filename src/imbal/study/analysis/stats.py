"""Paired comparisons with both sources of noise, equivalence, multiplicity and planning.

A comparison is a candidate configuration against the baseline on one split, paired by seed and by
image. Its uncertainty has two levels (docs/method.md, "Statistics of a report"):

- seeds: each seed trains both configurations again; the spread of the per-seed differences;
- images: the test (or validation) set is one sample of images; the spread of the seed-averaged
  difference over resamples of that set, taken from each run's per-image influence values
  (exact for balanced accuracy and accuracy, first order for the other ratios; see
  :mod:`imbal.study.analysis.influence`), with the part the seed level already holds removed.

Nothing here reads files: the inputs are arrays, so the report and the simulation that checks the
error rates (:mod:`imbal.study.simulation.studies`) run the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import special
from scipy import stats as sps

ADJUST_METHODS = ("holm", "bh")
# seeds-needed answers above this are "more than 30": a planning range, not a promise
MAX_SEEDS = 30
POWER_TARGET = 0.8


class Verdict(StrEnum):
    BETTER = "better"
    WORSE = "worse"
    EQUIVALENT = "equivalent"
    INCONCLUSIVE = "inconclusive"
    NOT_TESTED = "not tested"


@dataclass(frozen=True)
class Estimate:
    """A paired difference (candidate minus baseline) with its standard error from both levels.

    ``seed_var`` is the seed level's share of the variance (per-seed differences' variance / seeds);
    ``image_var`` the image level's share that the seed level does not already hold. Intervals and
    p-values use a t distribution with :func:`effective_df` degrees of freedom; with one seed there is
    only the image level (normal).
    """

    difference: float
    seed_var: float
    image_var: float
    seeds: int
    n: int  # images

    @property
    def se(self) -> float:
        return math.sqrt(self.seed_var + self.image_var)

    @property
    def df(self) -> float:
        return effective_df(self.seed_var, self.image_var, self.seeds)

    @property
    def seed_sd(self) -> float:
        """Standard deviation of one seed's difference (the seed level, per seed)."""
        return math.sqrt(self.seed_var * self.seeds)

    def _q(self, p: float) -> float:
        return _t_quantile(p, self.df)

    def _sf(self, x: float) -> float:
        return t_sf(x, self.df)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        half = self._q(0.5 + level / 2) * self.se
        return self.difference - half, self.difference + half

    @property
    def p_value(self) -> float:
        """Two-sided p of "no difference"; 1 when the difference is exactly 0, NaN when se is 0 otherwise."""
        if self.se == 0:
            return 1.0 if self.difference == 0 else math.nan
        return min(1.0, 2 * self._sf(abs(self.difference) / self.se))

    def p_equivalence(self, margin: float) -> float:
        """TOST p of "the difference is at least ``margin`` away from 0" (small: equivalent)."""
        if self.se == 0:
            return 0.0 if abs(self.difference) < margin else 1.0
        lower = self._sf((self.difference + margin) / self.se)
        upper = self._sf((margin - self.difference) / self.se)
        return max(lower, upper)

    def equivalence_resolution(self, alpha: float = 0.05) -> float:
        """The smallest margin these data show equivalence within (TOST at ``alpha``): ``|d| + t * se``."""
        return abs(self.difference) + self._q(1 - alpha) * self.se

    def image_floor(self, alpha: float = 0.05) -> float:
        """The margin no number of seeds could show equivalence within on this test set (its image level alone)."""
        return float(special.ndtri(1 - alpha)) * math.sqrt(self.image_var)

    def upper_bound(self, level: float = 0.95) -> float:
        """One-sided upper confidence bound of the difference."""
        return self.difference + self._q(level) * self.se

    def lower_bound(self, level: float = 0.95) -> float:
        return self.difference - self._q(level) * self.se


# the level at which effective_df matches the two levels' quantiles (two-sided 95%)
DF_LEVEL = 0.975


def effective_df(seed_var: float, image_var: float, seeds: int) -> float:
    """Degrees of freedom of a two-level standard error (docs/method.md, "Statistics of a report").

    The seed level is estimated from ``seeds`` values (``seeds - 1`` degrees of freedom); the image
    level from hundreds of images, so it is as good as known. The t quantile of the result is the
    quadrature mix of the two levels' own quantiles, t(seeds - 1) for the seed share and the normal
    one for the image share; this returns the df whose 97.5% t quantile is that mix. With the image
    share 0 it is ``seeds - 1``, with the seed share 0 it is infinite (normal). Chosen on the
    calibrated simulation: ``seeds - 1`` for the whole error over-covered (0.97-0.99 at 3-5 seeds)
    and Welch-Satterthwaite under-covered (0.91-0.93 at 2-3 seeds); this rule covered 0.945-0.975.
    """
    if seeds < 2:
        return math.inf
    total = seed_var + image_var
    if total <= 0 or seed_var <= 0:
        return math.inf
    w = seed_var / total
    z, t = float(special.ndtri(DF_LEVEL)), float(special.stdtrit(seeds - 1, DF_LEVEL))
    q = math.sqrt(w * t * t + (1 - w) * z * z)
    if q <= z * (1 + 1e-12):
        return math.inf
    return float(special.stdtridf(DF_LEVEL, q))


def _t_quantile(p: float, df: float) -> float:
    # scipy.special's ufuncs: the statistics run thousands of times in the simulation tests
    return float(special.ndtri(p) if math.isinf(df) else special.stdtrit(df, p))


def t_sf(x: float, df: float) -> float:
    return float(special.ndtr(-x) if math.isinf(df) else special.stdtr(df, -x))


def within_class_var(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Variance of a sum over images when each class's images are resampled (class sizes fixed).

    ``values`` ``(..., n)`` per-image influence values; returns ``(...)``: the sum over classes of
    n_k times the population variance of the values within class k.
    """
    onehot = (labels[:, None] == np.unique(labels)[None, :]).astype(float)  # (n, K)
    counts = onehot.sum(0)
    sums, squares = values @ onehot, (values * values) @ onehot
    return (squares - sums * sums / counts).sum(-1)


def paired_estimates(diffs: np.ndarray, influence: np.ndarray, labels: np.ndarray) -> list[Estimate]:
    """:func:`paired_estimate` of M comparisons at once: ``diffs`` ``(M, S)``, ``influence`` ``(M, S, n)``."""
    d = np.asarray(diffs, dtype=float)
    g = np.asarray(influence, dtype=float)
    labels = np.asarray(labels)
    if d.ndim != 2 or d.shape[1] == 0:
        raise ValueError(f"diffs must have shape (comparisons, seeds) with >= 1 seed, got {d.shape}")
    if g.shape != (*d.shape, len(labels)):
        raise ValueError(
            f"influence must have shape (comparisons, seeds, images)={(*d.shape, len(labels))}, got {g.shape}"
        )
    if not (np.isfinite(d).all() and np.isfinite(g).all()):
        raise ValueError("diffs and influence values must be finite")
    m, s = d.shape
    per_seed = within_class_var(g, labels)  # (M, S)
    if s == 1:
        return [
            Estimate(float(d[i, 0]), 0.0, max(0.0, float(per_seed[i, 0])), 1, len(labels)) for i in range(m)
        ]
    pooled = within_class_var(g.mean(1), labels)  # (M,)
    # the seed-averaged image variance still holds each seed's own image noise / S, which the seed
    # level measures already; method of moments for the shared part (docs/method.md)
    shared = np.maximum(0.0, (s * pooled - per_seed.mean(1)) / (s - 1))
    seed_var = d.var(axis=1, ddof=1) / s
    mean = d.mean(1)
    return [Estimate(float(mean[i]), float(seed_var[i]), float(shared[i]), s, len(labels)) for i in range(m)]


def paired_estimate(diffs: np.ndarray, influence: np.ndarray, labels: np.ndarray) -> Estimate:
    """The two-level estimate from per-seed differences ``(S,)`` and their influence values ``(S, n)``.

    ``influence[s, i]`` is image i's influence on seed s's difference (candidate's minus baseline's,
    see :func:`imbal.study.analysis.influence.scores_and_influence`); both runs of a seed were scored on the
    same images, and every seed on the same image set.
    """
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"diffs must be 1-D with >= 1 seed, got shape={d.shape}")
    g = np.asarray(influence, dtype=float)
    if g.shape != (len(d), len(labels)):
        raise ValueError(
            f"influence must have shape (seeds, images)=({len(d)}, {len(labels)}), got {g.shape}"
        )
    return paired_estimates(d[None], g[None], labels)[0]


def verdict(
    est: Estimate,
    alpha: float = 0.05,
    margin: float | None = None,
    p_difference: float | None = None,
    p_equivalence: float | None = None,
    higher_is_better: bool = True,
) -> Verdict:
    """Better / worse when "no difference" is rejected, else equivalent when TOST rejects, else inconclusive.

    ``p_difference`` / ``p_equivalence`` override the estimate's own p-values (e.g. with their
    multiplicity-adjusted values). A zero standard error never gives better/worse: identical runs
    (difference 0) are equivalent, anything else is inconclusive.
    """
    if est.se == 0:
        return Verdict.EQUIVALENT if est.difference == 0 else Verdict.INCONCLUSIVE
    p = est.p_value if p_difference is None else p_difference
    if p < alpha:
        up = est.difference > 0
        return Verdict.BETTER if up == higher_is_better else Verdict.WORSE
    if margin is not None:
        pe = est.p_equivalence(margin) if p_equivalence is None else p_equivalence
        if pe < alpha:
            return Verdict.EQUIVALENT
    return Verdict.INCONCLUSIVE


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


# --- planning: how many seeds would decide it ---------------------------------------------------


def _se_at(seed_sd: float, image_var: float, seeds: int) -> tuple[float, float]:
    seed_var = seed_sd**2 / seeds
    return math.sqrt(seed_var + image_var), effective_df(seed_var, image_var, seeds)


def power(effect: float, seed_sd: float, image_var: float, seeds: int, alpha: float = 0.05) -> float:
    """Chance that the two-sided test at ``alpha`` rejects with ``seeds`` seeds, if the truth were ``effect``.

    Seeds shrink the seed level only; the image level (``image_var``, the test set's own noise)
    stays, so a small test set caps the power whatever the seed count. Noncentral t with the
    degrees of freedom of :class:`Estimate` (:func:`effective_df`).
    """
    if seeds < 2:
        raise ValueError(f"power needs >= 2 seeds, got {seeds}")
    se, df = _se_at(seed_sd, image_var, seeds)
    if se == 0:
        return 1.0 if effect != 0 else 0.0
    ncp = abs(effect) / se
    if math.isinf(df):
        crit = sps.norm.ppf(1 - alpha / 2)
        return float(sps.norm.sf(crit - ncp) + sps.norm.cdf(-crit - ncp))
    crit = sps.t.ppf(1 - alpha / 2, df)
    return float(sps.nct.sf(crit, df, ncp) + sps.nct.cdf(-crit, df, ncp))


def equivalence_power(
    effect: float, seed_sd: float, image_var: float, seeds: int, margin: float, alpha: float = 0.05
) -> float:
    """Chance that TOST at ``alpha`` shows equivalence within ``margin`` with ``seeds`` seeds (normal
    approximation around the t critical value: a planning figure)."""
    if seeds < 2:
        raise ValueError(f"equivalence_power needs >= 2 seeds, got {seeds}")
    se, df = _se_at(seed_sd, image_var, seeds)
    if se == 0:
        return 1.0 if abs(effect) < margin else 0.0
    crit = sps.norm.ppf(1 - alpha) if math.isinf(df) else sps.t.ppf(1 - alpha, df)
    hi, lo = (margin - effect) / se - crit, (-margin - effect) / se + crit
    return float(max(0.0, sps.norm.cdf(hi) - sps.norm.cdf(lo)))


def seeds_needed(
    est: Estimate,
    alpha: float = 0.05,
    margin: float | None = None,
    target: float = POWER_TARGET,
    max_seeds: int = MAX_SEEDS,
) -> tuple[str, int | None]:
    """Seeds for ``target`` power to decide the comparison, taking the observed effect and spreads as true.

    Returns ``(goal, n)``: goal "difference" (show the observed effect at level ``alpha``) or, when
    the observed effect lies inside ``margin``, "equivalence"; ``n`` is None when more than
    ``max_seeds`` would be needed. A planning estimate: the observed effect is itself uncertain.
    """
    if est.seeds < 2:
        raise ValueError(f"seeds_needed needs an estimate from >= 2 seeds, got {est.seeds}")
    sd = est.seed_sd
    if margin is not None and abs(est.difference) < margin:
        goal = "equivalence"

        def fn(n: int) -> float:
            return equivalence_power(est.difference, sd, est.image_var, n, margin, alpha)
    else:
        goal = "difference"

        def fn(n: int) -> float:
            return power(est.difference, sd, est.image_var, n, alpha)

    for n in range(2, max_seeds + 1):
        if fn(n) >= target:
            return goal, n
    return goal, None
