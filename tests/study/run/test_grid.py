"""The grid (run/grid.py) survives kills, full disks and other processes; resumes, progress, shards of work."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from imbal.cli.main import main
from imbal.engine import run_dir as rd
from imbal.study.run.grid import acquire, cell_config, run_grid
from imbal.study.run.spec import load_study

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 200, "size": 12, "class_ratios": [0.7, 0.3]}
TRAIN = {"dataset": SYN, "widen_factor": 0.125, "epochs": 1}
GRID = [{"samplers": ["uniform"], "losses": ["ce"]}]
REPO = Path(__file__).resolve().parents[3]


def study(tmp_path, **kw):
    data = {"train": TRAIN, "grid": GRID, "seeds": [0], **kw}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cell(root, seed=0):
    return root / "runs" / "synthetic" / "uniform" / "ce" / f"seed{seed}"


def test_empty_lock_from_a_full_disk_is_stale(tmp_path):
    run = cell(tmp_path / "s")
    run.mkdir(parents=True)
    (run / "run.lock").write_text("")  # what a full disk left behind
    status = run_grid(load_study(study(tmp_path)), tmp_path / "s", log=lambda *_: None)
    assert status["done"] == ["synthetic/uniform/ce/seed0"] and not (run / "run.lock").exists()


def test_live_holder_is_busy_named_and_the_exit_code_says_so(tmp_path, capsys):
    run = cell(tmp_path / "s")
    run.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / "run.lock").write_text(f"{socket.gethostname()} {holder.pid}\n")
        code = main(["grid", "--config", str(study(tmp_path)), "--out", str(tmp_path / "s"), "--quiet"])
        out = capsys.readouterr().out
    finally:
        holder.kill()
    assert code == 1
    assert f"run.lock is held by process {holder.pid} on {socket.gethostname()}" in out
    assert "1 cell(s) were busy in another process" in out and not rd.is_finished(run)


def test_lock_is_exclusive_and_written_whole(tmp_path):
    run = tmp_path / "cell"
    assert acquire(run) is None
    host, pid = (run / "run.lock").read_text().split()
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert "held by process" in acquire(run)  # we are alive, so a second taker is refused
    assert [p.name for p in run.iterdir()] == ["run.lock"]  # no temporary file left behind


def _processes(marker: str, name: str | None = None) -> list[int]:
    """Live processes whose environment holds ``marker`` (only cells' processes: ``name="imbal-cell"``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                comm = (proc / "comm").read_text().strip()
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if marker.encode() in environ and name in (None, comm):
                pids.append(int(proc.name))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_killing_the_grid_kills_its_trainers(tmp_path):
    path = study(tmp_path, train={**TRAIN, "epochs": 200}, seeds=[0, 1])
    token = uuid.uuid4().hex  # unique: other test sessions may share this machine
    marker = f"IMBAL_TEST_MARKER={token}"
    env = dict(os.environ, IMBAL_TEST_MARKER=token)
    grid = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imbal.cli.main",
            "grid",
            "--config",
            str(path),
            "--out",
            str(tmp_path / "s"),
            "--jobs",
            "2",
            "--quiet",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    # both cells started (the rerun below expects both to hold their 200-epoch config)
    while time.time() < deadline and len(list((tmp_path / "s").glob("runs/*/*/*/seed*/train.log"))) < 2:
        time.sleep(0.2)
    assert len(_processes(marker, "imbal-cell")) == 2, "the cells' processes did not start"
    grid.send_signal(signal.SIGKILL)
    grid.wait()
    deadline = time.time() + 30
    while time.time() < deadline and _processes(marker):
        time.sleep(0.2)
    # neither a trainer nor the warm server nor multiprocessing's helper outlives the grid
    assert not _processes(marker), "processes outlived the grid"
    # a rerun takes the dead grid's locks over and resumes both cells
    status = run_grid(load_study(study(tmp_path, seeds=[0, 1])), tmp_path / "s", log=lambda *_: None)
    assert len(status["failed"]) == 2  # the cells were started with 200 epochs: other settings, refused
    assert "trained with other settings (epochs 200 -> 1)" in (cell(tmp_path / "s") / "error.txt").read_text()


def test_started_cell_keeps_its_thread_count(tmp_path):
    spec = load_study(study(tmp_path))
    (c,) = spec.cells()
    cfg, resume = cell_config(spec, c, tmp_path / "s", threads=2)
    assert cfg.threads == 2 and not resume
    run = cell(tmp_path / "s")
    run.mkdir(parents=True)
    rd.write_yaml(run / rd.CONFIG, {**cfg.to_dict(), "threads": 1})
    cfg, resume = cell_config(spec, c, tmp_path / "s", threads=2)
    assert cfg.threads == 1 and resume


def test_finished_cells_with_other_settings_are_kept_with_a_warning(tmp_path):
    run_grid(load_study(study(tmp_path)), tmp_path / "s", log=lambda *_: None)
    lines = []
    status = run_grid(
        load_study(study(tmp_path, train={**TRAIN, "lr": 0.01})), tmp_path / "s", log=lines.append
    )
    assert status["skipped"] == ["synthetic/uniform/ce/seed0"]
    assert any("1 finished cell(s) were trained with other settings (lr)" in line for line in lines)


def test_progress_is_visible(tmp_path, capsys):
    assert (
        main(
            [
                "grid",
                "--config",
                str(study(tmp_path, train={**TRAIN, "epochs": 2})),
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    log = (cell(tmp_path / "s") / "train.log").read_text().splitlines()
    assert len(log) == 2 and log[0].startswith("epoch 1/2 loss ")
    out = capsys.readouterr().out
    assert "[1/1] synthetic/uniform/ce/seed0 done in" in out and "val BA" in out


def test_full_study_holds_150_cells_on_both_sets(capsys):
    assert main(["grid", "--config", str(REPO / "configs" / "study_full.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("150 cells (2 data set(s)")
    cells = out[:-1]
    assert (
        sum(c.startswith("retinamnist/") for c in cells) == 75
        and sum(c.startswith("vesselmnist3d/") for c in cells) == 75
    )
    spec = load_study(REPO / "configs" / "study_full.yaml")
    # each data set keeps its own train config
    assert (
        spec.entries["vesselmnist3d"]["widen_factor"] == 0.25
        and spec.entries["vesselmnist3d"]["epochs"] == 60
    )
    assert spec.entries["retinamnist"]["widen_factor"] == 1.0 and spec.entries["retinamnist"]["epochs"] == 100


def test_two_grid_processes_never_train_a_cell_twice(tmp_path):
    path = study(
        tmp_path, grid=[{"samplers": ["uniform", "oversample"], "losses": ["ce", "ce+mcc"]}], seeds=[0, 1]
    )
    cmd = [
        sys.executable,
        "-m",
        "imbal.cli.main",
        "grid",
        "--config",
        str(path),
        "--out",
        str(tmp_path / "s"),
        "--quiet",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    done = [[line.split()[1] for line in out.splitlines() if " done in " in line] for out in outs]
    assert not set(done[0]) & set(done[1]), done
    assert len(done[0]) + len(done[1]) == 8
    for log in (tmp_path / "s").glob("runs/*/*/*/seed*/train.log"):
        assert len(log.read_text().splitlines()) == 1, log  # one epoch, trained once


def test_runs_on_different_test_sets_are_never_pooled(tmp_path):
    import shutil

    from imbal.study.report.build import make_report

    small = {**SYN, "n": 150}
    two = [{"samplers": ["uniform"], "losses": ["ce", "focal"]}]
    for name, data in (("big", SYN), ("small", small)):
        spec = load_study(study(tmp_path, train={**TRAIN, "dataset": data}, grid=two, seeds=[0, 1]))
        run_grid(spec, tmp_path / name, log=lambda *_: None)
    # merge the two studies into one folder, as a user copying runs together would
    for loss in ("ce", "focal"):
        merged = tmp_path / "merged" / "runs" / "synthetic" / "uniform" / loss
        merged.mkdir(parents=True)
        shutil.copytree(
            tmp_path / "big" / "runs" / "synthetic" / "uniform" / loss / "seed0", merged / "seed0"
        )
        shutil.copytree(
            tmp_path / "small" / "runs" / "synthetic" / "uniform" / loss / "seed1", merged / "seed1"
        )
    make_report(tmp_path / "merged")
    md = (tmp_path / "merged" / "report.md").read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert len(sections) == 2 and "n=40" in md and "n=30" in md  # two test sets, two sections
    assert "2 seeds" not in md and "mean ± std" not in md  # nothing averaged across them


def test_partial_metrics_json_names_the_file(tmp_path, capsys):
    run_grid(load_study(study(tmp_path)), tmp_path / "s", log=lambda *_: None)
    (cell(tmp_path / "s") / "metrics.json").write_text('{"test": {"balanced')
    assert main(["report", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "metrics.json is not valid JSON" in err and str(cell(tmp_path / "s")) in err


def test_corrupt_last_checkpoint_on_resume_is_a_user_error(tmp_path, capsys):
    run = cell(tmp_path / "s")
    run_grid(
        load_study(study(tmp_path, train={**TRAIN, "keep_last": True})), tmp_path / "s", log=lambda *_: None
    )
    (run / "metrics.json").unlink()
    (run / "last.ckpt").write_bytes(b"")
    assert main(["train", "--resume", str(run)]) == 2
    assert "last.ckpt is not a readable checkpoint" in capsys.readouterr().err


def test_live_line_shows_running_cells_and_eta(tmp_path):
    from imbal.study.run.grid import CellOutcome, CellState, Progress

    spec = load_study(study(tmp_path, seeds=[0, 1, 2]))
    cells = spec.cells()
    progress = Progress(todo=3, jobs=2, log=lambda *_: None)
    run = cell(tmp_path / "s", seed=1)
    run.mkdir(parents=True)
    # the line reads the history file, not the log's wording
    (run / "history.csv").write_text("epoch,train_loss\n1,1.3\n2,1.2\n3,1.1\n")
    (run / "train.log").write_text("a log line in any format\n")
    progress.running[cells[1].key] = (run, 18)
    assert progress.eta_minutes() is None  # nothing trained here yet: no guess
    progress.outcomes.append(CellOutcome(cells[0], CellState.DONE, seconds=60.0))
    progress.outcomes.append(
        CellOutcome(cells[2], CellState.BUSY)
    )  # trained elsewhere: not counted as work done here
    line = progress.live_line()
    assert "synthetic/uniform/ce/seed1 epoch 3/18" in line
    # 1 cell left at 60 s per trained cell, 2 jobs: 1 minute
    assert "ETA 1.0 min" in line
