"""A finished run, loaded the way ``imbal predict`` loads it, and the graph an export holds.

Everything here is predict's own code path (:func:`~imbal.engine.evaluate.load_model`,
:func:`~imbal.engine.predict.expected_input`, :func:`~imbal.engine.predict.load_posthoc`, the
evaluation transform of :class:`~imbal.data.augment.Augmentation`), so an exported model computes
what ``imbal predict`` computes, not a re-implementation of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imbal.data.augment import Augmentation
from imbal.data.inputs import Expected
from imbal.engine import run_dir as rd
from imbal.engine.config import TrainConfig
from imbal.engine.evaluate import check_checkpoint, load_model, stored_config
from imbal.engine.predict import expected_input, load_posthoc
from imbal.errors import MissingFileError
from imbal.models import Classifier
from imbal.naming import class_names


@dataclass
class LoadedRun:
    """A finished run's model, settings, input shape, class names, metrics and post-hoc values."""

    run_dir: Path
    model: Classifier
    ckpt: dict[str, Any]
    cfg: TrainConfig
    want: Expected
    class_names: list[str]
    metrics: dict[str, Any]
    posthoc: dict[str, Any] | None  # temperature and tau (posthoc.json, or fit from outputs_val.npz)

    @property
    def augmentation(self) -> Augmentation:
        """Predict's evaluation transform: the centre crop when the run trained with crops, else nothing."""
        return Augmentation(self.want.spatial_dims, enabled=False, crop_size=self.cfg.crop_size or None)


def posthoc_values(run_dir: Path, num_classes: int) -> dict[str, Any] | None:
    """What ``imbal predict --posthoc`` would apply, or None for a run that stored nothing to fit it from."""
    if not (run_dir / rd.POSTHOC).is_file() and not (run_dir / rd.outputs_file("val")).is_file():
        return None
    return load_posthoc(run_dir, num_classes)[0]


def load_run(run_dir: str | Path) -> LoadedRun:
    """The run's ``best.ckpt`` (checked to be this run's), as ``imbal predict`` reads it."""
    run_dir = Path(run_dir)
    if not (run_dir / rd.BEST).is_file():
        raise MissingFileError(f"{run_dir} has no {rd.BEST}; export needs a finished run's best checkpoint")
    model, ckpt = load_model(run_dir / rd.BEST)
    check_checkpoint(run_dir, ckpt)
    want = expected_input(run_dir, ckpt, None)  # also refuses an unfinished run
    num_classes = int(ckpt["model_config"]["num_classes"])
    return LoadedRun(
        run_dir,
        model.eval(),
        ckpt,
        stored_config(ckpt),
        want,
        class_names(ckpt.get("class_names"), num_classes),
        rd.read_json(run_dir / rd.METRICS_FILE),
        posthoc_values(run_dir, num_classes),
    )


class ExportedNet(nn.Module):
    """Images ``(N, C, *spatial)`` in [0, 1] at the run's stored size -> ``(logits, probabilities)``.

    The centre crop of a run that trained with crops is part of the graph, so a caller only decodes
    and scales; the probabilities are the plain softmax (``imbal predict`` without ``--posthoc``),
    and the post-hoc temperature and tau are described beside the model, not applied in it.
    """

    def __init__(self, run: LoadedRun) -> None:
        super().__init__()
        self.model = run.model
        self.augmentation = run.augmentation

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(N, C)`` and their softmax, as :func:`~imbal.engine.predict.predict_logits` computes them."""
        x = self.augmentation.eval(images)
        logits = self.model.head(self.model.features(x))
        return logits, logits.softmax(-1)
