"""Which configuration to use: chosen on validation, confirmed once on test (docs/method.md, "Statistics of a report").

1. **Screens, on validation**: a configuration is out if it zeroed a class (validation F1 0 for a
   class present) in more than half of its seeds (a rare class has few validation images, so one
   seed's zero is weak evidence; a majority is a pattern), or if it is worse than the baseline on a
   secondary metric by more than the harm margin with 95% confidence (its upper one-sided bound
   below ``-harm_margin``).
2. **Choice, on validation**: the best mean validation primary among the rest; ties go to the
   simplest (the baseline, then the fewest extra parts). The *alternative* is the best one that is
   not the baseline; it is what the test confirms.
3. **Confirmation, on test, once**: the alternative against the baseline on the primary metric,
   with both sources of noise. Its choice is cross-fitted over seeds: for each seed, the alternative
   chosen without that seed's validation outputs is scored on that seed's test outputs, so the test
   effect carries no selection bias from the luck that a run shares between its validation and test
   scores (simulated in :mod:`imbal.study.simulation.studies`). Verdict at level alpha: better / worse /
   equivalent (TOST within the margin) / inconclusive.
4. **Every other configuration, on test** (exploratory): the primary is tested only when the
   confirmation said better or worse (fixed sequence), then with Holm over the rest, so all primary
   verdicts together keep the family-wise error at alpha. Secondary metrics are their own families
   (Holm or Benjamini-Hochberg each) and carry a non-inferiority check against the harm margin.

Only configurations with every seed of the baseline take part (pairs need the same seeds); the
others are listed as left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from imbal.metrics import METRICS
from imbal.naming import class_names
from imbal.study.analysis.crossval import Runs, cv_estimates, procedure_runs, view_scores, view_zeroed
from imbal.study.analysis.folds import Folds
from imbal.study.analysis.outputs import Config, StudyOutputs, simplicity
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import (
    MAX_SEEDS,
    Estimate,
    Verdict,
    adjust_pvalues,
    paired_estimates,
    seeds_needed,
    verdict,
)

TIE = 1e-12  # validation means this close are ties (equal ratios can differ in the last bits)


class Role(StrEnum):
    """A row's part in the analysis: the one confirmation, or an exploratory row of the primary or a secondary."""

    CONFIRMATORY = "confirmatory"
    PRIMARY = "primary"
    SECONDARY = "secondary"


class NonInferiority(StrEnum):
    """A secondary metric against the harm margin, one-sided at 1 - alpha."""

    NON_INFERIOR = "non-inferior"
    WORSE = "worse by more than the margin"
    NOT_SHOWN = "not shown"


