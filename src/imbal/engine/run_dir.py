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
from imbal.naming import SPLITS

CONFIG = "config.yaml"  # the resolved TrainConfig
HISTORY = "history.csv"  # one row per epoch, rewritten every epoch
METRICS_FILE = "metrics.json"  # written last: its presence means "finished"
# the outputs_<split>.npz array of a cross-validation fold run: each image's position in the pool
POOL_INDEX = "pool_index"
BEST = "best.ckpt"  # best weights + model arguments (rebuilds the model alone)
LAST = "last.ckpt"  # weights, optimiser, scheduler, loss state, history (resume)
LOG = "train.log"  # a line per epoch, for following a run while it trains
POSTHOC = "posthoc.json"  # tau and temperature fit on validation at the end (what `imbal predict --posthoc` applies)
ERROR = "error.txt"  # a failed run's exception and traceback
LOCK = "run.lock"  # held by the process training a study cell
LOCK_TEMP_PREFIX = ".lock."  # a lock being written (see imbal.study.run.grid.acquire)
TENSORBOARD = "tensorboard"  # event files of `logger: tensorboard` (one TensorBoard run per run folder)
EVALUATIONS = "evaluations"  # `imbal evaluate` outputs, one folder per data set and split
# an evaluation's result; not METRICS_FILE, whose presence marks a folder as a finished run
EVALUATION_FILE = "evaluation.json"
RUNS = "runs"  # a study's cells live under <study>/runs
RACE_FILE = "race.json"  # an `imbal recommend` race's settings (imbal.study.race.runner)
PLAN_FILE = "plan.json"  # a study's analysis plan (imbal.study.analysis.plan), fixed before its first cell


def predictions_file(split: str) -> str:
    """Per-sample labels, probabilities and predictions of a split (CSV, for people)."""
    return f"predictions_{split}.csv"


def outputs_file(split: str) -> str:
    """Per-sample index, label, logits and penultimate features of a split (npz, for programs)."""
    return f"outputs_{split}.npz"


# every name imbal writes into a run folder: --overwrite deletes these and nothing else
RUN_ENTRIES = (CONFIG, HISTORY, METRICS_FILE, BEST, LAST, LOG, POSTHOC, ERROR, LOCK, TENSORBOARD, EVALUATIONS)
# what marks a folder as a run (a config.yaml alone does not: a user's own folder may hold one)
RUN_MARKERS = (METRICS_FILE, BEST, LAST, HISTORY)
# ``imbal embed RUN`` without --out writes embedding_<method>.png beside the run's files
_EMBEDDING = re.compile(r"embedding_[a-z]+\.png")


def is_run_entry(name: str) -> bool:
    """Whether a run folder's entry of this name is one imbal writes (or an atomic write's leftover)."""
    return (
        name in RUN_ENTRIES
        or name in {f(s) for s in SPLITS for f in (predictions_file, outputs_file)}
        or name.startswith(LOCK_TEMP_PREFIX)
        or (name.startswith(".") and name.endswith(".tmp"))
        or _EMBEDDING.fullmatch(name) is not None
    )


def looks_like_run(folder: Path) -> bool:
    """A folder holding a run's own results or checkpoints (not merely a config.yaml)."""
    return any((Path(folder) / f).exists() for f in RUN_MARKERS)


def foreign_entries(folder: Path) -> list[Path]:
    """Entries of ``folder`` that imbal did not write there: --overwrite never deletes a folder holding one."""
    return sorted(p for p in Path(folder).iterdir() if not is_run_entry(p.name))


def links_leaving(folder: Path) -> list[Path]:
    """Entries of ``folder`` that are links to somewhere outside it: writing through them would change
    files that are not the run's (a linked train.log, a linked evaluations/)."""
    inside = Path(os.path.realpath(folder))
    out = []
    for p in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
        if p.is_symlink() and not Path(os.path.realpath(p)).is_relative_to(inside):
            out.append(p)
    return out


def check_no_links_out(folder: Path) -> None:
    """One line naming the first link of a run folder that leads out of it (see :func:`links_leaving`)."""
    links = links_leaving(folder)
    if links:
        raise RunFolderError(
            f"{links[0]} is a link to {os.path.realpath(links[0])}, outside the run folder; imbal writes only "
            "inside a run's folder: replace the link by a file or folder of the run's own"
        )


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


