"""``imbal recommend``: the race of :mod:`imbal.study.race.rules` on the grid's machinery (docs/method.md, "The race").

Cells are ordinary grid cells (run folders, locks, resume), so ``imbal report`` reads a race folder
like a grid's. The race's state is a function of the finished runs in the folder alone: a rerun
after a kill continues with the same decisions, and every shard of a cluster array computes the
same next round from the shared folder (a shard with nothing left in a round waits for the others).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imbal.engine import run_dir as rd
from imbal.engine.config import NEUTRAL_KEYS, config_differences
from imbal.errors import ConfigError, RunFolderError
from imbal.study.analysis.outputs import Config, StudyOutputs
from imbal.study.analysis.plan import Plan, write_plan
from imbal.study.race.rules import Outcome, Rules, State, advance, replay
from imbal.study.run.grid import run_grid
from imbal.study.run.locks import ShardSeat, lock_holder, take_seat
from imbal.study.run.spec import PAPER_GRID, Cell, StudySpec

# without a `grid:` the race runs the paper's 15 configurations and logit-adjusted CE
RACE_GRID = [*PAPER_GRID, {"samplers": ["uniform"], "losses": ["la-ce"]}]
CELL_KEYS = ("sampler", "loss", "seed")  # what a race varies from cell to cell
BUDGET_KEYS = ("min_seeds", "max_seeds", "max_runs")
POLL_SECONDS = float(__import__("os").environ.get("IMBAL_RACE_POLL", 30.0))


def race_configs(spec: StudySpec) -> list[Config]:
    grid = spec.grid if spec.grid_given else RACE_GRID
    out = [(s, loss) for block in grid for s in block["samplers"] for loss in block["losses"]]
    return list(dict.fromkeys(out))


def race_rules(spec: StudySpec, cli: dict[str, Any]) -> Rules:
    """The study file's ``budget:`` with the command line's limits on top.

    A study file's ``seeds:`` is the race's seed limit (a race trains seeds 0, 1, ... in order): a
    count, or the list 0..k-1; it may not contradict ``max_seeds``.
    """
    unknown = sorted(set(spec.budget) - set(BUDGET_KEYS))
    if unknown:
        raise ConfigError(f"unknown budget keys {unknown}; expected {', '.join(BUDGET_KEYS)}")
    values = {**spec.budget, **{k: v for k, v in cli.items() if v is not None}}
    if spec.seeds_given:
        if spec.seeds != list(range(len(spec.seeds))):
            raise ConfigError(
                f"seeds {spec.seeds} in the study file: a race trains seeds 0, 1, ... in order, so its seeds are a "
                "count (seeds: 5, the most a configuration gets) or budget max_seeds"
            )
        if values.get("max_seeds", len(spec.seeds)) != len(spec.seeds):
            raise ConfigError(
                f"the study file says seeds: {len(spec.seeds)} and the race's max_seeds is {values['max_seeds']}; "
                "a race has one seed limit: give one of them"
            )
        values["max_seeds"] = len(spec.seeds)
    try:
        return Rules(margin=spec.plan.margin, alpha=spec.plan.alpha, **values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _identity(spec: StudySpec, rules: Rules, configs: list[Config]) -> dict[str, Any]:
    """What makes two races the same race (``max_runs`` may grow: it only says when to stop)."""
    (label,) = spec.entries
    rules_dict = {k: v for k, v in asdict(rules).items() if k != "max_runs"}
    return {"label": label, "configs": [list(c) for c in configs], "rules": rules_dict, **spec.plan.stored()}


def training_settings(spec: StudySpec) -> dict[str, Any]:
    """Every setting that changes a race cell's result, but for what the race varies (sampler, loss, seed)."""
    (label,) = spec.entries
    cell = Cell(label, *spec.plan.baseline, 0, spec.entries[label])
    values = spec.config_for(cell, Path(".")).to_dict()
    return {k: v for k, v in values.items() if k not in (*CELL_KEYS, *NEUTRAL_KEYS)}


def claim_folder(root: Path, spec: StudySpec, rules: Rules, configs: list[Config]) -> None:
    """Writes race.json, or checks the folder's own: another race, or other training settings, are refused.

    race.json pins every training setting (epochs, lr, data, ...): a race decides on runs of one
    setting, so a rerun whose study file or command line changes one is refused, naming it.
    """
    ident = _identity(spec, rules, configs)
    training = training_settings(spec)
    path = root / rd.RACE_FILE
    if path.is_file():
        old = rd.read_json(path)
        old.pop("max_runs", None)
        pinned = old.pop("training", None)
        if old != ident:
            changed = sorted(k for k in ident if old.get(k) != ident[k])
            raise RunFolderError(
                f"{root} holds a race with other settings ({', '.join(changed)}); use another --out, or the same "
                "study file and limits (only --max-runs may change, to continue a race that ran out of runs)"
            )
        if pinned is None:  # a race started before its settings were pinned: its runs are the record
            _check_plain_grid(root, spec)
        elif config_differences(pinned, training):
            changes = ", ".join(
                f"{k} {pinned.get(k)!r} -> {training.get(k)!r}" for k in config_differences(pinned, training)
            )
            raise RunFolderError(
                f"{root} holds a race trained with other settings ({changes}); a race decides on runs of one "
                "setting: rerun it with the settings it was started with, or use another --out"
            )
    else:
        _check_plain_grid(root, spec)
    write_plan(root, spec.plan)
    rd.write_json(path, {**ident, "training": training, "max_runs": rules.max_runs})


