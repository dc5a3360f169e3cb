"""The parity check an export passes before it writes: the file's probabilities equal ``imbal predict``'s.

The reference is predict's own forward pass (:func:`~imbal.engine.predict.predict_logits`, float32
on the CPU) on uint8 images; the exported file gets the same images scaled to [0, 1], the input its
preprocessing file describes. Images are run one at a time and all at once, so the dynamic batch
axis is checked too. Any probability further than :data:`TOLERANCE` from the reference stops the
export, naming the image, the class and the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lightning_fabric import Fabric

from imbal.data.inputs import collect_inputs, decode
from imbal.engine.build import prepare_data
from imbal.engine.predict import predict_logits
from imbal.errors import DataError, UserError
from imbal.export.source import LoadedRun

TOLERANCE = 1e-5  # on the probabilities
LOGIT_TOLERANCE = 1e-4  # on the logits, relative to max(1, |logit|)
# the exported file, run: images (N, C, *spatial) float32 -> (logits, probabilities)
Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
DEFAULT_IMAGES = 8  # of the run's test split: enough to exercise every class head, seconds in 3D


class ParityError(UserError, ValueError):
    """The exported model's probabilities differ from PyTorch's by more than the tolerance; nothing is written."""


@dataclass(frozen=True)
class CheckImages:
    """uint8 images ``(N, C, *spatial)`` for the check, their names and where they came from."""

    images: torch.Tensor
    names: list[str]
    source: str  # for people: "the first 8 images of the test split of retinamnist"


@dataclass(frozen=True)
class Parity:
    """What the check found: images, batch sizes, the largest probability difference, the runtime."""

    images: int
    source: str
    batch_sizes: list[int]
    max_abs_difference: float
    tolerance: float
    runtime: str
    max_logit_difference: float = 0.0  # relative to max(1, |logit|)


def check_images(run: LoadedRun, inputs: Sequence[str | Path] | None, count: int) -> CheckImages:
    """Every image of ``inputs`` (as ``imbal predict`` reads them), else the first ``count`` test images."""
    if inputs:
        items, _ = collect_inputs(inputs, run.want)
        images = torch.from_numpy(np.stack([decode(item, run.want) for item in items]))
        return CheckImages(images, [item.name for item in items], f"{len(items)} given input(s)")
    if count < 1:
        raise DataError(f"--check-images must be >= 1, got {count}")
    try:
        test = prepare_data(run.cfg).test
    except UserError as exc:
        raise DataError(
            f"the run's test images cannot be loaded for the parity check ({exc}); pass --check-inputs with a "
            "few images the run takes"
        ) from None
    k = min(count, len(test))
    name = str(run.metrics["dataset"].get("name") or "the run's data")
    names = [f"test image {i}" for i in range(k)]
    return CheckImages(test.images[:k].cpu(), names, f"the first {k} images of the test split of {name}")


def reference_outputs(run: LoadedRun, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``imbal predict``'s logits and probabilities (no post hoc) of uint8 images, on the CPU in float32."""
    fabric = Fabric(accelerator="cpu", devices=1)
    names = [str(i) for i in range(len(images))]
    _, logits = predict_logits(run.model.to("cpu"), iter([(names, images)]), run.augmentation, fabric)
    return logits.numpy(), logits.softmax(-1).numpy()


def _worst(got: np.ndarray, reference: np.ndarray, scale: np.ndarray) -> tuple[float, int, int]:
    """The largest ``|got - reference| / scale`` (NaN counts as infinite), with its image and class."""
    diff = np.abs(got.astype(np.float64) - reference) / scale
    diff = np.where(np.isnan(diff), np.inf, diff)
    i, k = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return float(diff[i, k]), int(i), int(k)


def check_parity(runner: Runner, run: LoadedRun, check: CheckImages, runtime: str) -> Parity:
    """Run the exported model on ``check`` (batch 1 and the whole set) against the reference, or raise.

    Both outputs are checked: the probabilities within :data:`TOLERANCE`, the logits within
    :data:`LOGIT_TOLERANCE` x max(1, |logit|) (a saturated softmax would hide a logit error, and the
    post-hoc formulas start from the logits).
    """
    reference = reference_outputs(run, check.images)
    scales = (np.maximum(1.0, np.abs(reference[0])), np.ones_like(reference[1]))
    limits = {"logit": LOGIT_TOLERANCE, "probability": TOLERANCE}
    x = check.images.float().div(255.0).numpy()  # the exported input: the preprocessing file's scaling
    sizes = sorted({1, len(x)})
    worst = {name: (0.0, 0, 0, sizes[0]) for name in limits}
    for size in sizes:
        parts = [runner(x[i : i + size]) for i in range(0, len(x), size)]
        for j, name in enumerate(limits):
            got = np.concatenate([p[j] for p in parts])
            if got.shape != reference[j].shape:
                raise ParityError(
                    f"the exported model gives {name}s of shape {got.shape}, PyTorch {reference[j].shape}"
                )
            d, i, k = _worst(got, reference[j], scales[j])
            if d > worst[name][0]:
                worst[name] = (d, i, k, size)
    for name, (d, image, cls, size) in worst.items():
        if not d <= limits[name]:
            limit = f"{limits[name]:g}" + (" x max(1, |logit|)" if name == "logit" else "")
            raise ParityError(
                f"the exported model differs from PyTorch by {d:.3g} (tolerance {limit}) in the {name} of class "
                f"{run.class_names[cls]!r} for {check.names[image]} at batch size {size}; nothing was written"
            )
    return Parity(len(x), check.source, sizes, worst["probability"][0], TOLERANCE, runtime, worst["logit"][0])
