"""A built-in synthetic set with learnable class structure, for tests and for running offline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imbal.data.dataset import ImageDataset, Splits, stratified_split
from imbal.errors import DataError


def _smooth_noise(shape: tuple[int, ...], spatial_dims: int, g: torch.Generator) -> torch.Tensor:
    """Low-frequency random field: coarse noise upsampled, so classes differ in shape, not pixels."""
    coarse = torch.randn(shape[0], shape[1], *([4] * spatial_dims), generator=g)
    mode = "bilinear" if spatial_dims == 2 else "trilinear"
    return F.interpolate(coarse, size=shape[2:], mode=mode, align_corners=False)


def synthetic(
    spatial_dims: int = 2,
    n: int = 1000,
    class_ratios: tuple[float, ...] = (0.6, 0.25, 0.1, 0.05),
    size: int = 28,
    seed: int = 0,
    channels: int = 1,
    noise: float = 0.9,
) -> Splits:
    """Imbalanced synthetic images: each class is its own smooth template plus per-sample noise.

    Labels follow ``class_ratios``; splits are stratified 70/10/20. The class signal is strong
    enough that a linear probe beats chance and weak enough (``noise``) that minority classes are
    confused, which is where imbalance-aware losses differ. Marked ``synthetic=True`` everywhere.
    """
    if spatial_dims not in (2, 3):
        raise DataError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    for key, value, least in (("n", n, 1), ("size", size, 1), ("channels", channels, 1), ("seed", seed, 0)):
        if not isinstance(value, int) or value < least:
            raise DataError(f"synthetic {key} must be an integer >= {least}, got {value!r}")
    if (
        not isinstance(class_ratios, tuple | list)
        or len(class_ratios) < 2
        or not all(isinstance(r, int | float) and r > 0 for r in class_ratios)
    ):
        raise DataError(f"class_ratios needs >= 2 positive numbers, got {class_ratios!r}")
    g = torch.Generator().manual_seed(seed)
    k = len(class_ratios)
    probs = torch.tensor(class_ratios, dtype=torch.float64)
    counts = (probs / probs.sum() * n).floor().long().clamp_min(4)
    labels = torch.repeat_interleave(torch.arange(k), counts)
    labels = labels[torch.randperm(len(labels), generator=g)]
    shape = (len(labels), channels, *([size] * spatial_dims))
    templates = _smooth_noise((k, channels, *shape[2:]), spatial_dims, g)
    x = (
        templates[labels]
        + noise * _smooth_noise(shape, spatial_dims, g)
        + 0.3 * torch.randn(shape, generator=g)
    )
    images = (torch.sigmoid(x) * 255).round().to(torch.uint8)
    full = ImageDataset(images, labels, k, f"synthetic{spatial_dims}d", [f"class{c}" for c in range(k)], True)
    tr, va, te = stratified_split(labels, (0.7, 0.1, 0.2), seed)
    splits = Splits(full.subset(tr), full.subset(va), full.subset(te), source=f"synthetic (seed {seed})")
    return splits.check()
