"""The race's part of a report: how it ended, who left when and by how much, and the runs it saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from imbal.study.race.folder import RaceFolder
from imbal.study.race.rules import RaceReason, Rules, State
from imbal.study.race.runner import history_rows
from imbal.study.report import figures
from imbal.study.report.render import Block
from imbal.study.report.sections.section import config_name as name

REASONS = {
    RaceReason.LAST_ONE: "it was the last configuration left",
    RaceReason.EQUIVALENT: "every configuration left was equivalent to the leader within the margin, and it is the simplest of them",
    RaceReason.SEEDS_SPENT: "the seed (repeat) limit was reached with several configurations still in the race; it leads on validation",
    RaceReason.RUNS_SPENT: "the run budget was spent with several configurations still in the race; it leads on validation",
}


def race_section(race: RaceFolder, figures_dir: Path, tables_dir: Path, key: str) -> list[Block]:
    """A race's section (a race still running says which round it is in); writes its round-by-round table."""
    state, rules, configs = race.state, race.rules, race.configs
    tables_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(history_rows(state)).to_csv(tables_dir / "race_history.csv", index=False)
    grid_runs = len(configs) * rules.max_seeds * rules.runs_per_unit
    per = f" x {rules.folds} folds" if rules.folds else ""
    blocks = [Block("h2", "The race (imbal recommend)")]
    if state.outcome is None:
        blocks.append(
            Block(
                "note",
                f"The race is still running: the next round needs {rules.units(state.seeds)} of {len(state.alive)} configurations. "
                "Run the same `imbal recommend` command to continue.",
            )
        )
        return blocks
    o = state.outcome
    text = (
        f"The race chose {name(o.choice)} on validation: {REASONS[o.reason]}. It trained {o.runs} runs, "
        f"{o.runs / grid_runs:.0%} of the full grid ({len(configs)} configurations x {rules.units(rules.max_seeds)}{per} = {grid_runs}). "
        f"A configuration left the race when a rival beat it by more than the margin ({rules.margin:g}) with "
        f"confidence: each rival tested at the round's level ({rules.round_alpha(rules.min_seeds):.4f}, alpha "
        f"{rules.alpha:g} over the {rules.testing_rounds} rounds before the last) divided by its number of rivals, "
        f"each pair with its own {'spread over folds' if rules.folds else 'seed spread'} and its validation images' "
        "noise, so the truly best one leaves with "
        f'at most {rules.alpha:g} chance; docs/method.md, "The race".'
    )
    if o.undecided:
        text += f" Still undecided: {', '.join(name(c) for c in o.undecided)}."
    blocks.append(Block("p", text))
    blocks += _history(state, figures_dir, key, rules)
    return blocks


def _history(state: State, figures_dir: Path, key: str, rules: Rules) -> list[Block]:
    """Configurations x rounds: the difference to each round's leader, who left when; a table and a figure."""
    o = state.outcome
    frame = pd.DataFrame(history_rows(state))
    table = frame.pivot_table(
        index=["sampler", "loss"], columns="round", values="difference_to_leader", sort=False
    )
    dropped = frame[frame.dropped].set_index(["sampler", "loss"])["round"].to_dict()
    rows = []
    for (sampler, loss), vals in table.iterrows():
        left = dropped.get((sampler, loss))
        cells = [("-" if pd.isna(v) else f"{v:+.3f}") for v in vals]
        status = (
            f"dropped in round {left}"
            if left
            else ("choice" if o and (sampler, loss) == o.choice else "to the end")
        )
        rows.append([f"{sampler} / {loss}", *cells, status])
    seeds = [r.seeds for r in state.rounds]
    header = [
        "configuration",
        *[f"round {r} ({rules.units(s)})" for r, s in zip(table.columns, seeds)],
        "status",
    ]
    values = table.to_numpy(dtype=float)
    path = figures.heatmap(
        table.set_axis([f"{s} / {lo}" for s, lo in table.index])
        .astype(float)
        .rename(columns=lambda r: f"round {r}"),
        "race: validation primary minus the round's leader",
        figures_dir / f"{key}_race.png",
        float(np.nanmin(values)) if np.isfinite(values).any() else -0.1,
        0.0,
    )
    return [
        Block(
            "p",
            "Validation primary minus the round's leader (a configuration's last column is the round it left in):",
        ),
        Block("table", header=header, rows=rows),
        Block("image", "The race, round by round", path=path),
    ]
