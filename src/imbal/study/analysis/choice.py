"""Which configuration: screens and choice on validation, one cross-fitted confirmation on test
(docs/method.md, "Statistics of a report" and "Cross-validated studies").

Steps 1-3 of :mod:`imbal.study.analysis.decision`: :func:`screen` (a class zeroed in most seeds, harm
on a secondary metric beyond the harm margin), :func:`choose` (the best mean validation primary among
those that pass, ties to the simplest) and :func:`confirm` (the alternative chosen without each seed,
or fold, scored on that seed's or fold's test outputs against the baseline). :class:`Grid` is the
complete part of a study as arrays, for an official split and a cross-validated study alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from imbal.metrics import METRICS
from imbal.naming import class_names
from imbal.study.analysis.crossval import Runs, cv_estimates, procedure_runs, view_scores, view_zeroed
from imbal.study.analysis.outputs import Config, Folds, StudyOutputs, simplicity
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Estimate, Verdict, paired_estimates, verdict

TIE = 1e-12  # validation means this close are ties (equal ratios can differ in the last bits)


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
    (:meth:`~imbal.study.analysis.outputs.Folds.choice_slots`): never its test fold's images, never its
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
