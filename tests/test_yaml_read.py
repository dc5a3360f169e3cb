"""Every YAML imbal reads refuses a repeated key with both line numbers (YAML would keep the last)."""

import pytest

from imbal.cli.main import main
from imbal.engine.config import coerce, load_config
from imbal.errors import ConfigError
from imbal.study.run.spec import load_study
from imbal.yaml_read import load_yaml


def test_repeated_key_names_both_lines():
    with pytest.raises(ConfigError, match=r"x.yaml repeats the key 'loss' \(lines 1 and 3\)"):
        load_yaml("loss: ce\nepochs: 2\nloss: ce+mcc\n", "x.yaml")


def test_nested_and_merge_keys():
    with pytest.raises(ConfigError, match=r"repeats the key 'n' \(lines 2 and 3\)"):
        load_yaml("dataset:\n  n: 1\n  n: 2\n", "x")
    # a merge key's values may be overridden: that is YAML, not a repeat
    assert load_yaml("a: &a {n: 1}\nb:\n  <<: *a\n  n: 2\n", "x") == {"a": {"n": 1}, "b": {"n": 2}}
    assert load_yaml("[{n: 1}, {n: 1}]", "x") == [{"n": 1}, {"n": 1}]


def test_train_config_refuses_a_repeated_key(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("loss: ce\nepochs: 1\nloss: ce+mcc\n")
    with pytest.raises(ConfigError, match=r"c.yaml repeats the key 'loss' \(lines 1 and 3\)"):
        load_config(f)
    assert main(["train", "--config", str(f), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "repeats the key 'loss'" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_study_file_refuses_repeated_seeds(tmp_path):
    f = tmp_path / "study.yaml"
    f.write_text("seeds: 3\ntrain: {epochs: 1}\nseeds: [7]\n")
    with pytest.raises(ConfigError, match=r"study.yaml repeats the key 'seeds' \(lines 1 and 3\)"):
        load_study(f)


def test_inline_dataset_mapping_refuses_a_repeated_key():
    with pytest.raises(ConfigError, match=r"repeats the key 'n'"):
        coerce("dataset", "{kind: synthetic, n: 100, n: 200}")
