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

Steps 1-3 live in :mod:`imbal.study.analysis.choice`; this module holds step 4, the verdicts and
the recommendation. Only configurations with every seed of the baseline take part (pairs need the
same seeds); the others are listed as left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from imbal.metrics import METRICS
from imbal.study.analysis.choice import (
    Confirmation,
    Grid,
    Screen,
    choose,
    confirm,
    non_inferiority,
    screen,
)
from imbal.study.analysis.outputs import Config, StudyOutputs
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import MAX_SEEDS, Estimate, Verdict, adjust_pvalues, seeds_needed, verdict


class Role(StrEnum):
    """A row's part in the analysis: the one confirmation, or an exploratory row of the primary or a secondary."""

    CONFIRMATORY = "confirmatory"
    PRIMARY = "primary"
    SECONDARY = "secondary"


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