def _check_plain_grid(root: Path, spec: StudySpec) -> None:
    """A folder of grid cells can seed a race only if they were trained with the race's settings."""
    (label,) = spec.entries
    for run in rd.cell_dirs(root):
        if not rd.is_finished(run):
            continue
        if rd.cell_label(run) != label:
            raise RunFolderError(
                f"{root} holds runs of another data set ({rd.cell_label(run)!r}); use another --out"
            )
        stored = rd.read_json(run / rd.METRICS_FILE).get("config", {})
        cell = Cell(
            label, stored.get("sampler"), stored.get("loss"), int(stored.get("seed", 0)), spec.entries[label]
        )
        wanted = spec.config_for(cell, root, threads=stored.get("threads", 0)).to_dict()
        diff = [k for k in config_differences(stored, wanted) if k in stored]
        if diff:
            raise RunFolderError(
                f"{run} was trained with other settings ({', '.join(diff)}); a race reuses only runs of its own "
                "settings: use another --out"
            )


def score_reader(root: Path, label: str, plan: Plan) -> Callable[[Config, int], float | None]:
    """``score(config, seed)``: the finished cell's validation primary, oriented higher-is-better; None if not run."""
    cache: dict[tuple[Config, int], float] = {}

    def score(config: Config, seed: int) -> float | None:
        key = (config, seed)
        if key not in cache:
            run = rd.cell_dir(root, label, config[0], config[1], seed)
            if not rd.is_finished(run):
                return None
            value = rd.read_json(run / rd.METRICS_FILE)["val"][plan.primary]
            cache[key] = plan.sign * float(value)
        return cache[key]

    return score


def race_state(root: Path, spec: StudySpec, rules: Rules, configs: list[Config]) -> State:
    (label,) = spec.entries
    return advance(configs, spec.plan.baseline, rules, score_reader(root, label, spec.plan))


def round_cells(spec: StudySpec, state: State) -> list[Cell]:
    """Every cell the current round needs (finished or not), in one order that every shard shares."""
    (label,) = spec.entries
    baseline = spec.plan.baseline
    configs = list(state.alive) + ([] if baseline in state.alive else [baseline])
    return [Cell(label, c[0], c[1], s, spec.entries[label]) for c in configs for s in range(state.seeds)]


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
        return _rounds(spec, root, rules, configs, seat, jobs, log, poll, live_every)
    finally:
        seat.release()


def _rounds(
    spec: StudySpec,
    root: Path,
    rules: Rules,
    configs: list[Config],
    seat: ShardSeat,
    jobs: int,
    log: Callable[[str], None],
    poll: float,
    live_every: float,
) -> State:
    waiting = Waiting(log)
    said = None
    while True:
        state = race_state(root, spec, rules, configs)
        if state.outcome is not None:
            return state
        cells = round_cells(spec, state)
        mine = [c for c in cells_to_train(cells, seat) if not rd.is_finished(c.run_dir(root))]
        if (state.seeds, len(state.alive), len(mine)) != said:
            said = (state.seeds, len(state.alive), len(mine))
            log(
                f"race: round with {state.seeds} seeds, {len(state.alive)} configurations in the race, "
                f"{len(mine)} cells here"
            )
        status = run_grid(spec, root, jobs=jobs, cells=mine, log=log, live_every=live_every) if mine else None
        if status and status["failed"]:
            raise RunFolderError(
                f"the race cannot go on without {status['failed'][0]}: it failed (see its error.txt); fix the "
                "cause and run the same command again"
            )
        if status is None or not status["done"]:
            # the round's other cells are another shard's, or busy in another process
            waiting.report(root, [c for c in cells if not rd.is_finished(c.run_dir(root))])
            time.sleep(poll)
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


def replay_study(study: StudyOutputs, plan: Plan, rules: Rules) -> Outcome:
    """The race on a finished grid (seeds in order) without training: the outcome and the runs it would have trained."""
    scores, _ = study.scores("val", plan.primary)
    configs = study.configs
    seeds = min(len(study.seeds_of(c)) for c in configs)
    if seeds < rules.max_seeds:
        raise ValueError(f"the grid has {seeds} seeds per configuration; the race needs {rules.max_seeds}")
    matrix = np.array(
        [[plan.sign * scores[study.row[(c, s)]] for s in sorted(study.seeds_of(c))[:seeds]] for c in configs]
    )
    return replay(matrix, configs, study.baseline, rules)


def race_from_folder(root: Path) -> tuple[State, Rules, list[Config]] | None:
    """A race folder's state, recomputed from its race.json and finished runs (None: not a race folder).

    Every value of race.json is checked as ``imbal recommend`` checks its own: an edited or damaged
    file is one line, never a wrong "still running" or a traceback.
    """
    path = Path(root) / rd.RACE_FILE
    if not path.is_file():
        return None
    data = rd.read_json(path)
    try:
        plan = Plan(data["primary_metric"], data["equivalence_margin"], data["harm_margin"])
        rules = Rules(**data["rules"], max_runs=data.get("max_runs"))
        configs = _configs(data["configs"], plan)
        label = data["label"]
        if not isinstance(label, str) or not label:
            raise ValueError(f"label must be a data-set label, got {label!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(
            f"{path} is damaged or was edited ({exc}); run the race again into a new --out"
        ) from None
    state = advance(configs, plan.baseline, rules, score_reader(Path(root), label, plan))
    return state, rules, configs


def _configs(raw: Any, plan: Plan) -> list[Config]:
    ok = isinstance(raw, list) and all(
        isinstance(c, list) and len(c) == 2 and all(isinstance(v, str) and v for v in c) for c in raw
    )
    if not ok:
        raise ValueError(f"configs must be a list of [sampler, loss] pairs, got {raw!r}")
    configs = [(c[0], c[1]) for c in raw]
    if len(set(configs)) != len(configs) or plan.baseline not in configs:
        raise ValueError(f"configs must be distinct and hold the baseline {list(plan.baseline)}, got {raw!r}")
    return configs
