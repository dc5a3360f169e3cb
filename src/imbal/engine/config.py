"""Run configuration: a dataclass, YAML files and ``--key value`` overrides, validated in one place.

:class:`TrainConfig` is the one home of config keys: each field carries its help line, and the CLI
(``imbal train --help``, ``imbal grid --help``), the YAML loader and the resume check derive from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from imbal.errors import ConfigError
from imbal.losses import LOSS_OPTIONS, LOSS_TERMS, LossOptions, parse_loss_name
from imbal.losses.terms import loss_terms_help
from imbal.metrics import METRICS
from imbal.models import ARCHS, NORMS
from imbal.samplers import SAMPLERS
from imbal.yaml_read import load_yaml

# a best epoch is the one with the highest score: metrics where lower is better (ece, brier) cannot pick it
SELECT_METRICS = tuple(name for name, m in METRICS.items() if m.higher_is_better)
LOGGERS = ("none", "tensorboard")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
SCHEDULES = ("cosine", "none")


class KeyRole(StrEnum):
    """What a config key is to a run; every list of keys (resume checks, a race's pins, the report's
    settings, what a study pools, the CLI's groups) derives from these roles."""

    TRAINING = "training"  # changes what a run computes: resume refuses a change, a race pins it
    VARIED = "varied"  # what a study varies from cell to cell (sampler, loss, seed)
    EXECUTION = "execution"  # how it computes: CPU threads move results in the last bits only (pooled)
    RESOURCE = "resource"  # storage and memory: the same metrics either way
    PRESENTATION = "presentation"  # where results go and how progress shows


def _key(
    default: Any, help: str, role: KeyRole = KeyRole.TRAINING, ok: Any = None, expected: str = ""
) -> Any:
    """A config field: default, help line, role, and its check (``ok(value)``, else "<key> <expected>, got v").

    The check is :func:`imbal.losses.terms.option`'s style, so every key of a config is checked
    one way. Lists get a factory so instances never share them.
    """
    meta = {"help": help, "role": role, "ok": ok, "expected": expected}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _one_of(names: Any) -> tuple[Any, str]:
    return (lambda v: v in names), f"must be one of {', '.join(names)}"


def _at_least(low: int) -> tuple[Any, str]:
    return (lambda v: v >= low), f"must be >= {low}"


@dataclass
class TrainConfig(LossOptions):
    """Everything one training run depends on; stored resolved as ``config.yaml`` in the run folder.

    The loss terms' settings (focal_gamma, la_tau, ...) are inherited from
    :class:`imbal.losses.LossOptions`, their one home: a term's new setting is a config key without
    an edit here.
    """

    # data
    dataset: Any = _key(
        "retinamnist",
        "a MedMNIST name, an npz path, a prepared cache folder, or a YAML mapping with 'kind' "
        "(e.g. '{kind: synthetic, spatial_dims: 3}')",
    )
    size: int = _key(28, "image size for MedMNIST sets (28, 64, 128, 224)")
    train_subset: int = _key(
        0, "> 0: a stratified subset of this many training samples (quick runs)", ok=_at_least(0)[0],
        expected=_at_least(0)[1],
    )  # fmt: skip
    data_memory_mb: int = _key(
        0,
        "data sets whose images fit this budget (MiB) sit on the device; larger ones stream from "
        "disk. 0 = automatic (half the free device memory or RAM)",
        KeyRole.RESOURCE,
        *_at_least(0),
    )
    # model
    arch: str = _key("resnet18", f"network: {', '.join(ARCHS)}", KeyRole.TRAINING, *_one_of(ARCHS))
    small_input: bool = _key(True, "3x3 stride-1 stem without max-pool (for 28-64 px inputs)")
    widen_factor: float = _key(
        1.0,
        "channel width multiplier of the ResNet (1.0 = 64-512 channels)",
        KeyRole.TRAINING,
        # the narrowest stage has int(64 * widen_factor) channels
        lambda v: math.isfinite(v) and int(64 * v) >= 1,
        "must be >= 1/64 (at least one channel)",
    )
    norm: str = _key("batch", f"normalisation layers: {', '.join(NORMS)}", KeyRole.TRAINING, *_one_of(NORMS))
    # objective
    loss: str = _key(
        "ce",
        f"a '+'-sum of loss terms with optional coefficients, e.g. ce+mcc or ce+0.5*f1. Terms: {loss_terms_help()}",
        KeyRole.VARIED,
    )
    sampler: str = _key(
        "uniform",
        "; ".join(f"{s.name}: {s.help}" for s in SAMPLERS.values()),
        KeyRole.VARIED,
        *_one_of(SAMPLERS),
    )
    # optimisation (the study: Adam(0.9, 0.999), lr 1e-3, batch 50, cosine, no warm-up)
    epochs: int = _key(100, "training epochs", KeyRole.TRAINING, *_at_least(1))
    batch_size: int = _key(
        50, "global batch size (split over devices under DDP)", KeyRole.TRAINING, *_at_least(1)
    )
    lr: float = _key(
        1e-3,
        "Adam learning rate",
        KeyRole.TRAINING,
        lambda v: math.isfinite(v) and v > 0,
        "must be a finite number > 0",
    )
    weight_decay: float = _key(
        0.0,
        "Adam weight decay",
        KeyRole.TRAINING,
        lambda v: math.isfinite(v) and v >= 0,
        "must be a finite number >= 0",
    )
    betas: list[float] = _key(
        [0.9, 0.999],
        "Adam betas, two numbers in [0, 1)",
        KeyRole.TRAINING,
        lambda v: len(v) == 2 and all(0 <= b < 1 for b in v),
        "must be two numbers in [0, 1)",
    )
    schedule: str = _key(
        "cosine", f"learning-rate schedule: {', '.join(SCHEDULES)}", KeyRole.TRAINING, *_one_of(SCHEDULES)
    )
    augment: bool = _key(True, "the study's augmentation (gamma, contrast or blur, flips)")
    crop_size: int = _key(
        0,
        "> 0: random crop of this size in training, centre crop in evaluation",
        KeyRole.TRAINING,
        *_at_least(0),
    )
    seed: int = _key(0, "seed of weights, batches and augmentation", KeyRole.VARIED)
    # cross-validation (imbal.data.folds; docs/method.md, "Cross-validated studies")
    cv_folds: int = _key(
        0,
        "> 0: pool the cv_over splits and train fold cv_fold of a k-fold partition (its next fold "
        "validates, the rest train); 0: the data set's own splits",
        KeyRole.TRAINING,
        lambda v: v == 0 or v >= 3,
        "must be 0 (off) or >= 3 (a test, a validation and a training fold)",
    )
    cv_fold: int = _key(0, "the test fold, 0..cv_folds-1", KeyRole.VARIED, *_at_least(0))
    cv_repeat: int = _key(
        0, "which partition (its seed): repeats are fresh partitions", KeyRole.VARIED, *_at_least(0)
    )
    cv_over: list[str] = _key(
        ["train", "val", "test"],
        "the splits cross-validation pools (train among them)",
        KeyRole.TRAINING,
        lambda v: (
            isinstance(v, list)
            and "train" in v
            and set(v) <= {"train", "val", "test"}
            and len(set(v)) == len(v)
        ),
        "must be distinct names of train, val, test including train",
    )
    # selection and checkpoints
    select_metric: str = _key(
        "balanced_accuracy",
        f"validation metric that picks the best epoch: {', '.join(SELECT_METRICS)} (qwk: ordinal data only)",
        KeyRole.TRAINING,
        *_one_of(SELECT_METRICS),
    )
    early_stopping: int = _key(
        0,
        "stop after this many epochs without a better validation score (0 = off)",
        KeyRole.TRAINING,
        *_at_least(0),
    )
    checkpoint_every: int = _key(
        1, "write best/last checkpoints every N epochs (and at the end)", KeyRole.RESOURCE, *_at_least(1)
    )
    keep_last: bool = _key(
        False, "keep last.ckpt (weights + optimiser state) after the run finished", KeyRole.RESOURCE
    )
    # hardware
    accelerator: str = _key("auto", "cpu, cuda or auto")
    devices: int = _key(1, "devices per node", KeyRole.TRAINING, *_at_least(1))
    num_nodes: int = _key(
        1, "nodes (torchrun / SLURM set the rest of the cluster environment)", KeyRole.TRAINING, *_at_least(1)
    )
    strategy: str = _key("auto", "Fabric strategy (auto: ddp when devices * num_nodes > 1)")
    precision: str = _key(
        "auto",
        f"{', '.join(PRECISIONS)} (auto: bf16-mixed on CUDA, 32-true on CPU)",
        KeyRole.TRAINING,
        *_one_of(PRECISIONS),
    )
    compile: bool = _key(False, "torch.compile the training step")
    eval_batch_size: int = _key(500, "batch size of evaluation", KeyRole.RESOURCE, *_at_least(1))
    threads: int = _key(
        0,
        "CPU threads of this run (0 = torch's default, recorded in config.yaml so a resume uses the same)",
        KeyRole.EXECUTION,
        *_at_least(0),
    )
    # output
    out: str = _key("runs/run", "run folder", KeyRole.PRESENTATION)
    quiet: bool = _key(False, "no progress bar; one result line", KeyRole.PRESENTATION)
    logger: str = _key(
        "none",
        "training curves per epoch (loss, learning rate, validation metrics): none, or tensorboard (event "
        "files in <out>/tensorboard; `tensorboard --logdir` a grid folder shows every cell; needs "
        "pip install 'imbal[tensorboard]')",
        KeyRole.PRESENTATION,
        *_one_of(LOGGERS),
    )

    def validate(self) -> TrainConfig:
        """Every key's own check (its field's ``ok``, in field order), then the checks across keys."""
        for name, f in FIELDS.items():
            ok = f.metadata.get("ok")
            value = getattr(self, name)
            if ok is not None and not ok(value):
                raise ConfigError(f"{name} {f.metadata['expected']}, got {_shown(value)}")
        try:
            terms = parse_loss_name(self.loss)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        check(
            self.logger != "tensorboard" or tensorboard_installed(),
            "logger tensorboard needs the tensorboard package: pip install 'imbal[tensorboard]'",
        )
        check(
            not self.cv_folds or self.cv_fold < self.cv_folds,
            f"cv_fold must lie in [0, cv_folds={self.cv_folds}), got {self.cv_fold}",
        )
        check(
            not (self.cv_folds and self.train_subset),
            "train_subset and cv_folds cannot be combined (a fold's training part is fixed by the partition)",
        )
        if SAMPLERS[self.sampler].class_weights:
            check(
                any(LOSS_TERMS[t].per_sample for _, t in terms),
                f"sampler {self.sampler!r} weights per-sample loss terms "
                f"({', '.join(t.name for t in LOSS_TERMS.values() if t.per_sample)}); "
                f"{self.loss!r} has none",
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def tensorboard_installed() -> bool:
    """Fabric's TensorBoard logger writes through tensorboard (or tensorboardX)."""
    return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


def check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _shown(value: Any) -> str:
    # strings quoted (an empty or odd name stays visible), numbers and lists as they are
    return repr(value) if isinstance(value, str) else str(value)


# in the order of the class, with the inherited loss settings after the loss and sampler (help, messages)
_OWN = [f for f in dataclasses.fields(TrainConfig) if f.name not in LOSS_OPTIONS]
_AT = [f.name for f in _OWN].index("sampler") + 1
FIELDS = {f.name: f for f in [*_OWN[:_AT], *LOSS_OPTIONS.values(), *_OWN[_AT:]]}
TYPES = get_type_hints(TrainConfig)


def role_of(key: str) -> KeyRole:
    """A key's role; the loss terms' settings (imbal.losses.LossOptions) change what a run computes."""
    return FIELDS[key].metadata.get("role", KeyRole.TRAINING)


def keys_of(*roles: KeyRole) -> tuple[str, ...]:
    """The config keys of these roles, in field order."""
    return tuple(k for k in FIELDS if role_of(k) in roles)


# how a run is shown or where it writes
PRESENTATION_KEYS = keys_of(KeyRole.PRESENTATION)
# what a run costs in storage and memory: checkpoints, evaluation batches, data kept on the device
# (streaming and in-memory training give the same metrics: tests/engine/test_streaming_train.py)
RESOURCE_KEYS = keys_of(KeyRole.RESOURCE)
# keys that do not change what a run computes: a resume may change them, metrics.json leaves them
# out of the run's settings, and a study pools runs that differ in them
NEUTRAL_KEYS = (*PRESENTATION_KEYS, *RESOURCE_KEYS)
# what a report lists under "What was run": every setting that shapes the numbers but the data (its
# own row), what the study compares (sampler, loss, seed) and the loss terms' settings (shown for
# the losses that read them); CPU threads included, since they move CPU results
REPORTED_KEYS = tuple(
    k for k in keys_of(KeyRole.TRAINING, KeyRole.EXECUTION) if k != "dataset" and k not in LOSS_OPTIONS
)


def type_name(key: str) -> str:
    kind = TYPES[key]
    if key == "dataset":
        return "name|path|mapping"
    if kind == (int | None):
        return "int|null"
    return {int: "int", float: "float", str: "str", bool: "bool"}.get(kind, str(kind).replace("typing.", ""))


def coerce(key: str, value: Any) -> Any:
    """Turn a YAML or command-line value into the field's type, with a one-line error otherwise."""
    kind = TYPES[key]
    if key == "dataset":
        if isinstance(value, str) and value.strip().startswith("{"):
            try:
                value = load_yaml(value, f"dataset {value!r}")
            except yaml.YAMLError as exc:
                problem = getattr(exc, "problem", None) or "not valid YAML"
                raise ConfigError(f"dataset {value!r} is not a valid YAML mapping ({problem})") from None
        if not isinstance(value, (str, dict)):
            raise ConfigError(f"dataset must be a name, a path or a mapping, got {value!r}")
        return value
    if isinstance(value, str) and value != "":
        # an unparsable string stays as it is; the type check below names it
        with contextlib.suppress(yaml.YAMLError):
            value = load_yaml(value, f"{key} {value!r}")
    optional = kind == (int | None)
    if optional:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        kind = int
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            raise TypeError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise TypeError
            return str(value)
        if kind == list[float]:
            if not isinstance(value, list):
                raise TypeError
            return [float(v) for v in value]
        if kind == list[str]:
            if isinstance(value, str):  # the command line's "train,val"
                value = [v.strip() for v in value.split(",")]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TypeError
            return list(value)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{key} expects {type_name(key)}, got {value!r}")


def merge(base: dict[str, Any], updates: dict[str, Any], source: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in updates.items():
        key = key.replace("-", "_")
        if key not in FIELDS:
            close = [k for k in FIELDS if k.startswith(key[:3])]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown config key {key!r} in {source}{hint}")
        out[key] = coerce(key, value)
    return out


def read_yaml_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A YAML file that must hold a mapping; every failure is one ConfigError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        data = load_yaml(path.read_text(), f"{what} {path}") or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults <- YAML file <- overrides; then validate."""
    values = TrainConfig().to_dict()
    if path is not None:
        values = merge(values, read_yaml_mapping(path), str(path))
    values = merge(values, overrides or {}, "the command line")
    return TrainConfig(**values).validate()


def config_differences(stored: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """Keys whose values differ and change what a run computes (``NEUTRAL_KEYS`` excluded)."""
    defaults = TrainConfig().to_dict()
    keys = [k for k in FIELDS if k not in NEUTRAL_KEYS]
    return [k for k in keys if stored.get(k, defaults[k]) != requested.get(k, defaults[k])]
