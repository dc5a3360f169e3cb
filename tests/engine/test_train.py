"""End-to-end training: run folders, determinism, resume after a kill, evaluate, non-finite stop."""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from imbal.cli.main import main
from imbal.engine.config import load_config
from imbal.engine.evaluate import load_model
from imbal.engine.trainer import NonFiniteLossError, train

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 500, "size": 16, "class_ratios": [0.6, 0.25, 0.15]}
FILES = [
    "config.yaml",
    "history.csv",
    "metrics.json",
    "predictions_test.csv",
    "predictions_val.csv",
    "best.ckpt",
    "outputs_test.npz",
    "outputs_val.npz",
    "train.log",
]


def tiny(tmp_path, name="run", **kw):
    base = dict(
        dataset=SYN, widen_factor=0.125, epochs=2, batch_size=50, out=str(tmp_path / name), quiet=True
    )
    base.update(kw)
    return load_config(None, base)


def strip_timing(path):
    m = json.loads(Path(path).read_text())
    m.pop("timing")
    return m


def check_run_folder(out: Path, n_test: int, num_classes: int):
    for f in FILES:
        assert (out / f).is_file(), f
    m = json.loads((out / "metrics.json").read_text())
    assert 1 <= m["best_epoch"] <= m["epochs_run"]
    for split in ("val", "test"):
        for k in ("balanced_accuracy", "accuracy", "macro_f1", "mcc", "auroc"):
            assert k in m[split]
        assert len(m[split]["f1_per_class"]) == num_classes
    pred = pd.read_csv(out / "predictions_test.csv")
    assert len(pred) == n_test
    assert {"label", "prediction"} <= set(pred.columns)
    probs = pred[[f"prob_{k}" for k in range(num_classes)]].to_numpy()
    assert abs(probs.sum(1) - 1).max() < 1e-4
    # the file's predictions reproduce the stored confusion matrix
    cm = pd.crosstab(pred.label, pred.prediction).reindex(
        index=range(num_classes), columns=range(num_classes), fill_value=0
    )
    assert cm.to_numpy().tolist() == m["test"]["confusion_matrix"]
    outputs = __import__("numpy").load(out / "outputs_test.npz")
    assert outputs["features"].shape[0] == n_test and (outputs["labels"] == pred.label.to_numpy()).all()
    # the stored logits give the stored probabilities
    probs_from_logits = torch.from_numpy(outputs["logits"]).softmax(-1).numpy()
    assert abs(probs_from_logits - probs).max() < 1e-5
    assert not (out / "last.ckpt").exists()  # removed once finished (keep_last: false)
    hist = pd.read_csv(out / "history.csv")
    assert len(hist) == m["epochs_run"]
    return m