class Grid:
    """The complete part of a study as arrays: configuration x seed, the baseline in row 0.

    A cross-validated study (``study.folds``) reads the same way, its repeats as seeds; its
    estimates are :func:`~imbal.study.analysis.crossval.cv_estimates`, and a *view* (``mask``: the
    slots, repeat x fold, whose predictions it reads) is what a cross-fitted choice sees.
    """

    def __init__(self, study: StudyOutputs, mask: np.ndarray | None = None) -> None:
        self.study = study
        self.configs, self.seeds, self.rows, self.left_out = study.grid()
        # a cross-validated study's fold ids, row for row with the grid's columns (its repeats)
        self.folds = None if study.folds is None else study.folds.for_repeats(self.seeds)
        self.mask = mask

    def view(self, mask: np.ndarray) -> Grid:
        """The same grid reading only the slots of ``mask`` (a cross-validated study)."""
        return Grid(self.study, mask)

    def require_folds(self) -> Folds:
        """The study's folds; asked only on a cross-validated study's paths."""
        if self.folds is None:
            raise ValueError("this study is not cross-validated: it has no folds")
        return self.folds

    @property
    def units(self) -> int:
        """Runs per configuration behind a comparison: seeds, or repeats x folds."""
        return len(self.seeds) * (self.folds.k if self.folds is not None else 1)

    def _runs(self, split: str, metric: str) -> Runs:
        return Runs.of(self.study, split, self.rows, metric)

    def scores(self, split: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(K, S)`` and influence values ``(K, S, n)``."""
        if self.mask is not None:
            return view_scores(self._runs(split, metric), self.require_folds().owner(split), self.mask)
        s, g = self.study.scores(split, metric)
        return s[self.rows], g[self.rows]

    def estimates(self, split: str, metric: str, seeds: np.ndarray | None = None) -> list[Estimate]:
        """Every configuration but the baseline (rows 1..K-1) minus the baseline, over seed columns ``seeds``."""
        cols = np.arange(len(self.seeds)) if seeds is None else np.asarray(seeds)
        if self.folds is not None:
            mask = self.folds.all_slots() if self.mask is None else self.mask
            keep = np.zeros_like(mask)
            keep[cols] = mask[cols]
            return cv_estimates(self._runs(split, metric), self.folds.owner(split), keep)
        s, g = self.scores(split, metric)
        d = s[1:][:, cols] - s[0][cols][None]
        infl = g[1:][:, cols] - g[0][cols][None]
        return paired_estimates(d, infl, self.study.split(split).labels)

    def zeroed(self, split: str = "val") -> np.ndarray:
        """``(K, S, C)``: the run had F1 0 on a class present in the split."""
        if self.mask is not None:
            return view_zeroed(self._runs(split, "accuracy"), self.require_folds().owner(split), self.mask)
        return self.study.zeroed(split)[self.rows]


@dataclass
class Screen:
    """One configuration's validation screens over some seeds."""

    zeroed: list[tuple[int, list[str]]] = field(default_factory=list)  # (seed, class names)
    harmed: list[tuple[str, Estimate]] = field(default_factory=list)  # (secondary metric, estimate)
    seeds: int = 0

    @property
    def unstable(self) -> bool:
        """Zeroed a class in more than half of its seeds."""
        return 2 * len(self.zeroed) > self.seeds

    @property
    def passed(self) -> bool:
        return not self.unstable and not self.harmed


def screen(grid: Grid, plan: Plan, cols: np.ndarray) -> list[Screen]:
    """The validation screens of every configuration (grid order) over seed columns ``cols``."""
    names = class_names(grid.study.class_names, grid.study.num_classes)
    zero = grid.zeroed("val")[:, cols]  # (K, S', C)
    out = [Screen([], [], len(cols)) for _ in grid.configs]
    for k, i in zip(*np.nonzero(zero.any(-1))):
        out[k].zeroed.append((grid.seeds[cols[i]], [names[j] for j in np.flatnonzero(zero[k, i])]))
    for metric in plan.secondary:  # the baseline is never 'harmed': it is the reference
        higher = METRICS[metric].higher_is_better
        for k, est in enumerate(grid.estimates("val", metric, cols), start=1):
            if non_inferiority(est, plan.harm_margin, plan.alpha, higher) is NonInferiority.WORSE:
                out[k].harmed.append((metric, est))
    return out


def choose(
    grid: Grid, plan: Plan, cols: np.ndarray, screens: list[Screen], baseline_allowed: bool
) -> int | None:
    """Grid index of the best mean validation primary among configurations that passed; ties to the simplest."""
    means = grid.scores("val", plan.primary)[0][:, cols].mean(1)
    pool = [k for k in range(len(grid.configs)) if screens[k].passed and (baseline_allowed or k > 0)]
    if not pool:
        return None
    best = max(plan.sign * means[k] for k in pool)
    tied = [k for k in pool if plan.sign * means[k] >= best - TIE]
    return min(tied, key=lambda k: simplicity(grid.configs[k], grid.configs[0]))


@dataclass
class Confirmation:
    """The cross-fitted test effect of the choice procedure against the baseline, over every seed."""

    estimate: Estimate
    verdict: Verdict  # NOT_TESTED with one seed: the choice and the test share the run
    fold_choices: list[Config]  # each seed's choice, made without that seed (the baseline: none qualified)
    seeds: list[int]

    @property
    def stable(self) -> bool:
        return len(set(self.fold_choices)) == 1

    def kept_baseline(self, baseline: Config) -> int:
        """Seeds (folds) where no alternative qualified, so the procedure kept the baseline there."""
        return sum(c == baseline for c in self.fold_choices)


def confirm(grid: Grid, plan: Plan, screens: bool = True) -> Confirmation | None:
    """The cross-fitted test comparison of the validation alternative with the baseline (step 3).

    Every seed is a fold: its alternative is chosen on the other seeds' validation outputs and
    scored on its own test outputs. A fold where no alternative passes the screens keeps the
    baseline (a difference of 0 for that seed): the estimate is the effect of following the
    procedure, and no seed is dropped from it. None when no fold has an alternative. With one seed
    the estimate is reported but gives no verdict (NOT_TESTED). ``screens=False`` chooses by the
    validation primary alone (a claim about "the best X", not a recommendation).
    """
    if grid.folds is not None:
        return _confirm_folds(grid, plan, screens)
    s, g = grid.scores("test", plan.primary)
    n_seeds = len(grid.seeds)
    diffs, infl, folds = [], [], []
    for i in range(n_seeds):
        # with one seed the choice and the test share the run (the report says so)
        cols = np.array([j for j in range(n_seeds) if j != i] or [i])
        passed = screen(grid, plan, cols) if screens else [Screen([], [], len(cols)) for _ in grid.configs]
        alt = choose(grid, plan, cols, passed, baseline_allowed=False)
        k = 0 if alt is None else alt
        diffs.append(s[k, i] - s[0, i])
        infl.append(g[k, i] - g[0, i])
        folds.append(grid.configs[k])
    if all(c == grid.configs[0] for c in folds):
        return None
    est = paired_estimates(np.array(diffs)[None], np.array(infl)[None], grid.study.test.labels)[0]
    if n_seeds < 2:
        return Confirmation(est, Verdict.NOT_TESTED, folds, list(grid.seeds))
    return Confirmation(
        est, verdict(est, plan.alpha, plan.margin, higher_is_better=plan.sign > 0), folds, list(grid.seeds)
    )


def fold_choices(grid: Grid, plan: Plan, screens: bool = True) -> np.ndarray:
    """``(R, K)`` grid index of each slot's alternative in a cross-validated study (0: none qualified).

    Slot j's choice reads the validation predictions of its repeat's slots other than j and j - 1
    (:meth:`~imbal.study.analysis.folds.Folds.choice_slots`): never its test fold's images, never its
    own model.
    """
    folds = grid.require_folds()
    chosen = np.zeros((folds.repeats, folds.k), dtype=np.int64)
    for r in range(folds.repeats):
        for j in range(folds.k):
            view, cols = grid.view(folds.choice_slots(r, j)), np.array([r])
            passed = screen(view, plan, cols) if screens else [Screen([], [], 1) for _ in grid.configs]
            alt = choose(view, plan, cols, passed, baseline_allowed=False)
            chosen[r, j] = 0 if alt is None else alt
    return chosen


def _confirm_folds(grid: Grid, plan: Plan, screens: bool) -> Confirmation | None:
    """:func:`confirm` of a cross-validated study: the pooled test effect of following each slot's choice."""
    chosen = fold_choices(grid, plan, screens)
    if not chosen.any():
        return None
    folds = grid.require_folds()
    test = procedure_runs(Runs.of(grid.study, "test", grid.rows, plan.primary), folds, chosen)
    est = cv_estimates(test, folds.owner("test"), folds.all_slots())[0]
    v = (
        verdict(est, plan.alpha, plan.margin, higher_is_better=plan.sign > 0)
        if est.seeds >= 2
        else Verdict.NOT_TESTED
    )
    return Confirmation(est, v, [grid.configs[c] for c in chosen.ravel()], list(range(chosen.size)))


@dataclass(frozen=True)
class Planning:
    """How many seeds would decide a comparison (80% power), taking its observed effect and spread as true."""

    goal: str  # "difference" or "equivalence" (see stats.seeds_needed); "" with one seed
    seeds: int | None  # None: more than stats.MAX_SEEDS
    one_seed: bool = False  # the spread is unknown: nothing to plan from

    def __str__(self) -> str:
        if self.one_seed:
            return "unknown from 1 seed: run at least 3 seeds"
        return (
            f"{self.goal}: {self.seeds}" if self.seeds is not None else f"{self.goal}: more than {MAX_SEEDS}"
        )


def planning_of(est: Estimate, alpha: float, margin: float | None) -> Planning:
    """The seeds that would decide ``est`` at level ``alpha`` (equivalence within ``margin`` when inside it)."""
    if est.seeds < 2:
        return Planning("", None, one_seed=True)
    return Planning(*seeds_needed(est, alpha, margin))


def non_inferiority(est: Estimate, margin: float, alpha: float, higher_is_better: bool) -> NonInferiority:
    """Against the harm margin, one-sided at 1 - alpha: non-inferior when the whole bound lies above
    ``-margin``, worse when it lies below (the validation screen's harm and the table's word are this
    one test; a zero spread makes both bounds the difference itself)."""
    sign = 1.0 if higher_is_better else -1.0
    low, high = est.lower_bound(1 - alpha), est.upper_bound(1 - alpha)
    if sign < 0:
        low, high = -high, -low
    if low > -margin:
        return NonInferiority.NON_INFERIOR
    if high < -margin:
        return NonInferiority.WORSE
    return NonInferiority.NOT_SHOWN


def _rows(
    configs: list[Config], metric: str, roles: list[Role], ests: list[Estimate], alpha: float
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sampler": [c[0] for c in configs],
            "loss": [c[1] for c in configs],
            "metric": metric,
            "role": roles,
            "difference": [e.difference for e in ests],
            "ci_low": [e.interval(1 - alpha)[0] for e in ests],
            "ci_high": [e.interval(1 - alpha)[1] for e in ests],
            "se": [e.se for e in ests],
            "seed_sd": [e.seed_sd if e.seeds >= 2 else math.nan for e in ests],
            "image_se": [math.sqrt(e.image_var) for e in ests],
            "p_value": [e.p_value for e in ests],
            "seeds": [e.seeds for e in ests],
            "n": [e.n for e in ests],
        }
    )


