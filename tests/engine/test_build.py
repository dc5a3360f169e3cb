"""Builders: the binary soft F1's positive class defaults to the training minority; checks at build time."""

import pytest

from imbal.data import synthetic
from imbal.engine.build import loss_for
from imbal.engine.config import ConfigError, load_config
from imbal.losses import SoftF1Loss


def f1_term(loss):
    return next(t for t in loss.terms if isinstance(t, SoftF1Loss))


@pytest.mark.parametrize(("ratios", "minority"), [((0.2, 0.8), 0), ((0.8, 0.2), 1)])
def test_positive_class_defaults_to_the_training_minority(ratios, minority):
    data = synthetic(n=200, size=8, class_ratios=ratios).train
    cfg = load_config(None, {"loss": "ce+f1", "f1_average": "positive"})
    term = f1_term(loss_for(cfg, data))
    assert term.average == "positive" and term.positive_class == minority == data.minority_class
    cfg = load_config(None, {"loss": "ce+f1", "f1_average": "positive", "positive_class": "1"})
    assert f1_term(loss_for(cfg, data)).positive_class == 1


def test_loss_settings_reach_the_terms():
    data = synthetic(n=200, size=8, class_ratios=(0.5, 0.3, 0.2)).train
    cfg = load_config(
        None, {"loss": "focal+la-ce+mcc", "focal_gamma": "1.5", "la_tau": "0.5", "metric_memory": "3"}
    )
    focal, la, mcc = loss_for(cfg, data).terms
    assert focal.gamma == 1.5 and la.tau == 0.5 and mcc.memory == 3 and mcc.memory_counts.shape == (3, 4, 3)


def test_binary_only_settings_refused_on_multiclass_data():
    data = synthetic(n=200, size=8, class_ratios=(0.5, 0.3, 0.2)).train
    cfg = load_config(None, {"loss": "ce+f1", "f1_average": "positive"})
    with pytest.raises(
        ConfigError,
        match=r"loss 'ce\+f1' on synthetic2d: f1_average 'positive' needs a binary data set, got 3 classes",
    ):
        loss_for(cfg, data)
    data2 = synthetic(n=200, size=8, class_ratios=(0.7, 0.3)).train
    cfg = load_config(None, {"loss": "ce+f1", "f1_average": "positive", "positive_class": "2"})
    with pytest.raises(
        ConfigError, match=r"on synthetic2d: positive_class=2 is not a class of the data \(classes 0..1\)"
    ):
        loss_for(cfg, data2)


# TensorBoard (`logger: tensorboard`)


def test_tensorboard_missing_is_one_clear_line(monkeypatch, tmp_path, capsys):
    import importlib.util

    from imbal.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("tensorboard") else real(name, *a),
    )
    with pytest.raises(
        ConfigError,
        match=r"logger tensorboard needs the tensorboard package: pip install 'imbal\[tensorboard\]'",
    ):
        load_config(None, {"logger": "tensorboard"})
    assert main(["train", "--logger", "tensorboard", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip().endswith("pip install 'imbal[tensorboard]'")
    with pytest.raises(ConfigError, match=r"logger must be one of none, tensorboard, got 'wandb'"):
        load_config(None, {"logger": "wandb"})


def test_grid_folder_is_one_tensorboard_view_with_runs_named_by_cell(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    from imbal.engine.config import config_differences
    from imbal.study.run.grid import run_grid
    from imbal.study.run.spec import StudySpec

    train = {"dataset": {"kind": "synthetic", "n": 200, "size": 8}, "widen_factor": 0.125, "epochs": 2}
    spec = StudySpec(
        entries={"syn": {**train, "logger": "tensorboard", "quiet": True}},
        grid=[{"samplers": ["uniform"], "losses": ["ce", "ce+mcc"]}],
        seeds=[0],
    )
    status = run_grid(spec, tmp_path / "study", log=lambda *_: None, live_every=0)
    assert len(status["done"]) == 2 and not status["failed"]
    views = EventMultiplexer().AddRunsFromDirectory(str(tmp_path / "study"))
    views.Reload()
    runs = sorted(views.Runs())
    assert runs == sorted(f"runs/syn/uniform/{loss}/seed0/tensorboard" for loss in ("ce", "ce+mcc"))
    for run in runs:
        tags = views.Runs()[run]["scalars"]
        assert {"train/loss", "train/lr", "val/balanced_accuracy", "val/ece", "val/brier"} <= set(tags)
        assert [e.step for e in views.Scalars(run, "val/balanced_accuracy")] == [1, 2]
        history = (tmp_path / "study" / run).parent / "history.csv"
        assert views.Scalars(run, "train/loss")[-1].value == pytest.approx(
            float(history.read_text().splitlines()[-1].split(",")[1]), rel=1e-6
        )
    # the logger changes what a run shows, not what it computes: a resume may switch it
    assert config_differences({"logger": "none"}, {"logger": "tensorboard"}) == []
