"""Run configuration: a dataclass, YAML files and ``--key value`` overrides, validated in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from imbal.errors import ConfigError
from imbal.losses import parse_loss_name
from imbal.metrics import METRICS
from imbal.models import ARCHS
from imbal.samplers import SAMPLERS


@dataclass
class TrainConfig:
    """Everything one training run depends on; stored resolved as ``config.yaml`` in the run folder."""

    # data: a MedMNIST name, an npz path, or a mapping with `kind` (see imbal.data.load_dataset)
    dataset: Any = "retinamnist"
    size: int = 28
    train_subset: int = 0  # >0: stratified subset of the training split (quick runs, tests)
    # model
    arch: str = "resnet18"
    small_input: bool = True
    widen_factor: float = 1.0
    norm: str = "batch"
    # objective
    loss: str = "ce"
    sampler: str = "uniform"
    focal_gamma: float = 2.0
    # optimisation (the study: Adam(0.9, 0.999), lr 1e-3, batch 50, cosine, no warm-up)
    epochs: int = 100
    batch_size: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "cosine"
    augment: bool = True
    crop_size: int = 0  # >0: random crop in training, centre crop in evaluation
    seed: int = 0
    # selection
    select_metric: str = "balanced_accuracy"
    early_stopping: int = 0  # patience in epochs; 0 = off
    checkpoint_every: int = 1  # write best/last checkpoints every N epochs (and at the end)
    # hardware
    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    precision: str = "auto"  # bf16-mixed on CUDA, 32-true on CPU
    compile: bool = False
    eval_batch_size: int = 500
    # output
    out: str = "runs/run"
    quiet: bool = False

    def validate(self) -> TrainConfig:
        def bad(msg: str) -> None:
            raise ConfigError(msg)

        if self.arch not in ARCHS:
            bad(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        try:
            parse_loss_name(self.loss)
        except ValueError as exc:
            bad(str(exc))
        if self.sampler not in SAMPLERS:
            bad(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.select_metric not in METRICS:
            bad(f"select_metric must be one of {', '.join(METRICS)}, got {self.select_metric!r}")
        if self.schedule not in ("cosine", "none"):
            bad(f"schedule must be 'cosine' or 'none', got {self.schedule!r}")
        if self.norm not in ("batch", "group"):
            bad(f"norm must be 'batch' or 'group', got {self.norm!r}")
        if self.precision not in ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true"):
            bad(
                f"precision must be auto, 32-true, bf16-mixed, 16-mixed, bf16-true or 64-true, got {self.precision!r}"
            )
        for name in ("epochs", "batch_size", "devices", "eval_batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                bad(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            bad(f"lr must be > 0, got {self.lr}")
        if self.sampler == "weights" and "ce" not in [t for _, t in parse_loss_name(self.loss)]:
            bad(
                f"sampler 'weights' weights per-sample losses; the study used it with CE-based losses, got {self.loss!r}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
TYPES = get_type_hints(TrainConfig)


def _coerce(key: str, value: Any) -> Any:
    """Turn a YAML or command-line value into the field's type, with a one-line error otherwise."""
    kind = TYPES[key]
    if key == "dataset":
        if isinstance(value, str) and value.strip().startswith("{"):
            return yaml.safe_load(value)
        return value
    if isinstance(value, str):
        value = yaml.safe_load(value) if value != "" else value
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
            return float(value)
        if kind is str:
            return str(value)
        if kind == list[float]:
            return [float(v) for v in value]
    except (TypeError, ValueError):
        pass
    else:
        return value
    name = getattr(kind, "__name__", str(kind))
    raise ConfigError(f"{key} expects {name}, got {value!r}")


def merge(base: dict[str, Any], updates: dict[str, Any], source: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in updates.items():
        key = key.replace("-", "_")
        if key not in FIELDS:
            close = [k for k in FIELDS if k.startswith(key[:3])]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown config key {key!r} in {source}{hint}")
        out[key] = _coerce(key, value)
    return out


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults <- YAML file <- overrides; then validate."""
    values = TrainConfig().to_dict()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
        values = merge(values, data, str(path))
    values = merge(values, overrides or {}, "the command line")
    return TrainConfig(**values).validate()


def parse_overrides(tokens: list[str]) -> dict[str, str]:
    """``["--loss", "ce+mcc", "--epochs=3"]`` -> ``{"loss": "ce+mcc", "epochs": "3"}``."""
    out: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise ConfigError(f"expected --key value, got {tok!r}")
        key = tok[2:]
        if "=" in key:
            key, value = key.split("=", 1)
        elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            i += 1
            value = tokens[i]
        else:
            value = "true"  # a bare flag such as --quiet
        out[key.replace("-", "_")] = value
        i += 1
    return out
