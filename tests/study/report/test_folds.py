"""A cross-validated study end to end: fold runs trained by the grid, pooled by the report, averaged by predict."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import balanced_accuracy_score, f1_score

from imbal.cli.main import main
from imbal.data import load_dataset
from imbal.engine import run_dir as rd
from imbal.errors import RunFolderError
from imbal.study.report.build import make_report
from imbal.study.report.collect import collect_study, load_outputs
from imbal.study.report.folds import pool_folds
from imbal.study.run.grid import run_grid
from imbal.study.run.spec import load_study

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 150, "size": 12, "class_ratios": [0.7, 0.3]}
CONFIGS = ["ce", "ce+f1"]


@pytest.fixture(scope="module")
def cv_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv")
    path = root / "study.yaml"
    data = {
        "train": {"dataset": SYN, "widen_factor": 0.125, "epochs": 1, "batch_size": 32},
        "grid": [{"samplers": ["uniform"], "losses": CONFIGS}],
        "cv": {"folds": 3},
    }
    path.write_text(yaml.safe_dump(data))
    status = run_grid(load_study(path), root / "s", log=lambda *_: None)
    assert sum(len(v) for v in status.values()) == 6
    return root / "s"


def _fold_predictions(root, loss, split):
    frames = [
        pd.read_csv(run / rd.predictions_file(split))
        for run in sorted((root / rd.RUNS / "synthetic" / "uniform" / loss).glob("seed0-fold*"))
    ]
    return pd.concat(frames).sort_values("pool_index")


def test_every_pooled_image_is_tested_and_validated_once(cv_study):
    n = sum(len(load_dataset(SYN)[s]) for s in ("train", "val", "test"))
    for loss in CONFIGS:
        for split in ("test", "val"):
            frame = _fold_predictions(cv_study, loss, split)
            assert frame.pool_index.tolist() == list(range(n))


def test_pooled_metrics_are_the_metrics_of_all_folds_predictions(cv_study):
    study = collect_study(cv_study)
    (data,) = study.datasets
    assert data.outputs.folds is not None and data.outputs.folds.k == 3
    assert len(data.runs) == 2 and data.facts.sizes["test"] == len(data.outputs.test.labels)
    for row in data.runs.itertuples():
        frame = _fold_predictions(cv_study, row.loss, "test")
        assert row.balanced_accuracy == pytest.approx(balanced_accuracy_score(frame.label, frame.prediction))
        assert row.macro_f1 == pytest.approx(f1_score(frame.label, frame.prediction, average="macro"))
        assert row.n_test == len(frame)
    # the pooled test outputs are the fold runs' own, image by image
    i = data.outputs.row[(("uniform", "ce+f1"), 0)]
    assert np.array_equal(data.outputs.test.preds[i], _fold_predictions(cv_study, "ce+f1", "test").prediction)


def test_the_report_says_how_the_folds_were_made(cv_study):
    report = make_report(cv_study)
    text = report.markdown.read_text()
    assert "3-fold cross-validation x 1 repeat(s)" in text
    assert "image-level folds: this data set names no patient (group) ids" in text
    assert "cross-fitted over folds" in text


def _predict(source, npz, out, *extra) -> int:
    return main(["predict", str(source), str(npz), "--out", str(out), *extra])


def test_predict_averages_the_fold_models(cv_study, tmp_path, capsys):
    npz = tmp_path / "new.npz"
    np.savez(npz, images=load_dataset(SYN).test.images[:9, 0].numpy())
    assert _predict(cv_study, npz, tmp_path / "e.csv", "--config", "uniform/ce+f1") == 0
    assert "the mean of 3 fold models of uniform/ce+f1" in capsys.readouterr().out
    folds = []
    for run in sorted((cv_study / rd.RUNS / "synthetic" / "uniform" / "ce+f1").glob("seed0-fold*")):
        assert _predict(run, npz, tmp_path / f"{run.name}.csv") == 0
        folds.append(pd.read_csv(tmp_path / f"{run.name}.csv"))
    ensemble = pd.read_csv(tmp_path / "e.csv")
    cols = [c for c in ensemble.columns if c.startswith("prob_")]
    mean = np.mean([f[cols].to_numpy() for f in folds], axis=0)
    assert np.abs(ensemble[cols].to_numpy() - mean).max() < 1e-6
    names = np.array([c.removeprefix("prob_") for c in cols])
    assert ensemble.prediction.astype(str).tolist() == names[mean.argmax(1)].tolist()
    assert _predict(cv_study, npz, tmp_path / "x.csv", "--config", "uniform/mcc") == 2
    assert "holds no finished fold runs of uniform/mcc" in capsys.readouterr().err
    assert _predict(cv_study, npz, tmp_path / "y.csv", "--config", "uniform/ce", "--posthoc") == 2
    assert "a fold ensemble has one per fold" in capsys.readouterr().err


def test_a_configuration_missing_a_fold_is_left_out_by_name(cv_study, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(cv_study, copy)
    (copy / rd.RUNS / "synthetic" / "uniform" / "ce+f1" / "seed0-fold1" / rd.METRICS_FILE).unlink()
    (data,) = collect_study(copy).datasets
    assert data.runs.loss.tolist() == ["ce"]
    assert data.runs.attrs["left_out_folds"] == ["uniform/ce+f1 repeat 0 (2 of 3 folds)"]


def test_folds_of_two_partitions_are_refused(cv_study, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(cv_study, copy)
    rows = collect_study(copy).runs
    rows = rows.reset_index(drop=True)

    def shuffled(run, split):
        out = load_outputs(run, split)
        if run.parent.name == "ce+f1" and split == "test":
            out["pool_index"] = np.roll(out["pool_index"], 1)
        return out

    with pytest.raises(
        RunFolderError, match="labels disagree with the pool|differs from another configuration's fold"
    ):
        pool_folds(rows, shuffled, 2, ("uniform", "ce"))


def test_dry_run_counts_folds_and_estimates_from_finished_cells(cv_study, capsys):
    config = str(cv_study.parent / "study.yaml")
    assert main(["grid", "--config", config, "--out", str(cv_study), "--dry-run"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("6 cells (1 data set(s) x 2 configurations x 1 repeat(s) x 3 folds); 0 to train")
    assert main(["grid", "--config", config, "--out", str(cv_study.parent / "new"), "--dry-run"]) == 0
    assert "6 to train, no estimate until one has finished here" in capsys.readouterr().out
