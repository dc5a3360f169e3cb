"""A race's folder: its ``race.json`` (which race, its budget, its plan, its pinned training settings).

``race.json`` says what makes two races the same race: the data set's label, the configurations,
the budget (``max_runs`` may grow: it only says when to stop), the analysis plan and every training
setting of its cells. A rerun with another of these is refused naming it; ``imbal report`` checks
every value on read, so an edited file is one line, never a wrong "still running" or a traceback.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imbal.engine import run_dir as rd
from imbal.engine.config import KeyRole, config_differences, keys_of
from imbal.errors import ConfigError, RunFolderError
from imbal.study.analysis.influence import scores_and_influence
from imbal.study.analysis.outputs import Config
from imbal.study.analysis.plan import Plan, write_plan
from imbal.study.race.repeats import folder_evidence
from imbal.study.race.rules import Rules, Score, State, advance, progress
from imbal.study.run.spec import PAPER_GRID, Cell, StudySpec

# without a `grid:` the race runs the paper's 15 configurations and logit-adjusted CE
RACE_GRID = [*PAPER_GRID, {"samplers": ["uniform"], "losses": ["la-ce"]}]
# a study file's `budget:` keys: the race's limits (its margin and level are the plan's)
BUDGET_KEYS = tuple(f.name for f in dataclasses.fields(Rules) if f.name not in ("plan", "folds"))


def race_configs(spec: StudySpec) -> list[Config]:
    """The configurations a study races: its grid's, or the paper's 15 and la-ce without a grid."""
    grid = spec.grid if spec.grid_given else RACE_GRID
    out = [(s, loss) for block in grid for s in block["samplers"] for loss in block["losses"]]
    return list(dict.fromkeys(out))


def race_rules(spec: StudySpec, cli: dict[str, Any]) -> Rules:
    """The study file's ``budget:`` with the command line's limits on top, and the study's plan.

    A study file's ``seeds:`` is the race's seed limit (a race trains seeds 0, 1, ... in order): a
    count, or the list 0..k-1; it may not contradict ``max_seeds``. A cross-validated study's race
    adds repeats: its limit is ``cv: repeats`` (at least 2) and its first round one repeat.
    """
    unknown = sorted(set(spec.budget) - set(BUDGET_KEYS))
    if unknown:
        raise ConfigError(f"unknown budget keys {unknown}; expected {', '.join(BUDGET_KEYS)}")
    values = {**spec.budget, **{k: v for k, v in cli.items() if v is not None}}
    if spec.folds:
        return _repeat_rules(spec, values)
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
        return Rules(spec.plan, **values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _repeat_rules(spec: StudySpec, values: dict[str, Any]) -> Rules:
    repeats = len(spec.seeds)
    if repeats < 2:
        raise ConfigError(
            f"a race over a cross-validated study's repeats needs cv: repeats >= 2 (its limit), got {repeats}; with "
            "one repeat every configuration gets all its folds anyway: run `imbal grid`"
        )
    if values.get("max_seeds", repeats) != repeats:
        raise ConfigError(
            f"the study's cv: repeats is {repeats} and the race's max_seeds is {values['max_seeds']}; a race over "
            "repeats has one limit: give cv: repeats"
        )
    try:
        return Rules(spec.plan, **{"min_seeds": 1, **values, "max_seeds": repeats}, folds=spec.folds)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _budget(rules: Rules) -> dict[str, Any]:
    # a race over repeats names its folds; a seed race's budget is as it always was
    folds = {"folds": rules.folds} if rules.folds else {}
    return {**{k: getattr(rules, k) for k in BUDGET_KEYS if k != "max_runs"}, **folds}


def _identity(spec: StudySpec, rules: Rules, configs: list[Config]) -> dict[str, Any]:
    """What makes two races the same race (``max_runs`` may grow: it only says when to stop)."""
    (label,) = spec.entries
    return {
        "label": label,
        "configs": [list(c) for c in configs],
        "budget": _budget(rules),
        **spec.plan.stored(),
    }


def training_settings(spec: StudySpec) -> dict[str, Any]:
    """Every setting that changes a race cell's result, but for what the race varies (sampler, loss, seed)."""
    (label,) = spec.entries
    cell = Cell(label, *spec.plan.baseline, 0, spec.entries[label])
    values = spec.config_for(cell, Path(".")).to_dict()
    return {k: values[k] for k in keys_of(KeyRole.TRAINING, KeyRole.EXECUTION)}


def _upgraded(stored: dict[str, Any]) -> dict[str, Any]:
    """A race.json written before the budget and the plan were one home each: its ``rules`` held both."""
    if "rules" not in stored:
        return stored
    old = dict(stored)
    rules = dict(old.pop("rules") or {})
    if (
        rules.pop("margin", old.get("equivalence_margin")) != old.get("equivalence_margin")
        or rules.pop("alpha", Plan.alpha) != Plan.alpha
    ):
        raise ValueError("its rules' margin or level differ from its plan's")
    return {**old, "budget": rules}