@pytest.mark.slow
def test_retinamnist_two_epochs(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    cfg = tiny(
        tmp_path, "retina", dataset="retinamnist", widen_factor=0.25, loss="ce+mcc", sampler="oversample"
    )
    m = check_run_folder(train(cfg), 400, 5)
    assert m["dataset"]["synthetic"] is False and m["dataset"]["train_counts"] == [486, 128, 206, 194, 66]


@pytest.mark.slow
def test_vesselmnist3d_two_epochs(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    cfg = tiny(
        tmp_path,
        "vessel",
        dataset="vesselmnist3d",
        loss="ce+f1",
        sampler="weights",
        train_subset=400,
        crop_size=24,
    )
    m = check_run_folder(train(cfg), 382, 2)
    assert m["dataset"]["n"]["train"] == 400


def test_same_seed_same_metrics(tmp_path):
    a = train(tiny(tmp_path, "a", loss="ce+mcc", sampler="oversample"))
    b = train(tiny(tmp_path, "b", loss="ce+mcc", sampler="oversample"))
    assert strip_timing(a / "metrics.json") == strip_timing(b / "metrics.json")
    c = train(tiny(tmp_path, "c", loss="ce+mcc", sampler="oversample", seed=1))
    assert strip_timing(a / "metrics.json") != strip_timing(c / "metrics.json")


def test_checkpoint_rebuilds_model_and_evaluate(tmp_path, capsys):
    out = train(tiny(tmp_path))
    model, _ = load_model(out / "best.ckpt")
    assert model(torch.rand(2, 1, 16, 16)).shape == (2, 3)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["evaluate", str(out), "--split", "val"]) == 0
    stored = json.loads((out / "metrics.json").read_text())["val"]
    ev = out / "evaluations" / "synthetic_val"
    again = json.loads((ev / "evaluation.json").read_text())["metrics"]
    assert not (ev / "metrics.json").exists()  # that name marks a finished run
    assert again["balanced_accuracy"] == pytest.approx(stored["balanced_accuracy"])
    assert again["confusion_matrix"] == stored["confusion_matrix"]
    assert (ev / "predictions_val.csv").is_file() and (ev / "outputs_val.npz").is_file()
    # the run's own training outputs are untouched
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert "balanced accuracy" in capsys.readouterr().out


def test_non_finite_loss_stops_and_keeps_checkpoint(tmp_path, monkeypatch):
    import imbal.engine.trainer as trainer

    real = trainer.loss_for
    calls = {"n": 0}

    def poisoned(*a, **k):
        loss = real(*a, **k)

        class Poison(torch.nn.Module):
            def forward(self, logits, target):
                calls["n"] += 1
                value = loss(logits, target)
                return value * float("nan") if calls["n"] > 10 else value  # epoch 1 has 7 steps

        return Poison()

    monkeypatch.setattr(trainer, "loss_for", poisoned)
    cfg = tiny(tmp_path, epochs=3)
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss \(nan\) in epoch 2; stopped"):
        train(cfg)
    out = Path(cfg.out)
    assert (out / "best.ckpt").is_file() and not (out / "metrics.json").exists()
    assert torch.load(out / "last.ckpt", weights_only=True)["state"]["epoch"] == 1


# The run to resume is killed at a point fixed in advance: partway through epoch 2, when last.ckpt
# holds epoch 1 and epoch 2 has taken optimiser steps that the resume must not keep. Killing from
# outside when a poll sees last.ckpt is a race a fast machine loses (the run finishes between two
# polls); here the process kills itself (SIGKILL: nothing flushed, nothing cleaned up, as kill -9)
# from inside the training loop, so it cannot finish first, however fast or slow the machine.
KILL_IN_EPOCH_2 = """
import os, signal, sys
import imbal.engine.trainer as trainer
from imbal.cli.main import main

train_epoch = trainer.train_epoch

def dying_epoch(run, epoch, step_fn):
    steps = 0

    def step(x):
        nonlocal steps
        steps += 1
        if steps == 3:  # epoch 2 of 6, after two of its 7 steps
            os.kill(os.getpid(), signal.SIGKILL)
        return step_fn(x)

    return train_epoch(run, epoch, step if epoch == 1 else step_fn)

trainer.train_epoch = dying_epoch
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    # CPU results depend on the thread count: both runs use the same one
    args = [
        "--dataset",
        json.dumps(SYN),
        "--widen-factor",
        "0.25",
        "--epochs",
        "6",
        "--quiet",
        "--threads",
        "2",
    ]
    ref = train(
        load_config(
            None,
            dict(dataset=SYN, widen_factor=0.25, epochs=6, quiet=True, threads=2, out=str(tmp_path / "ref")),
        )
    )
    run = tmp_path / "killed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_EPOCH_2, "train", *args, "--out", str(run)], env=env, timeout=240
    )
    # a return code 0 would mean the wrapper never ran (the trainer's internals moved): nothing was tested
    assert killed.returncode == -signal.SIGKILL, f"the run was not killed (exit code {killed.returncode})"
    assert not (run / "metrics.json").exists()
    assert torch.load(run / "last.ckpt", weights_only=True)["state"]["epoch"] == 1
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert strip_timing(run / "metrics.json") == strip_timing(ref / "metrics.json")
    assert len(pd.read_csv(run / "history.csv")) == 6


def test_evaluate_on_another_dataset(tmp_path, capsys):
    out = train(tiny(tmp_path))
    test_predictions = (out / "predictions_test.csv").read_bytes()
    other = json.dumps({**SYN, "seed": 5, "n": 300, "label": "other"})
    assert main(["evaluate", str(out), "--dataset", other]) == 0
    ev = out / "evaluations" / "other_test"
    result = json.loads((ev / "evaluation.json").read_text())
    assert result["metrics"]["support"] and sum(result["metrics"]["support"]) == 60
    assert (ev / "predictions_test.csv").is_file()
    # the training outputs the report reads stay the run's own
    assert (out / "predictions_test.csv").read_bytes() == test_predictions
    assert main(["evaluate", str(out), "--dataset", other, "--out", str(tmp_path / "ev")]) == 0
    assert (tmp_path / "ev" / "evaluation.json").is_file() and not (tmp_path / "ev" / "metrics.json").exists()
    wrong = json.dumps({"kind": "synthetic", "spatial_dims": 3, "n": 100, "size": 8})
    assert main(["evaluate", str(out), "--dataset", wrong]) == 2
    assert "the model expects spatial_dims=2" in capsys.readouterr().err


def test_checkpoint_every_writes_less_and_changes_nothing(tmp_path, monkeypatch):
    import imbal.engine.trainer as trainer

    writes = []
    real = trainer.rd.save_torch
    monkeypatch.setattr(
        trainer.rd, "save_torch", lambda path, obj: (writes.append(Path(path).name), real(path, obj))
    )
    every1 = train(tiny(tmp_path, "every1", epochs=5, loss="ce+mcc"))
    n1 = len(writes)
    writes.clear()
    every3 = train(tiny(tmp_path, "every3", epochs=5, loss="ce+mcc", checkpoint_every=3, keep_last=True))
    assert writes.count("last.ckpt") == 2  # after epochs 3 and 5
    assert len(writes) < n1 and writes.count("best.ckpt") <= 2
    assert strip_timing(every1 / "metrics.json") == strip_timing(every3 / "metrics.json")
    assert len(pd.read_csv(every3 / "history.csv")) == 5
    assert torch.load(every3 / "last.ckpt", weights_only=True)["state"]["epoch"] == 5


def test_history_records_the_learning_rate_each_epoch_trained_at(tmp_path):
    """Cosine annealing over E epochs trains epoch e (from 0) at lr (1 + cos(pi e / E)) / 2: epoch 1 at lr."""
    out = train(tiny(tmp_path, epochs=4, lr=1e-3))
    history = pd.read_csv(out / "history.csv")
    expected = [1e-3 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert history.lr.tolist() == pytest.approx(expected, rel=1e-12)
    assert history.lr.iloc[0] == 1e-3 and history.lr.iloc[-1] > 0
