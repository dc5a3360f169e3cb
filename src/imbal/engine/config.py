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
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from imbal.errors import ConfigError
from imbal.losses import LOSS_OPTIONS, LOSS_TERMS, LossOptions, parse_loss_name
from imbal.losses.terms import loss_terms_help, option_errors
from imbal.metrics import METRICS
from imbal.models import ARCHS, NORMS
from imbal.samplers import SAMPLERS
from imbal.yaml_read import load_yaml

# a best epoch is the one with the highest score: metrics where lower is better (ece, brier) cannot pick it
SELECT_METRICS = tuple(name for name, m in METRICS.items() if m.higher_is_better)
LOGGERS = ("none", "tensorboard")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
SCHEDULES = ("cosine", "none")


def _key(default: Any, help: str) -> Any:
    """A config field with its help line (lists get a factory so instances never share them)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


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
    train_subset: int = _key(0, "> 0: a stratified subset of this many training samples (quick runs)")
    data_memory_mb: int = _key(
        0,
        "data sets whose images fit this budget (MiB) sit on the device; larger ones stream from "
        "disk. 0 = automatic (half the free device memory or RAM)",
    )
    # model
    arch: str = _key("resnet18", f"network: {', '.join(ARCHS)}")
    small_input: bool = _key(True, "3x3 stride-1 stem without max-pool (for 28-64 px inputs)")
    widen_factor: float = _key(1.0, "channel width multiplier of the ResNet (1.0 = 64-512 channels)")
    norm: str = _key("batch", f"normalisation layers: {', '.join(NORMS)}")
    # objective
    loss: str = _key(
        "ce",
        f"a '+'-sum of loss terms with optional coefficients, e.g. ce+mcc or ce+0.5*f1. Terms: {loss_terms_help()}",
    )
    sampler: str = _key("uniform", "; ".join(f"{s.name}: {s.help}" for s in SAMPLERS.values()))
    # optimisation (the study: Adam(0.9, 0.999), lr 1e-3, batch 50, cosine, no warm-up)
    epochs: int = _key(100, "training epochs")
    batch_size: int = _key(50, "global batch size (split over devices under DDP)")
    lr: float = _key(1e-3, "Adam learning rate")
    weight_decay: float = _key(0.0, "Adam weight decay")
    betas: list[float] = _key([0.9, 0.999], "Adam betas, two numbers in [0, 1)")
    schedule: str = _key("cosine", f"learning-rate schedule: {', '.join(SCHEDULES)}")
    augment: bool = _key(True, "the study's augmentation (gamma, contrast or blur, flips)")
    crop_size: int = _key(0, "> 0: random crop of this size in training, centre crop in evaluation")
    seed: int = _key(0, "seed of weights, batches and augmentation")
    # selection and checkpoints
    select_metric: str = _key(
        "balanced_accuracy",
        f"validation metric that picks the best epoch: {', '.join(SELECT_METRICS)} (qwk: ordinal data only)",
    )
    early_stopping: int = _key(0, "stop after this many epochs without a better validation score (0 = off)")
    checkpoint_every: int = _key(1, "write best/last checkpoints every N epochs (and at the end)")
    keep_last: bool = _key(False, "keep last.ckpt (weights + optimiser state) after the run finished")
    # hardware
    accelerator: str = _key("auto", "cpu, cuda or auto")
    devices: int = _key(1, "devices per node")
    num_nodes: int = _key(1, "nodes (torchrun / SLURM set the rest of the cluster environment)")
    strategy: str = _key("auto", "Fabric strategy (auto: ddp when devices * num_nodes > 1)")
    precision: str = _key("auto", f"{', '.join(PRECISIONS)} (auto: bf16-mixed on CUDA, 32-true on CPU)")
    compile: bool = _key(False, "torch.compile the training step")
    eval_batch_size: int = _key(500, "batch size of evaluation")
    threads: int = _key(
        0, "CPU threads of this run (0 = torch's default, recorded in config.yaml so a resume uses the same)"
    )
    # output
    out: str = _key("runs/run", "run folder")
    quiet: bool = _key(False, "no progress bar; one result line")
    logger: str = _key(
        "none",
        "training curves per epoch (loss, learning rate, validation metrics): none, or tensorboard (event "
        "files in <out>/tensorboard; `tensorboard --logdir` a grid folder shows every cell; needs "
        "pip install 'imbal[tensorboard]')",
    )

    def validate(self) -> TrainConfig:
        check(self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        try:
            terms = parse_loss_name(self.loss)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        check(self.sampler in SAMPLERS, f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        check(
            self.select_metric in SELECT_METRICS,
            f"select_metric must be one of {', '.join(SELECT_METRICS)}, got {self.select_metric!r}",
        )
        check(
            self.schedule in SCHEDULES,
            f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}",
        )
        check(self.norm in NORMS, f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        check(self.logger in LOGGERS, f"logger must be one of {', '.join(LOGGERS)}, got {self.logger!r}")
        check(
            self.logger != "tensorboard" or tensorboard_installed(),
            "logger tensorboard needs the tensorboard package: pip install 'imbal[tensorboard]'",
        )
        check(
            self.precision in PRECISIONS,
            f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
        )
        for name in ("epochs", "batch_size", "devices", "num_nodes", "eval_batch_size", "checkpoint_every"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "early_stopping",
            "train_subset",
            "crop_size",
            "threads",
            "data_memory_mb",
        ):
            check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        check(math.isfinite(self.lr) and self.lr > 0, f"lr must be a finite number > 0, got {self.lr}")
        check(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            f"weight_decay must be a finite number >= 0, got {self.weight_decay}",
        )
        check(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"betas must be two numbers in [0, 1), got {self.betas}",
        )
        # the narrowest stage has int(64 * widen_factor) channels
        check(
            math.isfinite(self.widen_factor) and int(64 * self.widen_factor) >= 1,
            f"widen_factor must be >= 1/64 (at least one channel), got {self.widen_factor}",
        )
        for message in option_errors(self):
            raise ConfigError(message)
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


# in the order of the class, with the inherited loss settings after the loss and sampler (help, messages)
_OWN = [f for f in dataclasses.fields(TrainConfig) if f.name not in LOSS_OPTIONS]
_AT = [f.name for f in _OWN].index("sampler") + 1
FIELDS = {f.name: f for f in [*_OWN[:_AT], *LOSS_OPTIONS.values(), *_OWN[_AT:]]}
TYPES = get_type_hints(TrainConfig)
# how a run is shown or where it writes
PRESENTATION_KEYS = ("out", "quiet", "logger")
# what a run costs in storage and memory: checkpoints, evaluation batches, data kept on the device
# (streaming and in-memory training give the same metrics: tests/engine/test_streaming_train.py)
RESOURCE_KEYS = ("checkpoint_every", "keep_last", "eval_batch_size", "data_memory_mb")
# keys that do not change what a run computes: a resume may change them, metrics.json leaves them
# out of the run's settings, and a study pools runs that differ in them
NEUTRAL_KEYS = (*PRESENTATION_KEYS, *RESOURCE_KEYS)


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