def _family(
    grid: Grid, plan: Plan, metric: str, confirmation: Confirmation | None, plan_seeds: bool
) -> pd.DataFrame:
    """One metric's rows: every configuration but the baseline against it, on test."""
    primary = metric == plan.primary
    ests = grid.estimates("test", metric)
    confirmed = confirmation.fold_choices[0] if confirmation is not None and confirmation.stable else None
    roles = [
        Role.CONFIRMATORY if primary and c == confirmed else (Role.PRIMARY if primary else Role.SECONDARY)
        for c in grid.configs[1:]
    ]
    frame = _rows(grid.configs[1:], metric, roles, ests, plan.alpha)
    family = np.array([r is not Role.CONFIRMATORY for r in roles])
    p_adj = np.full(len(frame), np.nan)
    p_adj[family] = adjust_pvalues(
        frame.p_value.to_numpy(dtype=float)[family], "holm" if primary else plan.correction
    )
    p_eq = np.array([e.p_equivalence(plan.margin) for e in ests]) if primary else np.full(len(frame), np.nan)
    p_eq_adj = np.full(len(frame), np.nan)
    if primary:
        p_eq_adj[family] = adjust_pvalues(p_eq[family], "holm")
    gate_open = confirmation is not None and confirmation.verdict in (Verdict.BETTER, Verdict.WORSE)
    higher = METRICS[metric].higher_is_better

    def judge(i: int, est: Estimate) -> Verdict:
        if roles[i] is Role.CONFIRMATORY:
            return confirmation.verdict  # type: ignore[union-attr]
        if primary and not gate_open:
            return Verdict.NOT_TESTED  # the fixed sequence: tested only after the confirmation rejected
        return verdict(
            est,
            plan.alpha,
            plan.margin if primary else None,
            p_adj[i],
            p_eq_adj[i] if primary else None,
            higher,
        )

    frame["p_adjusted"] = p_adj
    frame["p_equivalence"] = p_eq
    frame["family_size"] = int(family.sum())
    frame["verdict"] = [judge(i, e) for i, e in enumerate(ests)]
    frame["non_inferiority"] = [
        "" if primary else non_inferiority(e, plan.harm_margin, plan.alpha, higher) for e in ests
    ]
    level = plan.alpha / max(int(family.sum()), 1)  # Holm's strictest step: a planning level
    frame["seeds_needed"] = (
        [str(planning_of(e, level, plan.margin if primary else None)) for e in ests] if plan_seeds else ""
    )
    return frame


