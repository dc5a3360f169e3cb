"""One Ctrl-C stops a grid within seconds: running cells stop resumable (never "failed"), no queued cell starts."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from imbal.engine import run_dir as rd

REPO = Path(__file__).resolve().parents[3]
SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 200, "size": 12, "class_ratios": [0.7, 0.3]}
# about 0.1 s an epoch: both running cells are mid-training when the interrupt comes
EPOCHS = 60
TRAIN = {"dataset": SYN, "widen_factor": 0.125, "epochs": EPOCHS, "batch_size": 20}


def study(tmp_path, seeds=3):
    path = tmp_path / "study.yaml"
    grid = [{"samplers": ["uniform"], "losses": ["ce"]}]
    path.write_text(yaml.safe_dump({"train": TRAIN, "grid": grid, "seeds": seeds}))
    return path


def wait_for(predicate, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def as_from_a_terminal():
    """The grid as a terminal starts it: Ctrl-C not ignored. A suite run in the background (`nohup ... &`)
    ignores SIGINT, and a child inherits that: its Ctrl-C would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def started(root):
    """Cells with a checkpoint to resume from."""
    return [run for run in rd.cell_dirs(root) if (run / rd.LAST).is_file()]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["process group", "grid only"])
def test_one_interrupt_stops_the_grid_and_the_cells_resume(tmp_path, target):
    root = tmp_path / "s"
    cmd = [sys.executable, "-m", "imbal.cli.main", "grid", "--config", str(study(tmp_path))]
    cmd += ["--out", str(root), "--jobs", "2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=as_from_a_terminal)  # fmt: skip
    try:
        # both running cells have written an epoch (a checkpoint to resume from)
        assert wait_for(lambda: len(started(root)) >= 2, 180), proc.communicate(timeout=5)
        t = time.monotonic()
        if target == "process group":  # what a terminal's Ctrl-C does
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - t
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, (out, err)
    assert stopped_in < 15, stopped_in
    assert "run the same command again to continue" in err
    assert "grid: interrupted: 2 running cell(s) stopped" in out and "nothing is marked failed" in out
    assert "leaked semaphore" not in err and "Traceback" not in err
    cells = rd.cell_dirs(root)
    assert not any((run / rd.ERROR).exists() for run in cells)
    assert not any((run / rd.LOCK).exists() for run in cells)
    assert len(started(root)) == 2 and not any(rd.is_finished(run) for run in cells)
    # no cell process outlived the grid (the grid's own: started in its session)
    assert wait_for(lambda: not _cell_processes(proc.pid), 10), _cell_processes(proc.pid)
    if target != "process group":
        return
    # a stopped cell resumes from its checkpoint (the epochs after it are trained again), then the rest
    first = started(root)[0]
    saved = torch.load(first / rd.LAST, weights_only=True)["state"]["epoch"]
    lines_before = len((first / rd.LOG).read_text().splitlines())
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert len(rd.cell_dirs(root)) == 3 and all(rd.is_finished(run) for run in rd.cell_dirs(root))
    log = (first / rd.LOG).read_text().splitlines()
    assert saved >= 1 and log[lines_before].startswith(
        f"epoch {saved + 1}/{EPOCHS}"
    )  # continued, not restarted
    assert log[-1].startswith(f"epoch {EPOCHS}/{EPOCHS}")


def _cell_processes(session: int) -> list[str]:
    """Cell processes (named imbal-cell) of the session the grid was started in."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() != "imbal-cell":
                continue
            # /proc/<pid>/stat: "pid (comm) state ppid pgrp session ..."
            fields = (comm.parent / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:
                found.append(comm.parent.name)
        except (OSError, IndexError, ValueError):
            pass
    return found


def test_a_killed_training_run_says_how_to_resume_and_leaks_nothing(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "imbal.cli.main",
        "train",
        "--dataset",
        yaml.safe_dump(SYN, default_flow_style=True),
    ]
    cmd += ["--widen-factor", "0.125", "--epochs", str(EPOCHS), "--batch-size", "20", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert wait_for(lambda: (out / rd.HISTORY).is_file(), 120)
        proc.send_signal(signal.SIGTERM)  # `kill`, or a scheduler cancelling the job
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert f"imbal: interrupted; resume with: imbal train --resume {out}" in err
    assert "leaked semaphore" not in err and not (out / rd.ERROR).exists()
