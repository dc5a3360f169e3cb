"""Cells in warm processes: isolated from each other, crashes recorded, results equal to a run alone."""

import dataclasses
import json
import os
import socket
import sys

import pytest
import yaml

from imbal.engine import run_dir as rd
from imbal.engine.trainer import train
from imbal.study.run import grid
from imbal.study.run.grid import cell_config, run_grid
from imbal.study.run.spec import load_study
from imbal.study.run.warm import CellFailed, run_in_child
from tests.study.run import warm_targets

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 200, "size": 12, "class_ratios": [0.7, 0.3]}
TRAIN = {"dataset": SYN, "widen_factor": 0.125, "epochs": 1}


def study(tmp_path, seeds, **train):
    path = tmp_path / "study.yaml"
    grid_ = [{"samplers": ["uniform"], "losses": ["ce"]}]
    path.write_text(yaml.safe_dump({"train": {**TRAIN, **train}, "grid": grid_, "seeds": list(seeds)}))
    return load_study(path)


def cell(root, seed):
    return root / "runs" / "synthetic" / "uniform" / "ce" / f"seed{seed}"


def test_a_cell_changing_its_process_does_not_reach_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr(grid, "train_cell", warm_targets.observe_train_then_mutate)
    # set after the warm server may have started: cells still see the grid's environment of now
    monkeypatch.setenv("IMBAL_TEST_GRID_ENV", tmp_path.name)
    status = run_grid(study(tmp_path, seeds=(0, 1, 2)), tmp_path / "s", log=lambda *_: None)
    assert len(status["done"]) == 3, status
    seen = [json.loads((cell(tmp_path / "s", s) / "observed.json").read_text()) for s in (0, 1, 2)]
    pids = {state.pop("pid") for state in seen}
    assert len(pids) == 3 and os.getpid() not in pids  # a fresh process per cell, never the grid
    # CPython reseeds `random` in every forked child; it must not be the state a cell left behind
    python_rngs = {state.pop("python_rng") for state in seen}
    warm_targets.mutate_rngs()
    assert warm_targets.python_rng() not in python_rngs
    # each cell changed threads, dtype, RNGs, environment and a module table after training
    assert seen[1] == seen[0] and seen[2] == seen[0], seen
    assert seen[0]["default_dtype"] == "torch.float32" and seen[0]["leaked_env"] is None
    assert seen[0]["grid_env"] == tmp_path.name and not seen[0]["leaked_metric"]
    assert not seen[0]["cuda_initialized"]  # the warm server never initialises CUDA
    # the server imported the whole training stack: a cell imports no heavy package itself
    assert seen[0]["new_packages"] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the out-of-memory cell reads /proc")
def test_crashed_cells_are_recorded_and_the_grid_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(grid, "train_cell", warm_targets.crash_by_seed)
    status = run_grid(study(tmp_path, seeds=range(5)), tmp_path / "s", jobs=2, log=lambda *_: None)
    assert status["done"] == ["synthetic/uniform/ce/seed4"]
    assert sorted(status["failed"]) == [f"synthetic/uniform/ce/seed{s}" for s in range(4)]
    errors = [(cell(tmp_path / "s", s) / "error.txt").read_text() for s in range(4)]
    assert errors[0].startswith("ValueError: boom in the cell\n\nTraceback") and "crash_by_seed" in errors[0]
    assert errors[1].startswith("CellDied: the cell's process was killed by SIGSEGV (exit code -11)")
    assert "Fatal Python error: Segmentation fault" in errors[1]  # the crash's Python stack, captured
    assert errors[2].startswith("MemoryError") and "bytearray" in errors[2]
    assert errors[3].startswith("CellDied: the cell's process was killed by SIGKILL (exit code -9)")
    assert "out-of-memory killer" in errors[3]
    assert not list((tmp_path / "s").rglob(rd.LOCK))


def test_cell_metrics_equal_a_run_alone(tmp_path):
    spec = study(tmp_path, seeds=(3,), epochs=2)
    assert run_grid(spec, tmp_path / "s", log=lambda *_: None)["done"]
    (c,) = spec.cells()
    cfg, _ = cell_config(spec, c, tmp_path / "s", threads=0)  # the cell's own, with its recorded threads
    alone = train(dataclasses.replace(cfg, out=str(tmp_path / "alone")))
    in_grid = rd.read_json(cell(tmp_path / "s", 3) / rd.METRICS_FILE)
    by_itself = rd.read_json(alone / rd.METRICS_FILE)
    in_grid.pop("timing"), by_itself.pop("timing")
    assert in_grid == by_itself


def test_run_in_child_reports_a_user_error_without_traceback():
    with pytest.raises(CellFailed, match="^ConfigError: bad value$") as exc:
        run_in_child(warm_targets.raise_config_error, "bad value")
    assert exc.value.text == "ConfigError: bad value\n"  # one line, as the CLI prints it
    run_in_child(socket.gethostname)  # returns: nothing raised
