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

TOLERANCE = 1e-5
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


def reference_probabilities(run: LoadedRun, images: torch.Tensor) -> np.ndarray:
    """``imbal predict``'s probabilities (no post hoc) of uint8 images, on the CPU in float32."""
    fabric = Fabric(accelerator="cpu", devices=1)
    names = [str(i) for i in range(len(images))]
    _, logits = predict_logits(run.model.to("cpu"), iter([(names, images)]), run.augmentation, fabric)
    return logits.softmax(-1).numpy()


def check_parity(
    runner: Callable[[np.ndarray], np.ndarray],
    run: LoadedRun,
    check: CheckImages,
    runtime: str,
    tolerance: float = TOLERANCE,
) -> Parity:
    """Run the exported model on ``check`` (batch 1 and the whole set) against the reference, or raise."""
    reference = reference_probabilities(run, check.images)
    x = check.images.float().div(255.0).numpy()  # the exported input: the preprocessing file's scaling
    sizes = sorted({1, len(x)})
    worst = (0.0, 0, 0, sizes[0])
    for size in sizes:
        got = np.concatenate([runner(x[i : i + size]) for i in range(0, len(x), size)])
        if got.shape != reference.shape:
            raise ParityError(
                f"the exported model gives probabilities of shape {got.shape}, PyTorch {reference.shape}"
            )
        diff = np.abs(got.astype(np.float64) - reference)
        i, k = np.unravel_index(int(np.argmax(diff)), diff.shape)
        if not np.isfinite(diff).all() or diff[i, k] > worst[0]:
            worst = (float(diff[i, k]), int(i), int(k), size)
    if not worst[0] <= tolerance:  # NaN fails too
        d, image, cls, size = worst
        raise ParityError(
            f"the exported model differs from PyTorch by {d:.3g} (tolerance {tolerance:g}) in the probability "
            f"of class {run.class_names[cls]!r} for {check.names[image]} at batch size {size}; nothing was written"
        )
    return Parity(len(x), check.source, sizes, worst[0], tolerance, runtime)
