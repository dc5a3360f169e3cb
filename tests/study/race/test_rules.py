"""The race's decisions as arrays in, decisions out: drops, ties, waits, limits, budgets, replay."""

import numpy as np
import pytest

from imbal.study.race.rules import Rules, advance, look, replay
from imbal.study.simulation import studies as sim

BASE = ("uniform", "ce")
CONFIGS = [BASE, ("uniform", "ce+f1"), ("oversample", "ce"), ("uniform", "mcc")]


def scored(scores: dict):
    """A race's score_of over a dict of validation scores (no image level)."""
    return lambda c, s: (scores[(c, s)], None) if (c, s) in scores else None


def test_a_clear_loser_leaves_and_a_close_one_stays():
    rng = np.random.default_rng(0)
    x = np.array([0.50, 0.51, 0.50, 0.30])[:, None] + rng.normal(0, 0.005, (4, 4))
    leader, dropped, equivalent = look(x, CONFIGS, BASE, Rules(max_seeds=6))
    assert CONFIGS[leader] == ("uniform", "ce+f1")
    assert set(dropped) == {
        3
    }  # 0.2 behind: every rival beats it by more than the margin; 0.01 behind: none does
    assert not equivalent
    # with no spread at all, a configuration leaves only when a rival is more than the margin ahead
    _, dropped, _ = look(np.array([0.50, 0.51, 0.50, 0.30])[:, None].repeat(2, 1), CONFIGS, BASE, Rules())
    assert set(dropped) == {3}


def test_two_seeds_with_their_own_spread_drop_nothing_pooling_would():
    """Each pair carries its own spread (1 df at 2 seeds): no variance borrowed from the others."""
    x = np.array([0.50, 0.51, 0.50, 0.30])[:, None] + np.array(
        [[0.02, -0.02], [-0.02, 0.02], [0.0, 0.0], [0.01, -0.01]]
    )
    _, dropped, _ = look(x, CONFIGS, BASE, Rules())
    assert dropped == {}


def test_the_best_is_not_dropped_by_a_lucky_leader():
    """The drop test of i is against every rival with Bonferroni, never against the round's maximum alone."""
    rng = np.random.default_rng(5)
    x = 0.5 + rng.normal(0, 0.01, (16, 4))
    x[7] += 0.03  # the best
    configs = [(f"s{i}", "ce") for i in range(16)]
    configs[0] = BASE
    _, dropped, _ = look(x, configs, BASE, Rules(max_seeds=6))
    assert 7 not in dropped


def test_an_equivalence_stop_chooses_the_simplest():
    x = np.array([[0.700, 0.703, 0.701, 0.702], [0.703, 0.704, 0.703, 0.705]])
    out = replay(np.hstack([x, x]), CONFIGS[:2], BASE, Rules(max_seeds=8))
    assert out.reason == "equivalent" and out.choice == BASE


def test_identical_scores_are_equivalent_and_ties_go_to_the_simplest():
    x = np.full((4, 2), 0.5)
    out = replay(np.repeat(x, 3, axis=1)[:, :5], CONFIGS, BASE, Rules())
    assert out.choice == BASE and out.runs == 8  # one round: nobody can beat anybody


def test_the_race_waits_for_runs_and_says_which_seeds_are_next():
    rng = np.random.default_rng(3)
    scores = {(c, s): 0.5 + rng.normal(0, 0.03) for c in CONFIGS for s in range(2)}
    state = advance(CONFIGS, BASE, Rules(), scored(scores))
    assert state.outcome is None and state.seeds == 3 and len(state.rounds) == 1
    assert len(state.alive) >= 2 and state.rounds[0].seeds == 2


def test_limits_and_bad_races_are_refused():
    with pytest.raises(ValueError, match=r"min_seeds must be an integer >= 2 .* got 1"):
        Rules(min_seeds=1)
    with pytest.raises(ValueError, match=r"max_seeds must be an integer >= min_seeds \(3\), got 2"):
        Rules(min_seeds=3, max_seeds=2)
    with pytest.raises(
        ValueError,
        match=r"max_runs 7 is smaller than the first round \(4 configurations x 2 seeds = 8 runs\)",
    ):
        advance(CONFIGS, BASE, Rules(max_runs=7), lambda c, s: (0.5, None))
    with pytest.raises(ValueError, match="the race has no configurations"):
        advance([], BASE, Rules(), lambda c, s: (0.5, None))


def test_a_run_budget_stops_the_race_and_lists_the_undecided():
    rng = np.random.default_rng(1)
    x = 0.5 + rng.normal(0, 0.02, (4, 5))
    out = replay(x, CONFIGS, BASE, Rules(max_runs=9))
    assert out.reason == "runs spent" and out.runs == 8 and len(out.undecided) >= 2


def test_replay_is_deterministic():
    rng = np.random.default_rng(2)
    x = rng.normal(0.5, 0.03, (16, 5))
    a, b = replay(x, sim.CONFIGS, BASE, Rules()), replay(x.copy(), sim.CONFIGS, BASE, Rules())
    assert (a.choice, a.runs, a.reason) == (b.choice, b.runs, b.reason)
