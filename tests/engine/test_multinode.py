"""Two simulated nodes on localhost (torchrun --nnodes 2, one gloo process each) equal one process."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from imbal.engine.config import load_config
from imbal.engine.trainer import train
from tests.ddp_utils import free_port

SYN = {"kind": "synthetic", "spatial_dims": 2, "n": 400, "size": 16, "class_ratios": [0.6, 0.25, 0.15]}
COMMON = dict(
    dataset=SYN,
    widen_factor=0.125,
    epochs=2,
    loss="ce+mcc",
    sampler="oversample",
    norm="group",
    augment=False,
)


@pytest.mark.slow
def test_two_nodes_equal_one_process(tmp_path):
    single = train(load_config(None, dict(COMMON, quiet=True, out=str(tmp_path / "single"))))
    port = free_port()
    args = ["--accelerator", "cpu", "--devices", "1", "--num-nodes", "2", "--strategy", "ddp", "--quiet"]
    args += ["--out", str(tmp_path / "nodes")]
    for k, v in COMMON.items():
        args += [
            f"--{k}",
            json.dumps(v) if isinstance(v, dict) else str(v).lower() if isinstance(v, bool) else str(v),
        ]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--node-rank",
                str(rank),
                "--master-addr",
                "127.0.0.1",
                "--master-port",
                str(port),
                "-m",
                "imbal.cli.main",
                "train",
                *args,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=600) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], [o[1][-2000:] for o in outputs]
    m1 = json.loads((single / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "nodes" / "metrics.json").read_text())
    assert m2["timing"]["world_size"] == 2
    assert m1["test"]["confusion_matrix"] == m2["test"]["confusion_matrix"]
    h1, h2 = pd.read_csv(single / "history.csv"), pd.read_csv(tmp_path / "nodes" / "history.csv")
    assert (h1.train_loss - h2.train_loss).abs().max() < 1e-4
    assert (h1.val_balanced_accuracy - h2.val_balanced_accuracy).abs().max() < 1e-6