def claim_folder(root: Path, spec: StudySpec, rules: Rules, configs: list[Config]) -> None:
    """Writes race.json, or checks the folder's own: another race, or other training settings, are refused.

    race.json pins every training setting (epochs, lr, data, ...): a race decides on runs of one
    setting, so a rerun whose study file or command line changes one is refused, naming it.
    """
    ident = _identity(spec, rules, configs)
    training = training_settings(spec)
    path = root / rd.RACE_FILE
    if path.is_file():
        try:
            old = _upgraded(rd.read_json(path))
        except ValueError as exc:
            raise RunFolderError(f"{path} is damaged or was edited ({exc}); use another --out") from None
        old.pop("max_runs", None)
        pinned = old.pop("training", None)
        if old != ident:
            changed = sorted(k for k in ident if old.get(k) != ident[k])
            raise RunFolderError(
                f"{root} holds a race with other settings ({', '.join(changed)}); use another --out, or the same "
                "study file and limits (only --max-runs may change, to continue a race that ran out of runs)"
            )
        if pinned is None:  # a race started before its settings were pinned: its runs are the record
            check_runs_fit(root, spec)
        elif config_differences(pinned, training):
            changes = ", ".join(
                f"{k} {pinned.get(k)!r} -> {training.get(k)!r}" for k in config_differences(pinned, training)
            )
            raise RunFolderError(
                f"{root} holds a race trained with other settings ({changes}); a race decides on runs of one "
                "setting: rerun it with the settings it was started with, or use another --out"
            )
    else:
        check_runs_fit(root, spec)
    write_plan(root, spec.plan)
    rd.write_json(path, {**ident, "training": training, "max_runs": rules.max_runs})


def check_runs_fit(root: Path, spec: StudySpec) -> None:
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
            label,
            stored.get("sampler"),
            stored.get("loss"),
            int(stored.get("seed", 0)),
            spec.entries[label],
            rd.fold_of(stored),
        )
        diff = spec.changed_settings(cell, stored, root)
        if diff:
            raise RunFolderError(
                f"{run} was trained with other settings ({', '.join(diff)}); a race reuses only runs of its own "
                "settings: use another --out"
            )


@dataclass
class ScoreReader:
    """``reader(config, seed)``: a finished cell's validation primary (higher is better) and each validation
    image's influence on it, read from the cell's own outputs; None when the cell has not finished.

    ``labels`` are the validation images' classes, known once a first cell finished (every cell of a
    race is scored on the same validation split: checked).
    """

    root: Path
    label: str
    plan: Plan
    labels: np.ndarray | None = None
    cache: dict[tuple[Config, int], Score] = field(default_factory=dict)

    def __call__(self, config: Config, seed: int) -> Score | None:
        key = (config, seed)
        if key in self.cache:
            return self.cache[key]
        run = rd.cell_dir(self.root, self.label, config[0], config[1], seed)
        if not rd.is_finished(run):
            return None
        out = rd.read_outputs(run, "val")
        labels, preds = out["labels"].astype(np.int64), out["logits"].argmax(-1)
        if self.labels is None:
            self.labels = labels
        elif not np.array_equal(labels, self.labels):
            raise RunFolderError(f"{run} was scored on other validation images than the race's other cells")
        minority = rd.read_json(run / rd.METRICS_FILE)["dataset"].get("minority_class")
        score, influence = scores_and_influence(
            self.plan.primary, labels, preds[None], out["logits"].shape[1], minority
        )
        self.cache[key] = (self.plan.sign * float(score[0]), self.plan.sign * influence[0])
        return self.cache[key]


def race_state(root: Path, label: str, plan: Plan, rules: Rules, configs: list[Config]) -> State:
    """The race's state, recomputed from its finished cells (validation scores and their images' noise)."""
    if rules.folds:
        return progress(configs, plan.baseline, rules, folder_evidence(root, label, plan, rules.folds))
    reader = ScoreReader(root, label, plan)
    # the labels are read with the first finished cell; the state reads them once more when known
    state = advance(configs, plan.baseline, rules, reader)
    return (
        advance(configs, plan.baseline, rules, reader, reader.labels) if reader.labels is not None else state
    )


@dataclass
class RaceFolder:
    """A race folder as read back: its state (recomputed from its finished runs), rules and configurations."""

    state: State
    rules: Rules
    configs: list[Config]


def race_from_folder(root: Path) -> RaceFolder | None:
    """A race folder's state, recomputed from its race.json and finished runs (None: not a race folder)."""
    path = Path(root) / rd.RACE_FILE
    if not path.is_file():
        return None
    try:
        data = _upgraded(rd.read_json(path))
        plan = Plan(data["primary_metric"], data["equivalence_margin"], data["harm_margin"])
        rules = Rules(plan, **data["budget"], max_runs=data.get("max_runs"))
        configs = _configs(data["configs"], plan)
        label = data["label"]
        if not isinstance(label, str) or not label:
            raise ValueError(f"label must be a data-set label, got {label!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(
            f"{path} is damaged or was edited ({exc}); run the race again into a new --out"
        ) from None
    return RaceFolder(race_state(Path(root), label, plan, rules, configs), rules, configs)


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
