"""A statistical race over configurations: more seeds only for those still in it (docs/method.md, "The race").

Rounds: every configuration in the race gets one more seed (the first round ``min_seeds``). After
each round, on the validation primary metric (oriented so that higher is better):

- the **leader** is the best mean (ties to the simplest);
- a configuration is **dropped** when it cannot beat the leader by the equivalence margin: the
  one-sided test of "better than the leader by the margin or more" rejects at the round's share of
  alpha. Shares: alpha split equally over the rounds before the last (a drop in the last round saves
  no run), a union bound that holds whatever the rounds' correlation. No correction over the
  configurations of a round: the error that costs the answer is dropping *the* best configuration
  (a single hypothesis, whichever it is), so the chance that the best is dropped by a leader worse
  than it by more than the margin stays under alpha over the whole race. Dropping a configuration
  within the margin of the leader costs at most the margin and is allowed. The paired differences'
  variance is pooled over the configurations still in the race (a configuration x seed residual),
  which gives the first rounds usable degrees of freedom;
- the race **stops** when one configuration is left; when every one left is equivalent to the
  leader (each TOST within the margin at the round's share: an intersection-union test) and the
  simplest of them is chosen; or when the seeds or the runs are spent (then the leader is the best
  guess and the others still in are listed as undecided).

The baseline always gets its seeds, whether in the race or not: the test confirmation pairs the
choice with it seed by seed. Everything here is arrays in, decisions out: :func:`replay` runs a race
on a finished grid's validation scores, and :mod:`imbal.study.race.runner` runs it with training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from scipy import special

from imbal.study.analysis.outputs import Config, simplicity
from imbal.study.analysis.plan import Plan

DEFAULT_MIN_SEEDS = 2
DEFAULT_MAX_SEEDS = 5


class RaceReason(StrEnum):
    """Why a race stopped."""

    LAST_ONE = "last one"
    EQUIVALENT = "equivalent"
    SEEDS_SPENT = "seeds spent"
    RUNS_SPENT = "runs spent"


@dataclass(frozen=True)
class Rules:
    """The race's budget; its margin and level are the study's plan's (one home: the plan)."""

    plan: Plan = field(default_factory=Plan)
    min_seeds: int = DEFAULT_MIN_SEEDS
    max_seeds: int = DEFAULT_MAX_SEEDS
    max_runs: int | None = None

    @property
    def margin(self) -> float:
        return self.plan.margin

    @property
    def alpha(self) -> float:
        return self.plan.alpha

    def __post_init__(self) -> None:
        if isinstance(self.min_seeds, bool) or not isinstance(self.min_seeds, int) or self.min_seeds < 2:
            raise ValueError(
                f"min_seeds must be an integer >= 2 (a paired spread needs two seeds), got {self.min_seeds!r}"
            )
        if (
            isinstance(self.max_seeds, bool)
            or not isinstance(self.max_seeds, int)
            or self.max_seeds < self.min_seeds
        ):
            raise ValueError(
                f"max_seeds must be an integer >= min_seeds ({self.min_seeds}), got {self.max_seeds!r}"
            )
        if self.max_runs is not None and (
            isinstance(self.max_runs, bool) or not isinstance(self.max_runs, int) or self.max_runs < 1
        ):
            raise ValueError(f"max_runs must be a positive integer, got {self.max_runs!r}")

    @property
    def rounds(self) -> int:
        """Planned rounds (looks): min_seeds, min_seeds + 1, ..., max_seeds seeds."""
        return self.max_seeds - self.min_seeds + 1

    @property
    def testing_rounds(self) -> int:
        """Rounds whose drops save runs: all but the last (after it the leader is the choice anyway)."""
        return max(1, self.rounds - 1)

    def check_budget(self, configs: int) -> None:
        first = configs * self.min_seeds
        if self.max_runs is not None and self.max_runs < first:
            raise ValueError(
                f"max_runs {self.max_runs} is smaller than the first round ({configs} configurations x "
                f"{self.min_seeds} seeds = {first} runs)"
            )

    def round_alpha(self, seeds: int) -> float:
        """This round's share of alpha: equal shares over the rounds before the last, none for the last.

        A drop in the last round saves no run (the leader is chosen there anyway), so spending alpha
        on it would only make the earlier rounds, where a drop saves seeds, more timid.
        """
        if seeds >= self.max_seeds and self.rounds > 1:
            return 0.0
        return self.alpha / self.testing_rounds


@dataclass
class Round:
    """One look: who was in, who led, who left and why."""

    seeds: int
    alive: list[Config]
    leader: Config
    means: dict[Config, float]
    dropped: dict[Config, tuple[float, float]] = field(default_factory=dict)  # difference to the leader, p
    equivalent: bool = False


@dataclass
class RaceOutcome:
    """How a race ended."""

    choice: Config
    reason: RaceReason
    rounds: list[Round]
    runs: int  # trainings the race used (the baseline's included)
    undecided: list[Config]  # still in the race when it stopped without a decision

    @property
    def finalists(self) -> list[Config]:
        return (
            self.rounds[-1].alive
            if not self.rounds[-1].dropped
            else [c for c in self.rounds[-1].alive if c not in self.rounds[-1].dropped]
        )


def _t_cdf(x: np.ndarray, df: float) -> np.ndarray:
    return special.stdtr(df, x)


