"""`imbal evaluate` scores a run's own checkpoint only: one from another run is refused with one line."""

import json
import shutil

import pytest

from imbal.cli.main import main
from imbal.engine.config import load_config
from imbal.engine.trainer import train

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 300, "size": 12, "class_ratios": [0.6, 0.25, 0.15]}
TWO = {"kind": "synthetic", "spatial_dims": 2, "n": 300, "size": 12, "class_ratios": [0.7, 0.3]}


def run(tmp_path, name, **kw):
    base = dict(dataset=SYN, widen_factor=0.125, epochs=1, out=str(tmp_path / name), quiet=True)
    return train(load_config(None, {**base, **kw}))


@pytest.mark.parametrize(
    "other, message",
    [
        (
            dict(widen_factor=0.25),
            r"it was trained with other settings than its config.yaml \(widen_factor 0.125 vs 0.25\)",
        ),
        (dict(dataset=TWO), r"it was trained with other settings than its config.yaml \(dataset"),
    ],
    ids=["architecture", "data set"],
)
def test_a_checkpoint_of_another_run_is_refused(tmp_path, capsys, other, message):
    mine = run(tmp_path, "mine")
    theirs = run(tmp_path, "theirs", **other)
    shutil.copy(theirs / "best.ckpt", mine / "best.ckpt")
    assert main(["evaluate", str(mine)]) == 2
    err = capsys.readouterr().err
    assert f"{mine / 'best.ckpt'} does not belong to {mine}" in err and err.count("\n") == 1
    import re

    assert re.search(message, err)
    assert not (mine / "evaluations").exists()


def test_a_checkpoint_of_other_data_with_the_same_config_is_refused(tmp_path, capsys):
    # same settings, but metrics.json of this run records other data (e.g. its cache was rebuilt)
    mine = run(tmp_path, "mine")
    m = json.loads((mine / "metrics.json").read_text())
    m["dataset"]["data_checksum"] = "0" * 16
    (mine / "metrics.json").write_text(json.dumps(m))
    assert main(["evaluate", str(mine)]) == 2
    assert "it was trained on other data" in capsys.readouterr().err
