"""A grid cell's user error is one line in error.txt (in process or not); a study's threads are honoured."""

import yaml

from imbal.study.run.grid import cell_config, run_grid
from imbal.study.run.spec import load_study

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 200, "size": 12, "class_ratios": [0.7, 0.3]}
GRID = [{"samplers": ["uniform"], "losses": ["ce"]}]


def study(tmp_path, train):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"train": train, "grid": GRID, "seeds": [0]}))
    return load_study(path)


def test_a_cells_user_error_is_one_line_in_a_child_process(tmp_path):
    missing = str(tmp_path / "missing.npz")
    spec = study(tmp_path, {"dataset": {"kind": "npz", "path": missing, "label": "x"}, "epochs": 1})
    # two cells so that --jobs 2 trains in child processes
    spec.seeds = [0, 1]
    status = run_grid(spec, tmp_path / "s", jobs=2, log=lambda *_: None)
    assert sorted(status["failed"]) == ["x/uniform/ce/seed0", "x/uniform/ce/seed1"]
    for seed in (0, 1):
        text = (tmp_path / "s" / "runs" / "x" / "uniform" / "ce" / f"seed{seed}" / "error.txt").read_text()
        assert text == f"MissingFileError: no npz file at {missing}\n"


def test_a_cells_user_error_is_one_line_in_process(tmp_path):
    missing = str(tmp_path / "missing.npz")
    spec = study(tmp_path, {"dataset": {"kind": "npz", "path": missing, "label": "x"}, "epochs": 1})
    status = run_grid(spec, tmp_path / "s", jobs=1, log=lambda *_: None)
    assert status["failed"] == ["x/uniform/ce/seed0"]
    text = (tmp_path / "s" / "runs" / "x" / "uniform" / "ce" / "seed0" / "error.txt").read_text()
    assert text == f"MissingFileError: no npz file at {missing}\n"


def test_an_explicit_study_threads_wins_over_cores_per_job(tmp_path):
    spec = study(tmp_path, {"dataset": SYN, "threads": 1})
    cfg, _ = cell_config(spec, spec.cells()[0], tmp_path / "s", threads=4)
    assert cfg.threads == 1
    spec = study(tmp_path, {"dataset": SYN})
    cfg, _ = cell_config(spec, spec.cells()[0], tmp_path / "s", threads=4)
    assert cfg.threads == 4  # no explicit threads: cores / jobs
