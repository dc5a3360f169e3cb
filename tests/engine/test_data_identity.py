"""A run is tied to the contents of its data: recorded, checked at start, on resume and while streaming."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import imbal.engine.trainer as trainer
from imbal.cli.main import main
from imbal.data import load_dataset
from imbal.data.prepare import prepare_cache
from imbal.data.stream import place_splits
from imbal.engine.config import load_config
from imbal.engine.trainer import train
from imbal.errors import DataError, RunFolderError

SPEC = {
    "kind": "synthetic",
    "spatial_dims": 2,
    "n": 300,
    "size": 12,
    "class_ratios": [0.6, 0.25, 0.15],
    "seed": 1,
}
OTHER = {**SPEC, "seed": 2}


def cfg(tmp_path, dataset, name="run", **kw):
    base = dict(
        dataset=dataset, widen_factor=0.125, epochs=2, batch_size=50, out=str(tmp_path / name), quiet=True
    )
    return load_config(None, {**base, **kw})


def _kill_in_epoch_two(monkeypatch):
    real = trainer.validate_and_record

    def killed(run, epoch, *a):
        if epoch == 1:
            raise KeyboardInterrupt  # after epoch 1's last.ckpt
        return real(run, epoch, *a)

    monkeypatch.setattr(trainer, "validate_and_record", killed)


def test_the_data_checksum_is_recorded(tmp_path):
    cache, _ = prepare_cache(SPEC, tmp_path / "cache")
    out = train(cfg(tmp_path, str(cache), epochs=1))
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["dataset"]["data_checksum"]) == 16
    other = train(cfg(tmp_path, SPEC, "memory", epochs=1))
    assert len(json.loads((other / "metrics.json").read_text())["dataset"]["data_checksum"]) == 16


def test_resume_on_a_rebuilt_cache_is_refused(tmp_path, monkeypatch, capsys):
    cache, _ = prepare_cache(SPEC, tmp_path / "cache")
    c = cfg(tmp_path, str(cache))
    _kill_in_epoch_two(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(c)
    monkeypatch.undo()
    prepare_cache(OTHER, cache, force=True)  # other data under the same path
    with pytest.raises(
        RunFolderError, match=r"last.ckpt was trained on data with checksum \w+; .* now holds data"
    ):
        train(c, resume=True)
    assert main(["train", "--resume", c.out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Resuming would mix two data sets" in err and err.count("\n") == 1
    prepare_cache(SPEC, cache, force=True)  # the original data back: the resume goes on
    assert (train(c, resume=True) / "metrics.json").is_file()


def test_a_cache_rebuilt_while_the_run_streams_stops_it(tmp_path, monkeypatch):
    cache, _ = prepare_cache(SPEC, tmp_path / "cache")
    monkeypatch.setattr(trainer, "place_splits", lambda s, device, budget: place_splits(s, device, 0))
    real = trainer.validate_and_record

    def rebuild_after_epoch_one(run, epoch, *a):
        row = real(run, epoch, *a)
        if epoch == 0:
            prepare_cache(OTHER, cache, force=True)
        return row

    monkeypatch.setattr(trainer, "validate_and_record", rebuild_after_epoch_one)
    with pytest.raises(DataError, match=r"train_images.npy changed while it was being read"):
        train(cfg(tmp_path, str(cache)))
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_flipped_image_byte_is_refused_when_a_run_starts(tmp_path):
    cache, _ = prepare_cache(SPEC, tmp_path / "cache")
    images = cache / "train_images.npy"
    data = bytearray(images.read_bytes())
    data[-1] ^= 0xFF
    images.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train_images.npy fails its sha256 checksum"):
        train(cfg(tmp_path, str(cache), epochs=1))
    assert not (tmp_path / "run").exists()


def test_resume_with_another_architectures_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    c = cfg(tmp_path, SPEC)
    _kill_in_epoch_two(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(c)
    with pytest.raises(KeyboardInterrupt):
        train(cfg(tmp_path, SPEC, "wide", widen_factor=0.25))
    monkeypatch.undo()
    shutil.copy(tmp_path / "wide" / "last.ckpt", tmp_path / "run" / "last.ckpt")
    assert main(["train", "--resume", c.out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "last.ckpt does not fit this run's model and optimiser" in err and err.count("\n") == 1


def _npz(path, val_labels):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, labels in (("train", [0, 1] * 40), ("val", val_labels), ("test", [0, 1] * 10)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (len(labels), 8, 8), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.array(labels)[:, None]
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("metric", ["balanced_accuracy", "auroc"])
def test_a_one_class_validation_split_is_refused_before_training(tmp_path, metric):
    data = _npz(tmp_path / "oneval.npz", [0] * 10)
    with pytest.raises(
        DataError, match=r"validation split of oneval holds one class only \('0', 10 samples\)"
    ):
        train(cfg(tmp_path, data, select_metric=metric, epochs=1))
    assert not (tmp_path / "run").exists()


def test_a_batch_larger_than_the_training_set_is_refused(tmp_path, capsys):
    data = json.dumps(SPEC)
    assert (
        main(["train", "--dataset", data, "--batch-size", "5000", "--out", str(tmp_path / "r"), "--quiet"])
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "batch_size=5000 is larger than the 210 training samples of synthetic2d; use --batch-size 210" in err
    )
    assert not (tmp_path / "r").exists()


def test_history_counts_the_samples_trained_on(tmp_path):
    # undersampling: 3 classes x the minority count samples, fewer than one batch of 100
    pool = 3 * int(load_dataset(SPEC).train.class_counts.min())
    assert pool < 100
    out = train(cfg(tmp_path, SPEC, sampler="undersample", batch_size=100, epochs=1))
    assert pd.read_csv(out / "history.csv").train_samples.tolist() == [pool]
