"""What the warm server imports (run/preload.py): the whole training stack, no CUDA, then a frozen heap."""

import json
import os
import subprocess
import sys

# run in a fresh interpreter: this test process has imported torch and more already
PROBE = """
import gc, json, sys
import imbal.study.run.preload
import torch
print(json.dumps({
    "modules": sorted(m for m in sys.modules if m.startswith(("imbal", "torch", "monai", "torchmetrics"))),
    "cuda_initialised": torch.cuda.is_initialized(),
    "frozen": gc.get_freeze_count(),
}))
"""


def fresh_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_preload_imports_the_training_stack_without_cuda_and_freezes_it():
    done = fresh_python(PROBE)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    for module in (
        "torch",
        "monai.networks.nets",
        "torchmetrics.classification",
        "imbal.data.load",
        "imbal.engine.trainer",
        "imbal.study.run.grid",
    ):
        assert module in facts["modules"], module
    assert facts["cuda_initialised"] is False  # a fork of a server with CUDA could not use the GPU
    assert facts["frozen"] > 0  # a cell's garbage collection never touches the server's objects


def test_preload_refuses_a_server_where_an_import_initialised_cuda():
    # as if an import had initialised CUDA: the server must stop rather than fork useless cells
    code = "import torch\ntorch.cuda.is_initialized = lambda: True\nimport imbal.study.run.preload\n"
    done = fresh_python(code)
    assert done.returncode != 0
    assert "RuntimeError: an import initialised CUDA in the warm server" in done.stderr