def exploratory_table(
    grid: Grid,
    plan: Plan,
    confirmation: Confirmation | None,
    metrics: list[str] | None = None,
    planning: bool = True,
) -> pd.DataFrame:
    """Every configuration against the baseline on test (step 4), one row per configuration and metric.

    ``planning`` adds the seeds that would decide each row (a power search per row).
    """
    if len(grid.configs) < 2:
        return pd.DataFrame()
    frames = [
        _family(grid, plan, m, confirmation, planning) for m in metrics or [plan.primary, *plan.secondary]
    ]
    return pd.concat(frames, ignore_index=True)


def recommendation(baseline: Config, alt: Config | None, v: Verdict | None) -> Config:
    """The configuration to use after the test's verdict: a change needs a confirmed improvement.

    Screens are reported but never move the recommendation: a baseline that failed a validation
    screen (a class zeroed on a handful of validation images happens by chance) is still kept
    unless an alternative is confirmed better, so a study of equal configurations recommends the
    baseline with at least 1 - alpha probability (simulated in docs/method.md). Equivalent: the
    simpler, the baseline.
    """
    return alt if alt is not None and v is Verdict.BETTER else baseline


@dataclass
class Decision:
    plan: Plan
    grid: Grid
    screens: dict[Config, Screen]  # on validation, all seeds
    validation_means: dict[Config, float]
    chosen: Config | None  # the rule's choice on validation, the baseline allowed
    alternative: Config | None  # the best non-baseline configuration on validation
    confirmation: Confirmation | None
    table: pd.DataFrame
    recommendation: Config
    planning: (
        Planning | None
    )  # seeds that would decide the confirmation (None: not asked, or nothing confirmed)

    @property
    def baseline(self) -> Config:
        return self.grid.configs[0]

    def row(self, metric: str, config: Config) -> Any:
        """The table's row of one configuration and metric (None when it has none)."""
        t = self.table
        if t.empty:
            return None
        sel = t[(t.metric == metric) & (t.sampler == config[0]) & (t.loss == config[1])]
        return next(sel.itertuples(), None)

    @property
    def seeds(self) -> list[int]:
        return self.grid.seeds

    @property
    def one_seed(self) -> bool:
        return self.grid.units < 2


