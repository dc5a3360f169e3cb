import pytest

from imbal.cli.main import main
from imbal.cli.options import Parser, add_config_arguments, config_overrides
from imbal.engine.config import ConfigError, load_config


def test_defaults_are_the_study():
    cfg = load_config()
    assert (cfg.lr, cfg.batch_size, cfg.betas, cfg.schedule) == (1e-3, 50, [0.9, 0.999], "cosine")


def test_yaml_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("loss: ce+mcc\nepochs: 7\ndataset: {kind: synthetic, spatial_dims: 3}\n")
    # the command line's own path: the options generated from TrainConfig
    parser = Parser()
    add_config_arguments(parser, "config")
    args = parser.parse_args(["--epochs", "3", "--batch-size=20", "--augment", "false", "--quiet"])
    cfg = load_config(f, config_overrides(args))
    assert cfg.loss == "ce+mcc" and cfg.epochs == 3 and cfg.batch_size == 20
    assert cfg.augment is False and cfg.quiet is True
    assert cfg.dataset == {"kind": "synthetic", "spatial_dims": 3}
    cfg = load_config(None, {"dataset": "{kind: npz, path: x.npz}", "lr": "1e-4"})
    assert cfg.dataset == {"kind": "npz", "path": "x.npz"} and cfg.lr == 1e-4


BAD_CONFIGS = [
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
    (
        {"sampler": "weights", "loss": "mcc"},
        r"sampler 'weights' weights per-sample loss terms \(ce, focal, la-ce\); 'mcc' has none",
    ),
    ({"select_metric": "loss"}, "select_metric must be one of"),
    ({"widen_factor": "0"}, r"widen_factor must be >= 1/64 \(at least one channel\), got 0.0"),
    ({"betas": "[0.9]"}, r"betas must be two numbers in \[0, 1\), got \[0.9\]"),
    ({"betas": "0.9"}, r"betas expects list\[float\], got 0.9"),
    ({"early_stopping": "-1"}, "early_stopping must be >= 0, got -1"),
    ({"lr": "inf"}, "lr must be a finite number > 0, got inf"),
    ({"lr": ".inf"}, "lr must be a finite number > 0, got inf"),
    ({"loss": "0*ce"}, r"loss '0\*ce' has no term with a coefficient > 0: it would train nothing"),
    ({"loss": "ce+ce"}, "names a term twice"),
    ({"f1_average": "micro"}, "f1_average must be one of macro, positive, got 'micro'"),
    ({"positive_class": "-1"}, "positive_class must be a class index >= 0 or null, got -1"),
    ({"positive_class": "one"}, r"positive_class expects int\|null, got 'one'"),
    ({"metric_memory": "-2"}, "metric_memory must be >= 0, got -2"),
    ({"dataset": "{kind: npz, path: [x"}, "dataset '{kind: npz, path: \\[x' is not a valid YAML mapping"),
    ({"norm": "layer"}, "norm must be one of batch, group, got 'layer'"),
    (
        {"cv_folds": "2"},
        r"cv_folds must be 0 \(off\) or >= 3 \(a test, a validation and a training fold\), got 2",
    ),
    ({"cv_folds": "5", "cv_fold": "5"}, r"cv_fold must lie in \[0, cv_folds=5\), got 5"),
    ({"cv_folds": "5", "train_subset": "100"}, "train_subset and cv_folds cannot be combined"),
    ({"cv_over": "val,test"}, "cv_over must be distinct names of train, val, test including train, got"),
    ({"cv_over": "[1]"}, r"cv_over expects list\[str\], got \[1\]"),
]


def test_cv_over_reads_a_comma_list():
    assert load_config(None, {"cv_folds": "4", "cv_over": "train, val"}).cv_over == ["train", "val"]


@pytest.mark.parametrize(("overrides", "message"), BAD_CONFIGS)
def test_bad_config_is_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(None, overrides)
    assert "\n" not in str(exc.value)  # the CLI prints it as one line


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


def test_new_keys_and_null():
    cfg = load_config(None, {"positive_class": "null", "f1_average": "positive", "metric_memory": "4"})
    assert cfg.positive_class is None and cfg.f1_average == "positive" and cfg.metric_memory == 4
    assert load_config(None, {"positive_class": "0"}).positive_class == 0


def test_train_help_lists_every_key(capsys):
    from imbal.engine.config import FIELDS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for name in FIELDS:
        assert f"--{name.replace('_', '-')}" in out, name
    assert "(default: 50)" in out and "soft-count memory" in out
    with pytest.raises(SystemExit):
        main(["grid", "--help"])
    out = capsys.readouterr().out
    for name in set(FIELDS) - {"out", "quiet"}:  # the grid sets each cell's folder itself
        assert f"--{name.replace('_', '-')}" in out, name


def test_cli_unknown_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--epoch", "3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["imbal: error: unrecognized arguments: --epoch 3"]


def test_accelerator_cuda_without_gpu_is_a_user_error(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["train", "--accelerator", "cuda", "--out", str(tmp_path / "r")]) == 2
    assert "sees no CUDA device; use --accelerator cpu or auto" in capsys.readouterr().err
