"""`imbal recommend` on the grid's machinery: a real tiny race, resume, shards, and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from imbal.cli.main import main
from imbal.engine import run_dir as rd

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 240, "size": 12, "class_ratios": [0.6, 0.4], "seed": 3}
TRAIN = {"dataset": SYN, "widen_factor": 0.125, "epochs": 1}
GRID = [{"samplers": ["uniform"], "losses": ["ce", "ce+0*f1", "mcc"]}]


def study(path: Path, **kw) -> Path:
    data = {"train": TRAIN, "grid": GRID, "budget": {"max_seeds": 3}, **kw}
    path.write_text(yaml.safe_dump(data))
    return path


def finished(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in rd.cell_dirs(root) if rd.is_finished(p))


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("race")
    path = study(tmp / "study.yaml")
    assert main(["recommend", "--config", str(path), "--out", str(tmp / "r"), "--quiet"]) == 0
    return tmp, path


def test_a_race_ends_with_a_choice_and_a_report(race, capsys):
    tmp, _ = race
    root = tmp / "r"
    ident = json.loads((root / "race.json").read_text())
    assert ident["configs"] == [["uniform", "ce"], ["uniform", "ce+0*f1"], ["uniform", "mcc"]]
    md = (root / "report.md").read_text()
    assert "## The race (imbal recommend)" in md and "The race chose" in md and "of the full grid" in md
    assert (root / "tables" / "race_history.csv").is_file() and (root / "plan.json").is_file()
    # every configuration got the first round; the baseline got every round the race held
    cells = finished(root)
    assert {c.split("/seed")[0] for c in cells} == {
        "runs/synthetic/uniform/ce",
        "runs/synthetic/uniform/ce+0xf1",
        "runs/synthetic/uniform/mcc",
    }
    assert len(cells) <= 9


def test_a_rerun_trains_nothing_and_decides_the_same(race, capsys):
    tmp, path = race
    root = tmp / "r"
    before = (root / "report.md").read_text()
    cells = finished(root)
    assert main(["recommend", "--config", str(path), "--out", str(root), "--quiet"]) == 0
    assert finished(root) == cells
    chosen = [line for line in before.splitlines() if line.startswith("The race chose")]
    assert chosen and chosen[0] in (root / "report.md").read_text()


def test_a_killed_race_continues_with_the_same_decisions(race, tmp_path):
    tmp, path = race
    import shutil

    copy = tmp_path / "r"
    shutil.copytree(tmp / "r", copy)
    last = sorted(rd.cell_dirs(copy))[-1]
    (last / "metrics.json").unlink()  # killed before its last write
    assert main(["recommend", "--config", str(path), "--out", str(copy), "--quiet"]) == 0
    assert finished(copy) == finished(tmp / "r")
    line = next(
        x for x in (tmp / "r" / "report.md").read_text().splitlines() if x.startswith("The race chose")
    )
    assert line in (copy / "report.md").read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--min-seeds", "1"], "min_seeds must be an integer >= 2"),
        (
            ["--max-runs", "5"],
            r"max_runs 5 is smaller than the first round \(3 configurations x 2 seeds = 6 runs\)",
        ),
    ],
)
def test_bad_limits_are_one_line(race, tmp_path, capsys, args, message):
    import re

    _, path = race
    assert main(["recommend", "--config", str(path), "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "runs").exists()


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


def test_shards_agree_on_every_round(race, tmp_path):
    _, path = race
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "IMBAL_RACE_POLL": "1"}
    cmd = [
        sys.executable,
        "-m",
        "imbal.cli.main",
        "recommend",
        "--config",
        str(path),
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    ]
    procs = [
        subprocess.Popen(
            [*cmd, "--shard", f"{i}/2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    # the same race as one process ran, each cell trained once (one epoch line in its log)
    tmp, _ = race
    assert finished(tmp_path / "r") == finished(tmp / "r")
    for log in (tmp_path / "r").glob("runs/*/*/*/seed*/train.log"):
        assert len(log.read_text().splitlines()) == 1, log


# ---------------------------------------------------------------- nothing lost (issue 30)


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


def test_shards_of_another_n_are_refused_while_one_runs(race, tmp_path, capsys):
    from imbal.study.run.shards import take_seat

    _, path = race
    root = tmp_path / "r"
    root.mkdir()
    seat = take_seat(root, (0, 2))  # as if shard 0/2 were running
    try:
        for shard, shown in (("1/3", "shard 1/3"), (None, "a process without --shard")):
            args = ["recommend", "--config", str(path), "--out", str(root), "--quiet"]
            assert main([*args, *(["--shard", shard] if shard else [])]) == 2
            err = capsys.readouterr().err
            assert f"{shown} refused: {root} is being run by shard 0/2 (pid {os.getpid()}" in err, err
            assert "every process of one study uses the same n (--shard i/2)" in err
        assert main(["grid", "--config", str(path), "--out", str(root), "--shard", "0/3", "--quiet"]) == 2
        assert "shard 0/3 refused" in capsys.readouterr().err
    finally:
        seat.release()
    assert finished(root) == []


def test_a_shard_takes_over_the_cells_of_a_shard_that_never_runs(race, tmp_path, capsys):
    tmp, path = race
    args = ["recommend", "--config", str(path), "--out", str(tmp_path / "r"), "--quiet", "--shard", "0/2"]
    assert main(args) == 0
    # alone, shard 0/2 ran the whole race: the same cells as one process, each trained once
    assert finished(tmp_path / "r") == finished(tmp / "r")


def test_the_race_waits_naming_the_cells_and_since_when(tmp_path):
    from imbal.study.race.runner import Waiting
    from imbal.study.run.spec import Cell

    lines = []
    waiting = Waiting(lines.append)
    run = tmp_path / "runs" / "x" / "uniform" / "ce" / "seed2"
    run.mkdir(parents=True)
    (run / "run.lock").write_text("otherhost 4242\n")
    cells = [Cell("x", "uniform", "ce", 2), Cell("x", "uniform", "mcc", 2)]
    for _ in range(3):
        waiting.report(tmp_path, cells)
    assert len(lines) == 1  # said once, not on every poll
    assert "for 2 cell(s) of this round that other processes train" in lines[0]
    assert "x/uniform/ce/seed2 (training: pid 4242 on otherhost)" in lines[0]
    assert "x/uniform/mcc/seed2 (not started by its shard yet)" in lines[0]
    assert lines[0].startswith("race: waiting since ")


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
