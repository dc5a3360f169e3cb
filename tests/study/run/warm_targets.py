"""Cell targets for tests of the warm grid: they run in forked children, so they live in an importable
module (pickled by reference) that imports little beyond what the warm server already holds."""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import signal
import sys
from pathlib import Path

import numpy as np
import torch

import imbal.metrics
from imbal.engine.config import TrainConfig
from imbal.errors import ConfigError
from imbal.study.run.grid import train_cell

HEAVY = (
    "torch",
    "numpy",
    "monai",
    "torchmetrics",
    "lightning_fabric",
    "scipy",
    "pandas",
    "sklearn",
    "matplotlib",
)


def python_rng() -> str:
    return hashlib.sha256(str(random.getstate()[1][:8]).encode()).hexdigest()


def mutate_rngs() -> None:
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    torch.rand(3), np.random.rand(3), random.random()


def process_state() -> dict:
    """What a cell could change in its process and a later cell would see."""
    return {
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
        "default_dtype": str(torch.get_default_dtype()),
        "torch_rng": hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest(),
        "numpy_rng": hashlib.sha256(str(np.random.get_state()[1][:8]).encode()).hexdigest(),
        "python_rng": python_rng(),
        "leaked_env": os.environ.get("IMBAL_TEST_LEAK"),
        "grid_env": os.environ.get("IMBAL_TEST_GRID_ENV"),
        "leaked_metric": "leaked" in imbal.metrics.METRICS,
        "cuda_initialized": torch.cuda.is_initialized(),
    }


def observe_train_then_mutate(cfg: TrainConfig, resume: bool) -> None:
    """Record the process state at the cell's start, train, then change every piece of that state."""
    before = set(sys.modules)
    state = process_state()
    train_cell(cfg, resume)
    state["new_packages"] = sorted({m for m in set(sys.modules) - before if "." not in m} & set(HEAVY))
    Path(cfg.out, "observed.json").write_text(json.dumps(state))
    torch.set_num_threads(state["threads"] + 3)
    torch.set_default_dtype(torch.float64)
    mutate_rngs()
    os.environ["IMBAL_TEST_LEAK"] = "1"
    imbal.metrics.METRICS["leaked"] = imbal.metrics.METRICS["accuracy"]


def crash_by_seed(cfg: TrainConfig, resume: bool) -> None:
    """Seed 0 raises, 1 segfaults, 2 runs out of memory, 3 is killed as by the OOM killer; others train."""
    if cfg.seed == 0:
        raise ValueError("boom in the cell")
    if cfg.seed == 1:
        os.kill(os.getpid(), signal.SIGSEGV)
    if cfg.seed == 2:
        size = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
        resource.setrlimit(
            resource.RLIMIT_AS, (size + (256 << 20), resource.getrlimit(resource.RLIMIT_AS)[1])
        )
        bytearray(1 << 31)
    if cfg.seed == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    train_cell(cfg, resume)


def raise_config_error(message: str) -> None:
    raise ConfigError(message)