def decide(study: StudyOutputs, plan: Plan, planning: bool = True, secondary_rows: bool = True) -> Decision:
    """Steps 1-4 of the module doc on one data set's runs.

    ``planning``: the seeds that would decide each row (a power search per row);
    ``secondary_rows``: the exploratory rows of the secondary metrics (the screens use them on
    validation either way). The simulations leave both out.
    """
    grid = Grid(study)
    planning = planning and grid.folds is None  # more repeats shrink the fold level only: no seeds to plan
    if len(grid.configs) < 2:
        raise ValueError(
            f"a study needs the baseline {study.baseline} and >= 1 other configuration with the same seeds, "
            f"got {grid.configs} (left out for missing seeds: {grid.left_out})"
        )
    cols = np.arange(len(grid.seeds))
    screens = screen(grid, plan, cols)
    means = grid.scores("val", plan.primary)[0].mean(1)
    k_chosen = choose(grid, plan, cols, screens, baseline_allowed=True)
    k_alt = choose(grid, plan, cols, screens, baseline_allowed=False)
    chosen = grid.configs[k_chosen] if k_chosen is not None else None
    alt = grid.configs[k_alt] if k_alt is not None else None
    conf = confirm(grid, plan)
    metrics = [plan.primary, *plan.secondary] if secondary_rows else [plan.primary]
    table = exploratory_table(grid, plan, conf, metrics, planning=planning)
    # the confirmed effect is the procedure's; what it recommends is its choice on every seed
    rec = recommendation(grid.configs[0], alt, conf.verdict if conf else None)
    plan_text = planning_of(conf.estimate, plan.alpha, plan.margin) if conf is not None and planning else None
    return Decision(
        plan,
        grid,
        dict(zip(grid.configs, screens)),
        dict(zip(grid.configs, map(float, means))),
        chosen,
        alt,
        conf,
        table,
        rec,
        plan_text,
    )
