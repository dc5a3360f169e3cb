"""``imbal recommend``: the race of :mod:`imbal.study.race.rules` on the grid's machinery (docs/method.md, "The race").

Cells are ordinary grid cells (run folders, locks, resume), so ``imbal report`` reads a race folder
like a grid's. The race's state is a function of the finished runs in the folder alone: a rerun
after a kill continues with the same decisions, and every shard of a cluster array computes the
same next round from the shared folder (a shard with nothing left in a round waits for the others).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imbal.engine import run_dir as rd
from imbal.errors import ConfigError, RunFolderError
from imbal.study.analysis.outputs import Config, StudyOutputs
from imbal.study.analysis.plan import Plan
from imbal.study.race.folder import claim_folder, race_configs, race_state
from imbal.study.race.rules import RaceOutcome, Rules, State, replay
from imbal.study.run.grid import CellExecutor, CellState, run_grid
from imbal.study.run.locks import lock_holder
from imbal.study.run.shards import ShardSeat, take_seat
from imbal.study.run.spec import Cell, StudySpec

# seconds between looks at a round's cells that other processes train (a test sets 1)
POLL_SECONDS = float(os.environ.get("IMBAL_RACE_POLL", 30.0))


def spec_state(root: Path, spec: StudySpec, rules: Rules, configs: list[Config]) -> State:
    (label,) = spec.entries
    return race_state(root, label, spec.plan, rules, configs)


def round_cells(spec: StudySpec, state: State) -> list[Cell]:
    """Every cell the current round needs (finished or not), in one order that every shard shares."""
    (label,) = spec.entries
    baseline = spec.plan.baseline
    configs = list(state.alive) + ([] if baseline in state.alive else [baseline])
    folds = list(range(spec.folds)) if spec.folds else [None]
    return [
        Cell(label, c[0], c[1], s, spec.entries[label], f)
        for c in configs
        for s in range(state.seeds)
        for f in folds
    ]


def cells_to_train(cells: list[Cell], seat: ShardSeat) -> list[Cell]:
    """This shard's cells of a round, then those of shards that are not running (never started, or died)."""
    n = seat.count
    own = cells[seat.index :: n]
    return own + [c for k, c in enumerate(cells) if k % n != seat.index and not seat.live(k % n)]


@dataclass
class Waiting:
    """What a shard with nothing left to train in a round waits for, said when it changes (not every poll)."""

    log: Callable[[str], None]
    since: float = 0.0
    said: tuple[str, ...] = ()

    def report(self, root: Path, pending: list[Cell]) -> None:
        keys = tuple(c.key for c in pending)
        if keys == self.said:
            return
        if not self.said:
            self.since = time.time()
        self.said = keys
        parts = [f"{c.key} ({_holder(c.run_dir(root))})" for c in pending[:6]]
        more = f" and {len(pending) - 6} more" if len(pending) > 6 else ""
        self.log(
            f"race: waiting since {time.strftime('%H:%M:%S', time.localtime(self.since))} for {len(pending)} cell(s) "
            f"of this round that other processes train: {'; '.join(parts)}{more}"
        )

    def done(self) -> None:
        self.said = ()


def _holder(run: Path) -> str:
    holder = lock_holder(run / rd.LOCK)
    return f"training: pid {holder[1]} on {holder[0]}" if holder else "not started by its shard yet"


@dataclass(frozen=True)
class Training:
    """How a race trains its rounds: worker count, log, poll interval, live lines, or a scheduler."""

    jobs: int
    log: Callable[[str], None]
    poll: float
    live_every: float
    executor: CellExecutor | None


def run_race(
    spec: StudySpec,
    root: str | Path,
    rules: Rules,
    *,
    jobs: int = 1,
    shard: tuple[int, int] = (0, 1),
    log: Callable[[str], None] = print,
    poll: float = POLL_SECONDS,
    live_every: float = 30.0,
    executor: CellExecutor | None = None,
) -> State:
    """Trains round after round until the race decides (or its limits are spent); returns its final state."""
    if len(spec.entries) != 1:
        raise ConfigError(
            f"a race runs on one data set; the study names {len(spec.entries)}: {', '.join(spec.entries)}"
        )
    configs = race_configs(spec)
    if spec.plan.baseline not in configs:
        configs = [spec.plan.baseline, *configs]
    try:
        rules.check_budget(len(configs))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    claim_folder(root, spec, rules, configs)
    seat = take_seat(root, shard)
    try:
        return _rounds(spec, root, rules, configs, seat, Training(jobs, log, poll, live_every, executor))
    finally:
        seat.release()


def _rounds(
    spec: StudySpec,
    root: Path,
    rules: Rules,
    configs: list[Config],
    seat: ShardSeat,
    how: Training,
) -> State:
    log = how.log
    waiting = Waiting(log)
    said = None
    while True:
        state = spec_state(root, spec, rules, configs)
        if state.outcome is not None:
            return state
        cells = round_cells(spec, state)
        mine = [c for c in cells_to_train(cells, seat) if not rd.is_finished(c.run_dir(root))]
        if (state.seeds, len(state.alive), len(mine)) != said:
            said = (state.seeds, len(state.alive), len(mine))
            log(
                f"race: round with {rules.units(state.seeds)}, {len(state.alive)} configurations in the race, "
                f"{len(mine)} cells here"
            )
        status = (
            run_grid(
                spec,
                root,
                jobs=how.jobs,
                cells=mine,
                log=log,
                live_every=how.live_every,
                executor=how.executor,
            )
            if mine
            else None
        )
        if status and status[CellState.FAILED]:
            raise RunFolderError(
                f"the race cannot go on without {status[CellState.FAILED][0]}: it failed (see its error.txt); fix the "
                "cause and run the same command again"
            )
        if status is None or not status[CellState.DONE]:
            # the round's other cells are another shard's, or busy in another process
            waiting.report(root, [c for c in cells if not rd.is_finished(c.run_dir(root))])
            time.sleep(how.poll)
        else:
            waiting.done()


def history_rows(state: State) -> list[dict[str, Any]]:
    """A row per configuration and round: its mean, and when and by how much it was dropped."""
    rows = []
    for i, r in enumerate(state.rounds, start=1):
        for c in r.alive:
            diff = r.dropped.get(c)
            rows.append(
                {
                    "round": i,
                    "seeds": r.seeds,
                    "sampler": c[0],
                    "loss": c[1],
                    "mean": r.means[c],
                    "leader": c == r.leader,
                    "dropped": diff is not None,
                    "difference_to_leader": r.means[c] - r.means[r.leader],
                    "p_drop": diff[1] if diff else float("nan"),
                }
            )
    return rows


def replay_study(study: StudyOutputs, plan: Plan, rules: Rules) -> RaceOutcome:
    """The race on a finished grid (seeds in order) without training: the outcome and the runs it would have trained."""
    scores, influence = study.scores("val", plan.primary)
    configs = study.configs
    seeds = min(len(study.seeds_of(c)) for c in configs)
    if seeds < rules.max_seeds:
        raise ValueError(f"the grid has {seeds} seeds per configuration; the race needs {rules.max_seeds}")
    rows = np.array([[study.row[(c, s)] for s in sorted(study.seeds_of(c))[:seeds]] for c in configs])
    return replay(
        plan.sign * scores[rows],
        configs,
        study.baseline,
        rules,
        plan.sign * influence[rows],
        study.val.labels,
    )
