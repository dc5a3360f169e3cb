"""``imbal recommend``: the race of :mod:`imbal.study.race` on the grid's machinery (docs/method.md, "The race").

Cells are ordinary grid cells (run folders, locks, resume), so ``imbal report`` reads a race folder
like a grid's. The race's state is a function of the finished runs in the folder alone: a rerun
after a kill continues with the same decisions, and every shard of a cluster array computes the
same next round from the shared folder (a shard with nothing left in a round waits for the others).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from imbal.engine import run_dir as rd
from imbal.engine.config import config_differences
from imbal.errors import ConfigError, RunFolderError
from imbal.study.grid import run_grid, shard_cells
from imbal.study.outputs import Config, StudyOutputs
from imbal.study.plan import Plan, write_plan
from imbal.study.race import Outcome, Rules, State, advance, replay
from imbal.study.spec import PAPER_GRID, Cell, StudySpec

# without a `grid:` the race runs the paper's 15 configurations and logit-adjusted CE
RACE_GRID = [*PAPER_GRID, {"samplers": ["uniform"], "losses": ["la-ce"]}]
BUDGET_KEYS = ("min_seeds", "max_seeds", "max_runs")
POLL_SECONDS = float(__import__("os").environ.get("IMBAL_RACE_POLL", 30.0))


def race_configs(spec: StudySpec) -> list[Config]:
    grid = spec.grid if spec.grid_given else RACE_GRID
    out = [(s, loss) for block in grid for s in block["samplers"] for loss in block["losses"]]
    return list(dict.fromkeys(out))


def race_rules(spec: StudySpec, cli: dict[str, Any]) -> Rules:
    """The study file's ``budget:`` with the command line's limits on top."""
    unknown = sorted(set(spec.budget) - set(BUDGET_KEYS))
    if unknown:
        raise ConfigError(f"unknown budget keys {unknown}; expected {', '.join(BUDGET_KEYS)}")
    values = {**spec.budget, **{k: v for k, v in cli.items() if v is not None}}
    try:
        return Rules(margin=spec.plan.margin, alpha=spec.plan.alpha, **values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _identity(spec: StudySpec, rules: Rules, configs: list[Config]) -> dict[str, Any]:
    """What makes two races the same race (``max_runs`` may grow: it only says when to stop)."""
    (label,) = spec.entries
    rules_dict = {k: v for k, v in asdict(rules).items() if k != "max_runs"}
    return {"label": label, "configs": [list(c) for c in configs], "rules": rules_dict, **spec.plan.stored()}


def claim_folder(root: Path, spec: StudySpec, rules: Rules, configs: list[Config]) -> None:
    """Writes race.json, or checks the folder's own: another race, or a grid of other settings, is refused."""
    ident = _identity(spec, rules, configs)
    path = root / rd.RACE_FILE
    if path.is_file():
        old = rd.read_json(path)
        old.pop("max_runs", None)
        if old != ident:
            changed = sorted(k for k in ident if old.get(k) != ident[k])
            raise RunFolderError(
                f"{root} holds a race with other settings ({', '.join(changed)}); use another --out, or the same "
                "study file and limits (only --max-runs may change, to continue a race that ran out of runs)"
            )
    else:
        _check_plain_grid(root, spec)
    write_plan(root, spec.plan)
    rd.write_json(path, {**ident, "max_runs": rules.max_runs})


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
    while True:
        state = race_state(root, spec, rules, configs)
        if state.outcome is not None:
            return state
        mine = [
            c for c in shard_cells(round_cells(spec, state), shard) if not rd.is_finished(c.run_dir(root))
        ]
        log(
            f"race: round with {state.seeds} seeds, {len(state.alive)} configurations in the race, {len(mine)} cells here"
        )
        status = run_grid(spec, root, jobs=jobs, cells=mine, log=log, live_every=live_every) if mine else None
        if status and status["failed"]:
            raise RunFolderError(
                f"the race cannot go on without {status['failed'][0]}: it failed (see its error.txt); fix the "
                "cause and run the same command again"
            )
        if status is None or not status["done"]:
            time.sleep(poll)  # the round's other cells are another shard's, or busy in another process


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
    """A race folder's state, recomputed from its race.json and finished runs (None: not a race folder)."""
    path = Path(root) / rd.RACE_FILE
    if not path.is_file():
        return None
    data = rd.read_json(path)
    try:
        plan = Plan(data["primary_metric"], data["equivalence_margin"], data["harm_margin"])
        rules = Rules(**data["rules"], max_runs=data.get("max_runs"))
        configs = [tuple(c) for c in data["configs"]]
        label = data["label"]
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(f"{path} is damaged ({exc}); run the race again into a new --out") from None
    state = advance(configs, plan.baseline, rules, score_reader(Path(root), label, plan))
    return state, rules, configs