def look(
    scores: np.ndarray, configs: list[Config], baseline: Config, rules: Rules
) -> tuple[int, dict[int, tuple[float, float]], bool]:
    """One round's decisions on validation scores ``(K, n)`` (higher is better) of the configurations in the race.

    Returns the leader's index, ``{index: (difference to the leader, p)}`` of the dropped, and whether
    all that stay are equivalent to the leader.
    """
    k, n = scores.shape
    means = scores.mean(1)
    best = means.max()
    tied = [i for i in range(k) if means[i] >= best - 1e-12]
    leader = min(tied, key=lambda i: simplicity(configs[i], baseline))
    if k == 1:
        return leader, {}, True
    resid = scores - scores.mean(1, keepdims=True) - scores.mean(0, keepdims=True) + scores.mean()
    df = (k - 1) * (n - 1)
    var = float((resid**2).sum() / df) if df > 0 else math.nan
    se = math.sqrt(2 * var / n)
    others = [i for i in range(k) if i != leader]
    diff = np.array([means[i] - means[leader] for i in others])
    a = rules.round_alpha(n)
    if se == 0 or not math.isfinite(se):
        drop_p = np.where(diff < rules.margin, 0.0, 1.0)
        eq_p = np.where(np.abs(diff) < rules.margin, 0.0, 1.0)
    else:
        # H0: better than the leader by the margin or more; small p: it cannot beat the leader by the margin
        drop_p = _t_cdf((diff - rules.margin) / se, df)
        # TOST against the leader: both one-sided tests of "at least the margin apart"
        eq_p = np.maximum(_t_cdf(-(diff + rules.margin) / se, df), _t_cdf((diff - rules.margin) / se, df))
    # each configuration's own test (no correction over configurations): the error that costs the
    # answer is dropping THE best one, a single hypothesis whichever configuration it is
    dropped = {others[j]: (float(diff[j]), float(drop_p[j])) for j in range(len(others)) if drop_p[j] < a}
    stay = [j for j in range(len(others)) if others[j] not in dropped]
    # "all equivalent" is an intersection-union test: each one at level a, no correction either
    equivalent = bool(stay) and bool((np.asarray(eq_p, dtype=float)[stay] < a).all())
    return leader, dropped, equivalent or not stay


@dataclass
class State:
    """The race so far, recomputed from scores: the same scores always give the same state."""

    rounds: list[Round]
    alive: list[Config]
    seeds: int  # seeds the alive configurations need next (0: the race is over)
    outcome: RaceOutcome | None


def advance(
    configs: list[Config],
    baseline: Config,
    rules: Rules,
    score_of: Callable[[Config, int], float | None],
) -> State:
    """Replays the race as far as ``score_of(config, seed)`` (validation primary, or None if not run yet) allows.

    ``score_of`` returns None for runs that do not exist yet: the state then says which seeds the
    configurations still in the race need next (all shards of a cluster race agree on it, because it
    is a function of the finished runs alone).
    """
    if not configs:
        raise ValueError("the race has no configurations")
    if baseline not in configs:
        raise ValueError(f"the baseline {baseline} must be one of the race's configurations")
    rules.check_budget(len(configs))
    alive = list(configs)
    rounds: list[Round] = []
    n = rules.min_seeds
    while True:
        scores = [[score_of(c, s) for s in range(n)] for c in alive]
        if any(v is None for row in scores for v in row) or any(
            score_of(baseline, s) is None for s in range(n)
        ):
            return State(rounds, alive, n, None)
        arr = np.array(scores, dtype=float)
        leader, dropped, equivalent = look(arr, alive, baseline, rules)
        means = dict(zip(alive, map(float, arr.mean(1))))
        rnd = Round(
            n, list(alive), alive[leader], means, {alive[i]: v for i, v in dropped.items()}, equivalent
        )
        rounds.append(rnd)
        alive = [c for i, c in enumerate(alive) if i not in dropped]
        runs = _runs_used(rounds, baseline)
        outcome = _stop(rounds, alive, baseline, rules, runs)
        if outcome is not None:
            return State(rounds, alive, 0, outcome)
        n += 1


def _runs_used(rounds: list[Round], baseline: Config) -> int:
    """Trainings so far: each configuration's seeds while it was in the race, the baseline's every round."""
    seeds: dict[Config, int] = {}
    for r in rounds:
        for c in r.alive:
            seeds[c] = r.seeds
    seeds[baseline] = rounds[-1].seeds
    return sum(seeds.values())


def _stop(
    rounds: list[Round], alive: list[Config], baseline: Config, rules: Rules, runs: int
) -> RaceOutcome | None:
    last = rounds[-1]
    if len(alive) == 1:
        return RaceOutcome(alive[0], RaceReason.LAST_ONE, rounds, runs, [])
    if last.equivalent:
        choice = min(alive, key=lambda c: simplicity(c, baseline))
        return RaceOutcome(choice, RaceReason.EQUIVALENT, rounds, runs, [])
    next_runs = runs + len(alive) + (baseline not in alive)
    # spent without a decision: the leader is the best guess; the others still in are listed as undecided
    if last.seeds >= rules.max_seeds:
        return RaceOutcome(last.leader, RaceReason.SEEDS_SPENT, rounds, runs, list(alive))
    if rules.max_runs is not None and next_runs > rules.max_runs:
        return RaceOutcome(last.leader, RaceReason.RUNS_SPENT, rounds, runs, list(alive))
    return None


def replay(scores: np.ndarray, configs: list[Config], baseline: Config, rules: Rules) -> RaceOutcome:
    """The race on a finished grid's validation scores ``(K, S)`` (seeds taken in order), without training."""
    scores = np.asarray(scores, dtype=float)
    if scores.shape[0] != len(configs):
        raise ValueError(f"scores must have one row per configuration ({len(configs)}), got {scores.shape}")
    row = {c: i for i, c in enumerate(configs)}
    state = advance(
        configs, baseline, rules, lambda c, s: float(scores[row[c], s]) if s < scores.shape[1] else None
    )
    if state.outcome is None:
        raise ValueError(f"the grid has {scores.shape[1]} seeds; the race needs up to {rules.max_seeds}")
    return state.outcome
