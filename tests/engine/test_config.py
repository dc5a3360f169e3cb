import pytest

from imbal.cli.main import main
from imbal.engine.config import ConfigError, load_config, parse_overrides


def test_defaults_are_the_study():
    cfg = load_config()
    assert (cfg.lr, cfg.batch_size, cfg.betas, cfg.schedule) == (1e-3, 50, [0.9, 0.999], "cosine")


def test_yaml_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("loss: ce+mcc\nepochs: 7\ndataset: {kind: synthetic, spatial_dims: 3}\n")
    cfg = load_config(
        f, parse_overrides(["--epochs", "3", "--batch-size=20", "--augment", "false", "--quiet"])
    )
    assert cfg.loss == "ce+mcc" and cfg.epochs == 3 and cfg.batch_size == 20
    assert cfg.augment is False and cfg.quiet is True
    assert cfg.dataset == {"kind": "synthetic", "spatial_dims": 3}
    cfg = load_config(None, {"dataset": "{kind: npz, path: x.npz}", "lr": "1e-4"})
    assert cfg.dataset == {"kind": "npz", "path": "x.npz"} and cfg.lr == 1e-4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epoch": "3"}, "unknown config key 'epoch' in the command line \\(did you mean epochs"),
        ({"loss": "ce+dice"}, "unknown loss term 'dice'"),
        (
            {"sampler": "smote"},
            "sampler must be one of uniform, weights, oversample, undersample, got 'smote'",
        ),
        ({"arch": "vgg"}, "arch must be one of resnet18, resnet34, resnet50, got 'vgg'"),
        ({"epochs": "two"}, "epochs expects int, got 'two'"),
        ({"epochs": "0"}, "epochs must be >= 1, got 0"),
        ({"augment": "maybe"}, "augment expects bool, got 'maybe'"),
        ({"sampler": "weights", "loss": "mcc"}, "sampler 'weights' weights per-sample losses"),
        ({"select_metric": "loss"}, "select_metric must be one of"),
    ],
)
def test_bad_config(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_cli_bad_config_exit_code_2(capsys, tmp_path):
    assert main(["train", "--loss", "ce+dice", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("imbal: error: unknown loss term")
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--dataset", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "r")]) == 2
    assert "no npz file at" in capsys.readouterr().err
    assert main(["train", "--dataset", "imagenet", "--out", str(tmp_path / "r")]) == 2
    assert "neither a MedMNIST name" in capsys.readouterr().err


def test_shipped_configs_load():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    train_configs = [c for c in configs if not c.name.startswith("study_") and c.name != "demo.yaml"]
    assert len(train_configs) >= 4
    for c in train_configs:
        load_config(c)
