"""What a finished run stores for calibration and post hoc: ECE/Brier (and QWK on ordinal data), posthoc.json."""

import json

import numpy as np
import pytest
import torch

from imbal.cli.main import main
from imbal.engine import run_dir as rd
from imbal.engine.config import load_config
from imbal.engine.scoring import posthoc_record
from imbal.engine.trainer import train
from imbal.errors import ConfigError
from imbal.metrics import expected_calibration_error

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 400, "size": 12, "class_ratios": [0.5, 0.3, 0.2]}


def tiny(tmp_path, name, **kw):
    base = dict(dataset=SYN, widen_factor=0.125, epochs=2, out=str(tmp_path / name), quiet=True)
    return load_config(None, {**base, **kw})


@pytest.mark.parametrize("ordinal", [False, True])
def test_finished_run_stores_calibration_kappa_and_posthoc(tmp_path, ordinal):
    out = train(tiny(tmp_path, "r", dataset={**SYN, "ordinal": ordinal}))
    m = json.loads((out / rd.METRICS_FILE).read_text())
    assert m["dataset"]["ordinal"] is ordinal
    for split in ("val", "test"):
        with np.load(out / rd.outputs_file(split)) as z:
            logits, labels = torch.from_numpy(z["logits"]), torch.from_numpy(z["labels"])
        assert m[split]["ece"] == pytest.approx(
            expected_calibration_error(logits.softmax(-1), labels), abs=1e-6
        )
        assert 0 <= m[split]["brier"] <= 2
        assert ("qwk" in m[split]) is ordinal
    header = (out / rd.HISTORY).read_text().splitlines()[0].split(",")
    assert "val_ece" in header and "val_brier" in header
    # posthoc.json is what the stored validation outputs give (so an older run can be refit the same way)
    stored = json.loads((out / rd.POSTHOC).read_text())
    with np.load(out / rd.outputs_file("val")) as z:
        again = posthoc_record(
            torch.from_numpy(z["logits"]),
            torch.from_numpy(z["labels"]),
            torch.tensor(m["dataset"]["train_counts"]),
            m["select_metric"],
        )
    assert stored == json.loads(json.dumps(again))
    assert stored["tau_metric"] == "balanced_accuracy" and 0 <= stored["tau"] <= 3
    assert stored["temperature"] > 0 and stored["validation"]["nll_scaled"] <= stored["validation"]["nll"]


def test_select_metric_must_be_higher_is_better_and_qwk_needs_ordinal_data(tmp_path, capsys):
    for metric in ("ece", "brier"):
        with pytest.raises(ConfigError, match=rf"select_metric must be one of .*qwk, got '{metric}'"):
            tiny(tmp_path, "x", select_metric=metric)
    args = ["train", "--dataset", json.dumps(SYN), "--select-metric", "qwk", "--out", str(tmp_path / "q")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "select_metric qwk needs ordered classes; synthetic2d is not marked ordinal" in err
    assert not (tmp_path / "q").exists()  # refused before the run folder is written
