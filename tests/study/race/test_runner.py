"""`imbal recommend` on the grid's machinery: a real tiny race, resume, shards, and bad input."""

import json
import os
import subprocess
import sys

import pytest

from imbal.cli.main import main
from imbal.engine import run_dir as rd
from tests.study.race.tiny_race import finished, study
from tests.study.run.test_grid_interrupt import wait_for

# the module-scoped `race` fixture (a tiny race trained once) lives in conftest.py


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


# ---------------------------------------------------------------- a scheduler's jobs (issue 29)


def test_a_race_on_local_jobs_decides_as_in_process_and_a_killed_orchestrator_submits_nothing_twice(
    race, tmp_path, monkeypatch
):
    from imbal.study.run import cluster

    tmp, _ = race
    # the in-process race trained each cell with all cores (one job): the jobs get the same threads
    path = study(tmp_path / "study.yaml", cluster={"cpus_per_cell": os.cpu_count(), "array_parallelism": 3})
    root = tmp_path / "r"
    cmd = [sys.executable, "-m", "imbal.cli.main", "recommend", "--config", str(path), "--out", str(root)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "IMBAL_CLUSTER_POLL": "0.2"}
    orchestrator = subprocess.Popen(
        [*cmd, "--quiet", "--executor", "local"], env=env, stdout=subprocess.DEVNULL
    )
    try:  # killed while its first jobs run: they go on, and the rerun adopts them
        assert wait_for((root / cluster.FOLDER / cluster.JOBS_FILE).is_file, 120)
    finally:
        orchestrator.kill()
        orchestrator.wait()
    first = cluster.read_record(root)
    monkeypatch.setattr(cluster, "POLL_SECONDS", 0.2)
    assert (
        main(["recommend", "--config", str(path), "--out", str(root), "--quiet", "--executor", "local"]) == 0
    )
    record = cluster.read_record(root)
    assert set(first) <= set(record) and {r["submissions"] for r in record.values()} == {"1"}
    assert len(record) == len(finished(root))  # a job per trained cell, each submitted once
    assert finished(root) == finished(tmp / "r")  # the same rounds and drops
    chosen = next(
        x for x in (tmp / "r" / "report.md").read_text().splitlines() if x.startswith("The race chose")
    )
    assert chosen in (root / "report.md").read_text()
