"""The run folder: every file name of a run and of a study cell, and atomic writes.

This module is the one home of run-file names and of the study's cell layout
``<study>/runs/<dataset>/<sampler>/<loss>/seed<n>``; everything else asks it. Files are written
atomically (a temporary file in the same folder, then a rename) with the user's umask, so a
killed run never leaves half a file and a lab's group can read a shared study folder.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from imbal.errors import ConfigError, MissingFileError, RunFolderError

CONFIG = "config.yaml"  # the resolved TrainConfig
HISTORY = "history.csv"  # one row per epoch, rewritten every epoch
METRICS_FILE = "metrics.json"  # written last: its presence means "finished"
BEST = "best.ckpt"  # best weights + model arguments (rebuilds the model alone)
LAST = "last.ckpt"  # weights, optimiser, scheduler, loss state, history (resume)
LOG = "train.log"  # a line per epoch, for following a run while it trains
POSTHOC = "posthoc.json"  # tau and temperature fit on validation at the end (what `imbal predict --posthoc` applies)
ERROR = "error.txt"  # a failed run's exception and traceback
LOCK = "run.lock"  # held by the process training a study cell
LOCK_TEMP_PREFIX = ".lock."  # a lock being written (see imbal.study.grid.acquire)
TENSORBOARD = "tensorboard"  # event files of `logger: tensorboard` (one TensorBoard run per run folder)
EVALUATIONS = "evaluations"  # `imbal evaluate` outputs, one folder per data set and split
# an evaluation's result; not METRICS_FILE, whose presence marks a folder as a finished run
EVALUATION_FILE = "evaluation.json"
RUNS = "runs"  # a study's cells live under <study>/runs
RACE_FILE = "race.json"  # an `imbal recommend` race's settings (imbal.study.recommend)
PLAN_FILE = "plan.json"  # a study's analysis plan (imbal.study.plan), fixed before its first cell


def predictions_file(split: str) -> str:
    """Per-sample labels, probabilities and predictions of a split (CSV, for people)."""
    return f"predictions_{split}.csv"


def outputs_file(split: str) -> str:
    """Per-sample index, label, logits and penultimate features of a split (npz, for programs)."""
    return f"outputs_{split}.npz"


def evaluation_dir(run: Path, data_label: str, split: str) -> Path:
    """Where ``imbal evaluate`` writes: never the run's own training outputs."""
    return Path(run) / EVALUATIONS / f"{safe_name(data_label)}_{split}"


def run_contents(run: Path) -> list[Path]:
    """What a folder holds apart from the grid's lock and a previous failure's error.txt."""
    return [
        p
        for p in Path(run).iterdir()
        if p.name not in (LOCK, ERROR) and not p.name.startswith(LOCK_TEMP_PREFIX)
    ]


def safe_name(text: str) -> str:
    """A path component made of ``[A-Za-z0-9+._-]`` (others become ``x``)."""
    return re.sub(r"[^A-Za-z0-9+._-]", "x", text)


def dataset_label(dataset: Any) -> str:
    """The label of a data-set spec used in cell paths and tables (a mapping's ``label`` wins)."""
    if isinstance(dataset, str):
        stem = Path(dataset).stem if dataset.endswith(".npz") or "/" in dataset else dataset.lower()
        return safe_name(stem)
    if isinstance(dataset, dict):
        return safe_name(str(dataset.get("label") or dataset.get("name") or dataset.get("kind", "data")))
    raise ConfigError(f"dataset must be a name, a path or a mapping, got {dataset!r}")


def cell_dir(root: Path, dataset: str, sampler: str, loss: str, seed: int) -> Path:
    return Path(root) / RUNS / safe_name(dataset) / safe_name(sampler) / safe_name(loss) / f"seed{seed}"


def cell_label(run: Path) -> str:
    """The data-set label of a cell folder made by :func:`cell_dir` (its first component)."""
    return Path(run).parts[-4]


def cell_dirs(root: Path) -> list[Path]:
    """Every cell folder of a study (finished or not), the inverse of :func:`cell_dir`."""
    return sorted(p for p in (Path(root) / RUNS).glob("*/*/*/seed*") if p.is_dir())


def _umask() -> int:
    # read without os.umask(), which sets it and would race with the grid's worker threads
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; run files get the permissions any other file of the user gets
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; readers treat null as "undefined"
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingFileError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFolderError(
            f"{path} is not valid JSON ({exc}); the file is damaged, delete its run"
        ) from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


# torch and numpy are imported by the functions that use them: the CLI and the grid process need only
# this module's names, and importing torch costs them seconds


def save_torch(path: Path, obj: Any) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path: Path) -> Any:
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist")
    try:
        # our own files hold tensors, numbers, strings and dicts only
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFolderError(
            f"{path} is not a readable checkpoint (empty, truncated or corrupt: {reason})"
        ) from None


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds oddly
    atomic_write_bytes(path, buf.getvalue())


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def is_finished(run_dir: Path) -> bool:
    """A run is finished once its metrics.json (written last, atomically) exists."""
    return (Path(run_dir) / METRICS_FILE).is_file()


def append_line(path: Path, line: str) -> None:
    """Append one line (the training log); a partial last line after a kill is harmless there."""
    with open(path, "a") as f:
        f.write(line.rstrip("\n") + "\n")


def epochs_done(run: Path) -> int:
    """Epochs a run has completed, from its history file (rewritten atomically every epoch): 0 before the first."""
    path = Path(run) / HISTORY
    try:
        with open(path) as f:
            return max(0, sum(1 for line in f if line.strip()) - 1)  # the header is not an epoch
    except OSError:
        return 0
