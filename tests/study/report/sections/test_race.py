"""The race's section: how it ended and why, the runs it used, and who left in which round, from its state."""

import pandas as pd
import pytest

from imbal.study.analysis.plan import Plan
from imbal.study.race.folder import RaceFolder
from imbal.study.race.rules import RaceReason, Rules, advance
from imbal.study.race.runner import history_rows
from imbal.study.report import figures
from imbal.study.report.sections.race import REASONS, race_section

BASE, A, C, D = ("uniform", "ce"), ("oversample", "ce+f1"), ("uniform", "focal"), ("undersample", "ce")
CONFIGS = [BASE, A, C, D]
RULES = Rules(Plan(), min_seeds=2, max_seeds=4)  # rounds of 2, 3 and 4 seeds; a full grid of 16 runs

# validation scores per seed; a pair whose difference is the same in every seed has no spread, so it
# leaves exactly when a rival is more than the margin (0.02) ahead
A_WINS = {BASE: [0.60] * 4, A: [0.80] * 4, C: [0.75] * 4, D: [0.40] * 4}
# C within the margin of A in every seed: the two left are equivalent, the simpler (C) is chosen
A_AND_C_ALIKE = {**A_WINS, C: [0.79] * 4}
# C around A with a spread: neither dropped nor equivalent until the seeds are spent
NO_DECISION = {**A_WINS, C: [0.84, 0.76, 0.85, 0.75]}


def race(scores, seeds=4, rules=RULES):
    state = advance(CONFIGS, BASE, rules, lambda c, s: (scores[c][s], None) if s < seeds else None)
    return RaceFolder(state, rules, CONFIGS)


def section(tmp_path, folder):
    return race_section(folder, tmp_path / "figures", tmp_path / "tables", "study")


def test_a_finished_race_says_what_it_chose_why_and_what_it_saved(tmp_path):
    folder = race(A_WINS)
    o = folder.state.outcome
    assert (o.choice, o.reason, o.runs) == (
        A,
        RaceReason.LAST_ONE,
        8,
    )  # one round: 4 configurations x 2 seeds
    blocks = section(tmp_path, folder)
    assert blocks[0].kind == "h2" and blocks[0].text == "The race (imbal recommend)"
    assert blocks[1].text.startswith(
        "The race chose oversample / ce+f1 on validation: it was the last configuration left. It trained 8 runs, "
        "50% of the full grid (4 configurations x 4 seeds = 16). A configuration left the race when a rival beat "
        "it by more than the margin (0.02) with confidence: each rival tested at the round's level (0.0250"
    )
    assert "the truly best one leaves with at most 0.05 chance" in blocks[1].text
    assert "undecided" not in blocks[1].text


def test_the_history_table_is_each_rounds_difference_to_its_leader(tmp_path):
    folder = race(A_WINS)
    table = section(tmp_path, folder)[3]
    assert table.header == ["configuration", "round 1 (2 seeds)", "status"]
    rows = {r[0]: r[1:] for r in table.rows}
    assert len(rows) == 4
    for c in CONFIGS:
        diff, status = rows[f"{c[0]} / {c[1]}"]
        assert float(diff) == pytest.approx(A_WINS[c][0] - A_WINS[A][0], abs=5e-4)
        assert status == ("choice" if c == A else "dropped in round 1")


def test_configurations_equivalent_to_the_leader_end_the_race_with_the_simplest(tmp_path):
    o = race(A_AND_C_ALIKE).state.outcome
    assert (o.reason, o.choice, o.runs) == (RaceReason.EQUIVALENT, C, 8)  # uniform / focal: one extra part
    assert section(tmp_path, race(A_AND_C_ALIKE))[1].text.startswith(
        "The race chose uniform / focal on validation: every configuration left was equivalent to the leader "
        "within the margin, and it is the simplest of them. It trained 8 runs"
    )


def test_a_race_without_a_decision_lists_the_undecided_and_every_round(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(figures, "heatmap", lambda *args: drawn.setdefault("args", args) and args[2])
    folder = race(NO_DECISION)
    o = folder.state.outcome
    assert o.reason == RaceReason.SEEDS_SPENT and set(o.undecided) == {A, C}
    assert o.runs == 4 + 4 + 4 + 2  # BASE and D left after round 1; the baseline gets every seed
    blocks = section(tmp_path, folder)
    text = blocks[1].text
    assert text.startswith(
        f"The race chose {o.choice[0]} / {o.choice[1]} on validation: {REASONS[RaceReason.SEEDS_SPENT]}."
    )
    assert "It trained 14 runs, 88% of the full grid" in text
    assert text.endswith("Still undecided: oversample / ce+f1, uniform / focal.")
    table = blocks[3]
    assert table.header == [
        "configuration",
        "round 1 (2 seeds)",
        "round 2 (3 seeds)",
        "round 3 (4 seeds)",
        "status",
    ]
    rows = {r[0]: r[1:] for r in table.rows}
    assert rows["undersample / ce"] == [rows["undersample / ce"][0], "-", "-", "dropped in round 1"]
    assert rows["uniform / ce"][1:] == ["-", "-", "dropped in round 1"]
    assert {rows["oversample / ce+f1"][3], rows["uniform / focal"][3]} == {"choice", "to the end"}
    grid, title, path, _low, high = drawn["args"]
    assert list(grid.columns) == ["round 1", "round 2", "round 3"] and set(grid.index) == set(rows)
    assert title == "race: validation primary minus the round's leader"
    assert high == 0.0 and path == blocks[4].path


def test_the_round_by_round_table_is_saved(tmp_path):
    folder = race(NO_DECISION)
    section(tmp_path, folder)
    saved = pd.read_csv(tmp_path / "tables" / "race_history.csv")
    want = pd.DataFrame(history_rows(folder.state))
    assert len(saved) == len(want) == 4 + 2 + 2
    assert list(saved["round"]) == list(want["round"]) and list(saved.dropped) == list(want.dropped)
    assert saved.difference_to_leader.to_numpy() == pytest.approx(want.difference_to_leader.to_numpy())


def test_the_race_figure_is_drawn(tmp_path):
    blocks = section(tmp_path, race(A_WINS))
    assert blocks[-1].kind == "image" and blocks[-1].path == tmp_path / "figures" / "study_race.png"
    assert blocks[-1].path.read_bytes()[:4] == b"\x89PNG"


def test_a_spent_run_budget_is_said(tmp_path):
    folder = race(NO_DECISION, rules=Rules(Plan(), min_seeds=2, max_seeds=4, max_runs=9))
    o = folder.state.outcome
    # after round 1, A and C would need 6 + the baseline's 1 more runs on top of 8 > 9
    assert (o.reason, o.runs, set(o.undecided)) == (RaceReason.RUNS_SPENT, 8, {A, C})
    text = section(tmp_path, folder)[1].text
    assert (
        "the run budget was spent with several configurations still in the race; it leads on validation. "
        in text
    )
    assert text.endswith("Still undecided: oversample / ce+f1, uniform / focal.")


def test_an_unfinished_race_says_which_round_it_is_in(tmp_path):
    blocks = section(tmp_path, race(NO_DECISION, seeds=2))
    assert blocks[1].kind == "note" and blocks[1].text.startswith(
        "The race is still running: the next round needs 3 seeds of 2 configurations."
    )
