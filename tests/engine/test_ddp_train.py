"""`--devices 2 --strategy ddp` on CPU (gloo) gives the single-process result."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from imbal.engine.config import load_config
from imbal.engine.trainer import train

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 400, "size": 16, "class_ratios": [0.6, 0.25, 0.15]}


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["oversample", "weights"])
def test_ddp_equals_single_process(tmp_path, sampler):
    # GroupNorm and no augmentation: PyTorch has no CPU SyncBatchNorm, and each rank draws its own
    # augmentation; everything else (sampler shards, synced metric losses, metrics) must match exactly.
    common = dict(
        dataset=SYN,
        widen_factor=0.125,
        epochs=2,
        loss="ce+mcc",
        sampler=sampler,
        norm="group",
        augment=False,
        quiet=True,
    )
    single = train(load_config(None, dict(common, out=str(tmp_path / "single"))))
    args = [
        "train",
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "--out",
        str(tmp_path / "ddp"),
    ]
    for k, v in common.items():
        args += [
            f"--{k}",
            json.dumps(v) if isinstance(v, dict) else str(v).lower() if isinstance(v, bool) else str(v),
        ]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    res = subprocess.run(
        [sys.executable, "-m", "imbal.cli.main", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    h1, h2 = pd.read_csv(single / "history.csv"), pd.read_csv(tmp_path / "ddp" / "history.csv")
    assert (h1.train_loss - h2.train_loss).abs().max() < 1e-4
    assert (h1.val_balanced_accuracy - h2.val_balanced_accuracy).abs().max() < 1e-6
    m1 = json.loads((single / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert m2["timing"]["world_size"] == 2
    assert m1["test"]["confusion_matrix"] == m2["test"]["confusion_matrix"]
    assert m1["test"]["auroc"] == pytest.approx(m2["test"]["auroc"], abs=1e-5)
    p1 = pd.read_csv(single / "predictions_test.csv")
    p2 = pd.read_csv(tmp_path / "ddp" / "predictions_test.csv")
    assert (p1["index"] == p2["index"]).all() and (
        p1.prob_0 - p2.prob_0
    ).abs().max() < 2e-3  # float summation order differs per rank
