"""A statistical race over configurations: more seeds only for those still in it (docs/method.md, "The race").

Rounds: every configuration in the race gets one more seed (the first round ``min_seeds``). After
each round, on the validation primary metric (oriented so that higher is better):

- a configuration is **dropped** when some rival beats it by more than the equivalence margin with
  confidence: for each rival, the one-sided test of "the rival is at most the margin better"
  rejects at the round's share of alpha divided by the number of its rivals (Bonferroni). Each
  pair is paired over seeds and carries its own two-level standard error (its own seed spread and
  the validation images' noise, :func:`imbal.study.analysis.stats.paired_estimates`); no variance is
  pooled over configurations, and no test depends on which configuration happens to lead. For the
  truly best configuration every such hypothesis is true, so over the whole race it is dropped with
  at most alpha chance (a union bound over rivals and rounds, whatever their correlation).
  Shares over rounds: alpha split equally over the rounds before the last (a drop in the last round
  saves no run);
- the **leader** (the best mean, ties to the simplest) is what a race spent without a decision
  names, and the reference of the equivalence stop;
- the race **stops** when one configuration is left; when every other one left is equivalent to the
  leader (each TOST within the margin at the round's share: an intersection-union test) and the
  simplest of them is chosen; or when the seeds or the runs are spent (then the leader is the best
  guess and the others still in are listed as undecided).

The baseline always gets its seeds, whether in the race or not: the test confirmation pairs the
choice with it seed by seed. Everything here is arrays in, decisions out: :func:`replay` runs a race
on a finished grid's validation scores, and :mod:`imbal.study.race.runner` runs it with training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from imbal.study.analysis.outputs import Config, simplicity
from imbal.study.analysis.plan import Plan
from imbal.study.analysis.stats import Estimate, paired_estimates, t_sf

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
    # > 0: a race over a cross-validated study's repeats; a round adds one repeat of all its folds, and
    # its "seeds" are repeats (docs/method.md, "A race over repeats")
    folds: int = 0

    @property
    def margin(self) -> float:
        return self.plan.margin

    @property
    def alpha(self) -> float:
        return self.plan.alpha

    def __post_init__(self) -> None:
        if (
            isinstance(self.folds, bool)
            or not isinstance(self.folds, int)
            or (self.folds != 0 and self.folds < 3)
        ):
            raise ValueError(f"folds must be 0 (a seed race) or an integer >= 3, got {self.folds!r}")
        # one repeat of k folds already has a spread (its k per-fold differences); one seed has none
        low, why = (1, "one repeat of its folds") if self.folds else (2, "a paired spread needs two seeds")
        if isinstance(self.min_seeds, bool) or not isinstance(self.min_seeds, int) or self.min_seeds < low:
            raise ValueError(f"min_seeds must be an integer >= {low} ({why}), got {self.min_seeds!r}")
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
    def unit(self) -> str:
        """What a round adds per configuration: a seed, or a repeat of all folds."""
        return "repeat" if self.folds else "seed"

    def units(self, n: int) -> str:
        """``n`` seeds or repeats, in words ("1 repeat", "2 repeats")."""
        return f"{n} {self.unit}" + ("" if n == 1 else "s")

    @property
    def runs_per_unit(self) -> int:
        return self.folds or 1

    @property
    def rounds(self) -> int:
        """Planned rounds (looks): min_seeds, min_seeds + 1, ..., max_seeds seeds."""
        return self.max_seeds - self.min_seeds + 1

    @property
    def testing_rounds(self) -> int:
        """Rounds whose drops save runs: all but the last (after it the leader is the choice anyway)."""
        return max(1, self.rounds - 1)

    def check_budget(self, configs: int) -> None:
        first = configs * self.min_seeds * self.runs_per_unit
        if self.max_runs is not None and self.max_runs < first:
            folds = f" x {self.folds} folds" if self.folds else ""
            raise ValueError(
                f"max_runs {self.max_runs} is smaller than the first round ({configs} configurations x "
                f"{self.units(self.min_seeds)}{folds} = {first} runs)"
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
    # the dropped, with the rival that beat it by the most: (its difference to that rival, the test's p)
    dropped: dict[Config, tuple[float, float]] = field(default_factory=dict)
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


# a score: the validation primary of one run (higher is better) and, when known, each validation
# image's influence on it (imbal.study.analysis.influence); without it the image level counts 0
Score = tuple[float, np.ndarray | None]


def _pairs(
    scores: np.ndarray, influence: np.ndarray | None, labels: np.ndarray | None
) -> list[list[Estimate]]:
    """``est[j][i]``: configuration j minus configuration i, paired over the seeds (two levels)."""
    k, n = scores.shape
    idx = [(j, i) for j in range(k) for i in range(k) if j != i]
    diffs = np.array([scores[j] - scores[i] for j, i in idx])
    if influence is None or labels is None:
        infl, lab = np.zeros((len(idx), n, 1)), np.zeros(1, dtype=int)
    else:
        infl, lab = np.array([influence[j] - influence[i] for j, i in idx]), labels
    out: list[list[Estimate]] = [[None] * k for _ in range(k)]  # type: ignore[list-item]
    for (j, i), est in zip(idx, paired_estimates(diffs, infl, lab)):
        out[j][i] = est
    return out


def _p_beats(est: Estimate, margin: float) -> float:
    """One-sided p of "at most ``margin`` better" (small: better by more than the margin)."""
    if est.se == 0:
        return 0.0 if est.difference > margin else 1.0
    return float(t_sf((est.difference - margin) / est.se, est.df))


# one round's evidence on the configurations in the race (None while one of its runs is missing): their
# means (higher is better) and ``est[j][i]``, j minus i with both levels of noise
Evidence = tuple[np.ndarray, list[list[Estimate]]]


def look(
    scores: np.ndarray,
    configs: list[Config],
    baseline: Config,
    rules: Rules,
    influence: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> tuple[int, dict[int, tuple[float, float]], bool]:
    """One round's decisions on validation scores ``(K, n)`` (higher is better) of the configurations in the race.

    ``influence`` ``(K, n, images)`` and ``labels`` add the validation images' noise to each pair's
    standard error. Returns what :func:`decide` returns.
    """
    k, n = scores.shape
    est = _pairs(scores, influence, labels) if k > 1 else [[]]
    return decide(scores.mean(1), est, configs, baseline, rules, n)


def decide(
    means: np.ndarray,
    est: list[list[Estimate]],
    configs: list[Config],
    baseline: Config,
    rules: Rules,
    seeds: int,
) -> tuple[int, dict[int, tuple[float, float]], bool]:
    """One round's decisions from the configurations' means and pair estimates (:data:`Evidence`) after ``seeds``
    seeds (repeats). Returns the leader's index, ``{index: (difference to the rival that beats it most, p)}``
    of the dropped, and whether all that stay are equivalent to the leader.
    """
    k = len(means)
    best = means.max()
    tied = [i for i in range(k) if means[i] >= best - 1e-12]
    leader = min(tied, key=lambda i: simplicity(configs[i], baseline))
    if k == 1:
        return leader, {}, True
    a = rules.round_alpha(seeds)
    dropped = {}
    for i in range(k):
        p, j = min((_p_beats(est[j][i], rules.margin), j) for j in range(k) if j != i)
        if a > 0 and p < a / (k - 1):  # Bonferroni over i's rivals: the best survives each round with 1 - a
            dropped[i] = (float(est[j][i].difference), float(p))
    stay = [i for i in range(k) if i not in dropped and i != leader]
    if leader in dropped:  # a leader beaten by more than the margin: the best of those that stay leads
        alive = [i for i in range(k) if i not in dropped]
        leader = min(alive, key=lambda i: (-means[i], simplicity(configs[i], baseline)))
        stay = [i for i in alive if i != leader]
    # "all equivalent" is an intersection-union test: each one against the leader at level a
    equivalent = all(a > 0 and est[i][leader].p_equivalence(rules.margin) < a for i in stay)
    return leader, dropped, equivalent


@dataclass
class State:
    """The race so far, recomputed from scores: the same scores always give the same state."""

    rounds: list[Round]
    alive: list[Config]
    seeds: int  # seeds (repeats) the alive configurations need next (0: the race is over)
    outcome: RaceOutcome | None


def advance(
    configs: list[Config],
    baseline: Config,
    rules: Rules,
    score_of: Callable[[Config, int], Score | None],
    labels: np.ndarray | None = None,
) -> State:
    """Replays a seed race as far as ``score_of(config, seed)`` (validation primary and its per-image influence,
    or None if not run yet) allows; ``labels``: the validation images' classes (for the image level).
    """

    def evidence(alive: list[Config], n: int) -> Evidence | None:
        got = [[score_of(c, s) for s in range(n)] for c in alive]
        done = [[v for v in row if v is not None] for row in got]
        if any(len(row) < n for row in done) or any(score_of(baseline, s) is None for s in range(n)):
            return None
        arr = np.array([[v[0] for v in row] for row in done], dtype=float)
        infl = [[v[1] for v in row] for row in done]
        known = labels is not None and all(x is not None for row in infl for x in row)
        pairs = (
            _pairs(arr, np.array(infl, dtype=float) if known else None, labels if known else None)
            if len(alive) > 1
            else [[]]
        )
        return arr.mean(1), pairs

    return progress(configs, baseline, rules, evidence)


def progress(
    configs: list[Config],
    baseline: Config,
    rules: Rules,
    evidence: Callable[[list[Config], int], Evidence | None],
) -> State:
    """Replays the race as far as ``evidence(alive, n)`` (the round with ``n`` seeds or repeats, or None while one
    of its runs, the baseline's included, is missing) allows.

    The state then says which seeds the configurations still in the race need next (all shards of a
    cluster race agree on it, because it is a function of the finished runs alone).
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
        got = evidence(alive, n)
        if got is None:
            return State(rounds, alive, n, None)
        means, est = got
        leader, dropped, equivalent = decide(means, est, alive, baseline, rules, n)
        rnd = Round(
            n,
            list(alive),
            alive[leader],
            dict(zip(alive, map(float, means))),
            {alive[i]: v for i, v in dropped.items()},
            equivalent,
        )
        rounds.append(rnd)
        alive = [c for i, c in enumerate(alive) if i not in dropped]
        runs = _runs_used(rounds, baseline) * rules.runs_per_unit
        outcome = _stop(rounds, alive, baseline, rules, runs)
        if outcome is not None:
            return State(rounds, alive, 0, outcome)
        n += 1


def _runs_used(rounds: list[Round], baseline: Config) -> int:
    """Seeds (repeats) so far: each configuration's while it was in the race, the baseline's every round."""
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
    next_runs = runs + (len(alive) + (baseline not in alive)) * rules.runs_per_unit
    # spent without a decision: the leader is the best guess; the others still in are listed as undecided
    if last.seeds >= rules.max_seeds:
        return RaceOutcome(last.leader, RaceReason.SEEDS_SPENT, rounds, runs, list(alive))
    if rules.max_runs is not None and next_runs > rules.max_runs:
        return RaceOutcome(last.leader, RaceReason.RUNS_SPENT, rounds, runs, list(alive))
    return None


def replay(
    scores: np.ndarray,
    configs: list[Config],
    baseline: Config,
    rules: Rules,
    influence: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> RaceOutcome:
    """The race on a finished grid's validation scores ``(K, S)`` (seeds taken in order), without training.

    ``influence`` ``(K, S, images)`` with ``labels``: each run's validation images' influence on its score.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.shape[0] != len(configs):
        raise ValueError(f"scores must have one row per configuration ({len(configs)}), got {scores.shape}")
    row = {c: i for i, c in enumerate(configs)}

    def score_of(c: Config, s: int) -> Score | None:
        if s >= scores.shape[1]:
            return None
        return float(scores[row[c], s]), None if influence is None else influence[row[c], s]

    state = advance(configs, baseline, rules, score_of, labels)
    if state.outcome is None:
        raise ValueError(f"the grid has {scores.shape[1]} seeds; the race needs up to {rules.max_seeds}")
    return state.outcome
