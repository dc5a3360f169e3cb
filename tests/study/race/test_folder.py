"""A race's folder (race.json): which race it holds, its pinned training settings, checks on read, its seeds."""

import json

import pytest
import yaml

from imbal.cli.main import main
from tests.study.race.tiny_race import GRID, SYN, TRAIN, finished, study


def test_other_races_and_grids_on_one_folder_are_refused(race, tmp_path, capsys):
    tmp, _ = race
    other = study(tmp_path / "other.yaml", grid=[{"samplers": ["uniform"], "losses": ["ce", "focal"]}])
    before = finished(tmp / "r")
    assert main(["recommend", "--config", str(other), "--out", str(tmp / "r")]) == 2
    assert "holds a race with other settings (configs)" in capsys.readouterr().err
    assert finished(tmp / "r") == before
    # a plain grid trained with other settings cannot seed a race
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"train": {**TRAIN, "epochs": 2}, "grid": GRID, "seeds": [0]}))
    assert main(["grid", "--config", str(grid), "--out", str(tmp_path / "g"), "--quiet"]) == 0
    assert main(["recommend", "--config", str(study(tmp_path / "s.yaml")), "--out", str(tmp_path / "g")]) == 2
    assert "was trained with other settings (epochs)" in capsys.readouterr().err
    # two data sets: a race runs on one
    two = study(tmp_path / "two.yaml", datasets=[{**SYN, "label": "a"}, {**SYN, "label": "b"}])
    assert main(["recommend", "--config", str(two), "--out", str(tmp_path / "t")]) == 2
    assert "a race runs on one data set" in capsys.readouterr().err


def test_a_race_refuses_changed_training_settings(race, tmp_path, capsys):
    import shutil

    tmp, path = race
    copy = tmp_path / "r"
    shutil.copytree(tmp / "r", copy)
    before = finished(copy)
    pinned = json.loads((copy / "race.json").read_text())["training"]
    assert pinned["epochs"] == 1 and pinned["lr"] == 1e-3 and "sampler" not in pinned and "out" not in pinned
    for extra in (["--epochs", "2"], ["--lr", "0.01"]):
        assert main(["recommend", "--config", str(path), "--out", str(copy), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert "holds a race trained with other settings" in err and err.count("\n") == 1, err
    assert "(lr 0.001 -> 0.01)" in err
    changed = study(tmp_path / "changed.yaml", train={**TRAIN, "epochs": 2})
    assert main(["recommend", "--config", str(changed), "--out", str(copy), "--quiet"]) == 2
    assert "(epochs 1 -> 2)" in capsys.readouterr().err
    assert finished(copy) == before
    # a race started before settings were pinned is checked against its runs, then pinned
    ident = json.loads((copy / "race.json").read_text())
    del ident["training"]
    (copy / "race.json").write_text(json.dumps(ident))
    assert main(["recommend", "--config", str(changed), "--out", str(copy), "--quiet"]) == 2
    assert "was trained with other settings (epochs)" in capsys.readouterr().err
    assert main(["recommend", "--config", str(path), "--out", str(copy), "--quiet"]) == 0
    assert json.loads((copy / "race.json").read_text())["training"] == pinned


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(equivalence_margin=-1), r"equivalence_margin must be a number in \(0, 0.5\)"),
        (lambda d: d["budget"].update(min_seeds=1), r"min_seeds must be an integer >= 2"),
        # a race.json written before the budget and the plan had one home each
        (
            lambda d: d.update(rules={**d.pop("budget"), "margin": 0.5, "alpha": 0.05}),
            r"rules' margin or level differ",
        ),
        (lambda d: d.update(configs=[["uniform"]]), r"configs must be a list of \[sampler, loss\] pairs"),
        (lambda d: d.update(configs=[["uniform", "mcc"]]), r"hold the baseline \['uniform', 'ce'\]"),
        (lambda d: d.update(label=7), r"label must be a data-set label, got 7"),
    ],
)
def test_the_report_checks_an_edited_race_file(race, tmp_path, capsys, edit, message):
    import re
    import shutil

    tmp, _ = race
    copy = tmp_path / "r"
    shutil.copytree(tmp / "r", copy)
    data = json.loads((copy / "race.json").read_text())
    edit(data)
    (copy / "race.json").write_text(json.dumps(data))
    assert main(["report", str(copy)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "race.json is damaged or was edited" in err and err.count("\n") == 1, (
        err
    )


def test_a_races_seeds_come_from_the_study_file(tmp_path, capsys):
    from imbal.study.race.folder import race_rules
    from imbal.study.run.spec import load_study

    three = load_study(study(tmp_path / "a.yaml", seeds=3, budget={}))
    assert race_rules(three, {}).max_seeds == 3
    assert (
        race_rules(load_study(study(tmp_path / "b.yaml", budget={})), {}).max_seeds == 5
    )  # no seeds: default
    listed = study(tmp_path / "c.yaml", seeds=[1, 2], budget={})
    assert main(["recommend", "--config", str(listed), "--out", str(tmp_path / "x")]) == 2
    assert "a race trains seeds 0, 1, ... in order" in capsys.readouterr().err
    clash = study(tmp_path / "d.yaml", seeds=3, budget={})
    assert main(["recommend", "--config", str(clash), "--out", str(tmp_path / "x"), "--max-seeds", "4"]) == 2
    assert "says seeds: 3 and the race's max_seeds is 4" in capsys.readouterr().err
