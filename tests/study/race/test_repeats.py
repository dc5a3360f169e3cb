"""A race over a cross-validated study's repeats: the report's pooled evidence, rounds of whole repeats, limits."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import balanced_accuracy_score

from imbal.cli.main import main
from imbal.engine import run_dir as rd
from imbal.errors import RunFolderError
from imbal.study.analysis.choice import Grid
from imbal.study.analysis.plan import Plan
from imbal.study.race.repeats import fold_evidence, replay_repeats
from imbal.study.race.rules import Rules
from imbal.study.simulation import studies as sim
from tests.study.analysis.test_crossval import _study as cv_study
from tests.study.race.tiny_race import GRID, TRAIN, finished

PLAN = Plan()


def _study(**kw):
    """A simulated cross-validated study (RetinaMNIST-like noise, 5 folds): 3 configurations x 2 repeats."""
    return cv_study(**{"configs": 3, "repeats": 2, **kw})


def test_a_round_reads_the_pooled_validation_and_the_reports_estimates():
    study = _study()
    configs = study.configs
    means, est = fold_evidence(study, PLAN)(configs, 2)
    labels = study.val.labels
    for i, c in enumerate(configs):
        pooled = [balanced_accuracy_score(labels, study.val.preds[study.row[(c, r)]]) for r in range(2)]
        assert means[i] == pytest.approx(np.mean(pooled), abs=1e-12)
    # the pair "j minus the baseline" is the report's own cross-validated estimate on validation
    report = Grid(study).estimates("val", PLAN.primary)
    for j in (1, 2):
        e, r = est[j][0], report[j - 1]
        assert (e.difference, e.seed_var, e.image_var, e.seeds) == pytest.approx(
            (r.difference, r.seed_var, r.image_var, r.seeds)
        )
        assert est[0][j].difference == pytest.approx(-e.difference) and est[0][j].se == pytest.approx(e.se)
    # one repeat already has a spread: its five per-fold differences (a model level that may come out 0)
    _, first = fold_evidence(study, PLAN)(configs, 1)
    assert first[1][0].seeds == 5 and first[1][0].se > 0


def test_a_round_waits_for_every_repeat_of_the_race_and_of_the_baseline():
    study = _study()
    evidence = fold_evidence(study, PLAN)
    assert evidence(study.configs, 3) is None
    lacking = study.select(
        [i for i, (c, r) in enumerate(study.runs) if not (c == study.configs[2] and r == 1)]
    )
    assert fold_evidence(lacking, PLAN)(lacking.configs, 2) is None
    assert fold_evidence(lacking, PLAN)(lacking.configs[:2], 2) is not None
    no_baseline = study.select(
        [i for i, (c, r) in enumerate(study.runs) if not (c == study.baseline and r == 1)]
    )
    assert fold_evidence(no_baseline, PLAN)(no_baseline.configs[1:], 2) is None


def test_a_clear_loser_leaves_after_one_repeat_and_rounds_count_whole_repeats():
    study = _study(effects=[0.0, 0.0, -0.12])
    outcome = replay_repeats(study, PLAN, Rules(PLAN, min_seeds=1, max_seeds=2, folds=5))
    first = outcome.rounds[0]
    assert first.seeds == 1 and study.configs[2] in first.dropped
    assert outcome.rounds[-1].seeds == 2 and outcome.runs == 3 * 5 + 2 * 5


def test_rules_and_replays_of_a_race_over_repeats_check_their_input():
    assert Rules(min_seeds=1, folds=5).unit == "repeat"
    with pytest.raises(
        ValueError, match=r"min_seeds must be an integer >= 2 \(a paired spread needs two seeds\), got 1"
    ):
        Rules(min_seeds=1)
    with pytest.raises(ValueError, match=r"folds must be 0 \(a seed race\) or an integer >= 3, got 2"):
        Rules(folds=2)
    with pytest.raises(ValueError, match=r"first round \(3 configurations x 1 repeat x 5 folds = 15 runs\)"):
        Rules(min_seeds=1, max_runs=10, folds=5).check_budget(3)
    with pytest.raises(ValueError, match="the study has 2 repeats per configuration; the race needs up to 3"):
        replay_repeats(_study(), PLAN, Rules(min_seeds=1, max_seeds=3, folds=5))
    official = sim.draw(
        sim.Truth(np.zeros(2), sim.RETINA, 2, configs=list(sim.CONFIGS[:2])), np.random.default_rng(0)
    )
    with pytest.raises(ValueError, match="needs a cross-validated study"):
        fold_evidence(official, PLAN)


def _cv_study(path, **cv):
    path.write_text(yaml.safe_dump({"train": TRAIN, "grid": GRID, "cv": {"folds": 3, **cv}}))
    return path


@pytest.mark.parametrize(
    ("cv", "args", "message"),
    [
        ({}, [], r"needs cv: repeats >= 2 \(its limit\), got 1"),
        ({"repeats": 2}, ["--max-seeds", "3"], "cv: repeats is 2 and the race's max_seeds is 3"),
        (
            {"repeats": 2},
            ["--min-seeds", "0"],
            r"min_seeds must be an integer >= 1 \(one repeat of its folds\)",
        ),
    ],
)
def test_bad_limits_of_a_race_over_repeats_are_one_line(tmp_path, capsys, cv, args, message):
    path = _cv_study(tmp_path / "s.yaml", **cv)
    assert main(["recommend", "--config", str(path), "--out", str(tmp_path / "r"), "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "r" / "runs").exists()


def test_a_race_over_repeats_trains_whole_repeats_and_reports_them(tmp_path, capsys):
    path = _cv_study(tmp_path / "s.yaml", repeats=2)
    root = tmp_path / "r"
    assert main(["recommend", "--config", str(path), "--out", str(root), "--quiet"]) == 0
    cells = finished(root)
    # every cell is a fold of a repeat, and every configuration trained has all folds of its repeats
    by_run: dict[str, set[str]] = {}
    for cell in cells:
        run, last = cell.rsplit("/", 1)
        seed, fold = last.split("-")
        by_run.setdefault(f"{run}/{seed}", set()).add(fold)
    assert by_run and all(folds == {"fold0", "fold1", "fold2"} for folds in by_run.values())
    assert {k for k in by_run if k.endswith("seed0")} == {
        f"runs/synthetic/uniform/{loss}/seed0" for loss in ("ce", "ce+0xf1", "mcc")
    }
    # the baseline gets every round the race held, whoever is left
    rounds = pd.read_csv(root / "tables" / "race_history.csv")["seeds"].max()
    assert {k for k in by_run if "/uniform/ce/" in k} == {
        f"runs/synthetic/uniform/ce/seed{r}" for r in range(rounds)
    }
    md = (root / "report.md").read_text()
    assert "The race chose" in md and "x 2 repeats x 3 folds = 18)" in md and "round 1 (1 repeat)" in md
    # a rerun trains nothing
    assert main(["recommend", "--config", str(path), "--out", str(root), "--quiet"]) == 0
    assert finished(root) == cells
    # a folder of the same fold runs (a grid's) seeds a race that trains nothing more
    import shutil

    shutil.copytree(root / "runs", tmp_path / "seeded" / "runs")
    assert main(["recommend", "--config", str(path), "--out", str(tmp_path / "seeded"), "--quiet"]) == 0
    assert finished(tmp_path / "seeded") == cells
    # the race's own pooling of the validation outputs is the report's
    from imbal.study.race.repeats import folder_evidence
    from imbal.study.report.collect import collect_study

    (data,) = collect_study(root).datasets
    configs = [("uniform", "ce"), ("uniform", "ce+0*f1"), ("uniform", "mcc")]
    mine = folder_evidence(root, "synthetic", PLAN, 3)(configs, 1)
    report = fold_evidence(data.outputs, PLAN)(configs, 1)
    assert mine[0] == pytest.approx(report[0])
    assert [e.difference for e in mine[1][1] if e] == pytest.approx([e.difference for e in report[1][1] if e])


def _fold_outputs(labels, pool, fold_logits):
    return {
        "labels": np.asarray(labels),
        "logits": np.asarray(fold_logits, dtype=np.float32),
        rd.POOL_INDEX: np.asarray(pool),
    }


def test_the_races_pooling_refuses_folds_of_different_partitions_and_runs_without_pool_index():
    from imbal.study.race.repeats import pooled_validation

    logits = [[1.0, 0.0], [0.0, 1.0]]
    # run f validates fold f + 1: configuration a's fold 1 is images {2, 3}, b's fold 1 is images {0, 1}
    a = {f: _fold_outputs([0, 1], [2 * ((f + 1) % 3), 2 * ((f + 1) % 3) + 1], logits) for f in range(3)}
    b = {f: _fold_outputs([0, 1], [2 * ((f + 2) % 3), 2 * ((f + 2) % 3) + 1], logits) for f in range(3)}
    pooled = pooled_validation({(("uniform", "ce"), 0): a}, 3, None, PLAN)
    assert pooled.folds.ids.tolist() == [[0, 0, 1, 1, 2, 2]] and pooled.minority == 0
    with pytest.raises(RunFolderError, match="must share its partition"):
        pooled_validation({(("uniform", "ce"), 0): a, (("uniform", "mcc"), 0): b}, 3, None, PLAN)
    old = {f: {k: v for k, v in o.items() if k != rd.POOL_INDEX} for f, o in a.items()}
    with pytest.raises(RunFolderError, match="hold no pool_index"):
        pooled_validation({(("uniform", "ce"), 0): old}, 3, None, PLAN)


def test_a_round_of_a_race_over_repeats_asks_for_every_fold_of_its_repeats(tmp_path):
    from imbal.study.race.rules import State
    from imbal.study.race.runner import round_cells
    from imbal.study.run.spec import load_study

    spec = load_study(_cv_study(tmp_path / "s.yaml", repeats=3))
    alive = [("uniform", "mcc")]  # the baseline trains every round all the same
    cells = round_cells(spec, State([], alive, 2, None))
    assert sorted((c.loss, c.seed, c.fold) for c in cells) == sorted(
        (loss, r, f) for loss in ("mcc", "ce") for r in range(2) for f in range(3)
    )