def is_fold_run(config: dict) -> bool:
    """A run's stored config trained one cross-validation fold (its cv_folds is set)."""
    return int(config.get("cv_folds") or 0) > 0


def fold_of(config: dict) -> int | None:
    """The fold a run's stored config tested (None: not a cross-validation fold run)."""
    return int(config.get("cv_fold") or 0) if is_fold_run(config) else None


def cell_dir(root: Path, dataset: str, sampler: str, loss: str, seed: int, fold: int | None = None) -> Path:
    """A study cell's folder; a cross-validation cell's last part names its fold too (``seed0-fold3``)."""
    last = f"seed{seed}" if fold is None else f"seed{seed}-fold{fold}"
    return Path(root) / RUNS / safe_name(dataset) / safe_name(sampler) / safe_name(loss) / last


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


# the keys every checkpoint of its kind holds (a file without them is not one imbal wrote)
CHECKPOINT_KEYS = {
    BEST: ("model", "model_config", "config"),
    LAST: ("model", "optimizer", "scheduler", "loss", "state"),
}


def load_torch(path: Path) -> Any:
    """A checkpoint imbal wrote (``best.ckpt``, ``last.ckpt``: the keys of :data:`CHECKPOINT_KEYS`).

    Loaded with ``weights_only``: a file holding other objects is refused, never unpickled.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist")
    try:
        # our own files hold tensors, numbers, strings and dicts only
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch names what it refused to build: a GLOBAL (a class or function, code) vs a garbled byte
        if "GLOBAL" not in str(exc):
            raise RunFolderError(
                f"{path} is not a readable checkpoint (empty, truncated or corrupt: not a pickle of tensors)"
            ) from None
        raise RunFolderError(
            f"{path} holds objects other than tensors, numbers and strings: it is not a checkpoint imbal "
            "wrote, and loading it could run its author's code; do not trust it"
        ) from None
    # torch's legacy reader raises KeyError/IndexError/TypeError on a file that is not a checkpoint at all
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        UnicodeDecodeError,
    ) as exc:
        raise RunFolderError(
            f"{path} is not a readable checkpoint (empty, truncated or corrupt: {_first_line(exc)})"
        ) from None
    missing = [k for k in CHECKPOINT_KEYS.get(path.name, ()) if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise RunFolderError(f"{path} is not a checkpoint imbal wrote (it has no {', '.join(missing)})")
    return ckpt


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds oddly
    atomic_write_bytes(path, buf.getvalue())


def read_outputs(run: Path, split: str, features: bool = False) -> dict[str, np.ndarray]:
    """A finished run's ``outputs_<split>.npz``: labels ``(N,)``, logits ``(N, C)`` (and ``features``, and a
    cross-validation fold's ``pool_index``), checked.

    The one reader of these files (the report, the race, the calibration); a damaged file is one
    line naming it.
    """
    import numpy as np

    path = Path(run) / outputs_file(split)
    if not path.is_file():
        raise MissingFileError(
            f"{path} is missing: a study needs every run's {split} outputs (train the run again, or remove "
            "the run folder)"
        )
    keys = ("labels", "logits", "features") if features else ("labels", "logits")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: np.asarray(z[k]) for k in keys}
            if POOL_INDEX in z.files:  # a cross-validation fold's positions in the pool
                out[POOL_INDEX] = np.asarray(z[POOL_INDEX])
    except Exception as exc:  # numpy and zipfile raise many types for a damaged file
        raise RunFolderError(
            f"{path} is not readable ({type(exc).__name__}: {_first_line(exc)}); the file is damaged: train the "
            "run again, or remove the run folder"
        ) from None
    labels, logits = out["labels"], out["logits"]
    pool = out.get(POOL_INDEX)
    if pool is not None and (
        pool.shape != labels.shape or (pool.size and pool.min() < 0) or len(np.unique(pool)) != len(pool)
    ):
        raise RunFolderError(
            f"{path} holds pool_index {pool.shape} for {labels.shape} labels, not distinct positions >= 0; the file is "
            "damaged: train the run again, or remove the run folder"
        )
    if labels.ndim != 1 or logits.ndim != 2 or len(labels) != len(logits) or not np.isfinite(logits).all():
        raise RunFolderError(
            f"{path} holds labels {labels.shape} and logits {logits.shape}, not (N,) and finite (N, C); the file is "
            "damaged: train the run again, or remove the run folder"
        )
    return out


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
