"""The race's decisions as arrays in, decisions out: drops, ties, waits, limits, budgets, replay."""

import numpy as np
import pytest

from imbal.study.race.rules import Rules, advance, look, replay
from imbal.study.simulation import studies as sim

BASE = ("uniform", "ce")
CONFIGS = [BASE, ("uniform", "ce+f1"), ("oversample", "ce"), ("uniform", "mcc")]


def test_a_clear_loser_leaves_and_a_close_one_stays():
    x = np.array([0.50, 0.51, 0.50, 0.30])[:, None] + np.array(
        [[0.02, -0.02], [-0.02, 0.02], [0.0, 0.0], [0.01, -0.01]]
    )
    leader, dropped, equivalent = look(x, CONFIGS, BASE, Rules())
    assert CONFIGS[leader] == ("uniform", "ce+f1")
    assert set(dropped) == {3}  # 0.2 behind: it cannot beat the leader by the margin; 0.01 behind can
    assert not equivalent
    # with no spread at all, 0.01 behind cannot beat the leader by 0.02 either
    _, dropped, _ = look(np.array([0.50, 0.51, 0.50, 0.30])[:, None].repeat(2, 1), CONFIGS, BASE, Rules())
    assert set(dropped) == {0, 2, 3}


def test_identical_scores_are_equivalent_and_ties_go_to_the_simplest():
    x = np.full((4, 2), 0.5)
    out = replay(np.repeat(x, 3, axis=1)[:, :5], CONFIGS, BASE, Rules())
    assert out.choice == BASE and out.runs == 8  # one round: nobody can beat anybody


def test_the_race_waits_for_runs_and_says_which_seeds_are_next():
    rng = np.random.default_rng(3)
    scores = {(c, s): 0.5 + rng.normal(0, 0.03) for c in CONFIGS for s in range(2)}
    state = advance(CONFIGS, BASE, Rules(), lambda c, s: scores.get((c, s)))
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
        advance(CONFIGS, BASE, Rules(max_runs=7), lambda c, s: 0.5)
    with pytest.raises(ValueError, match="the race has no configurations"):
        advance([], BASE, Rules(), lambda c, s: 0.5)


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
