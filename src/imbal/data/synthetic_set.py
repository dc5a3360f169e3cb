"""A built-in synthetic set with learnable class structure, for tests and for running offline."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from imbal.data.dataset import ImageDataset, Splits, stratified_split
from imbal.errors import DataError


def _smooth_noise(shape: tuple[int, ...], spatial_dims: int, g: torch.Generator) -> torch.Tensor:
    """Low-frequency random field: coarse noise upsampled, so classes differ in shape, not pixels."""
    coarse = torch.randn(shape[0], shape[1], *([4] * spatial_dims), generator=g)
    mode = "bilinear" if spatial_dims == 2 else "trilinear"
    return F.interpolate(coarse, size=shape[2:], mode=mode, align_corners=False)


def _check(
    n: int,
    size: int,
    channels: int,
    seed: int,
    class_ratios: Sequence[float] | None,
    overlap: float,
    label_noise: float,
    tint: float,
    fractions: Sequence[float],
) -> None:
    for key, value, least in (("n", n, 1), ("size", size, 1), ("channels", channels, 1), ("seed", seed, 0)):
        if not isinstance(value, int) or value < least:
            raise DataError(f"synthetic {key} must be an integer >= {least}, got {value!r}")
    if (
        not isinstance(class_ratios, tuple | list)
        or len(class_ratios) < 2
        or not all(isinstance(r, int | float) and r > 0 for r in class_ratios)
    ):
        raise DataError(f"class_ratios needs >= 2 positive numbers, got {class_ratios!r}")
    for key, amount, top in (("overlap", overlap, 1.0), ("label_noise", label_noise, 0.999)):
        if not isinstance(amount, int | float) or not 0 <= amount <= top:
            raise DataError(f"synthetic {key} must be a number in [0, {top:g}], got {amount!r}")
    if not isinstance(tint, int | float) or not math.isfinite(tint):
        raise DataError(f"synthetic tint must be a finite number, got {tint!r}")
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"synthetic fractions must be three numbers > 0 summing to 1, got {fractions!r}")


def synthetic(
    spatial_dims: int = 2,
    n: int = 1000,
    class_ratios: tuple[float, ...] = (0.6, 0.25, 0.1, 0.05),
    size: int = 28,
    seed: int = 0,
    channels: int = 1,
    noise: float = 0.9,
    overlap: float = 0.0,
    tint: float = 0.0,
    label_noise: float = 0.0,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
) -> Splits:
    """Imbalanced synthetic images: each class is its own smooth template plus per-sample noise.

    Labels follow ``class_ratios``; splits are stratified by ``fractions`` (train, val, test). The
    class signal is strong enough that a linear probe beats chance and weak enough (``noise``) that
    minority classes are confused, which is where imbalance-aware losses differ.

    A hard problem (the offline demo's): ``overlap`` in [0, 1] moves the rarest class's template that
    far towards the most frequent class's (1: the two look alike), and ``tint`` raises the first
    channel of every image of the rarest class by that much (before the sigmoid that maps to pixels:
    a colour tint, or brightness in gray images), a sign that the images' own variation in colour
    makes ambiguous: the two classes overlap, and a model trained for accuracy leaves the doubtful
    cases to the frequent class. A tint survives the study's augmentation (one gamma and contrast
    for all channels keep their order), which a brightness shift would not. ``label_noise`` in [0, 1) redraws that
    share of the labels from ``class_ratios`` after the images are made (the class mix stays; some
    labels in every split become wrong, as annotations are). All three 0: the original set, bit for
    bit. Marked ``synthetic=True`` everywhere.
    """
    if spatial_dims not in (2, 3):
        raise DataError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    _check(n, size, channels, seed, class_ratios, overlap, label_noise, tint, fractions)
    g = torch.Generator().manual_seed(seed)
    k = len(class_ratios)
    probs = torch.tensor(class_ratios, dtype=torch.float64)
    counts = (probs / probs.sum() * n).floor().long().clamp_min(4)
    labels = torch.repeat_interleave(torch.arange(k), counts)
    labels = labels[torch.randperm(len(labels), generator=g)]
    shape = (len(labels), channels, *([size] * spatial_dims))
    templates = _smooth_noise((k, channels, *shape[2:]), spatial_dims, g)
    rare, common = int(probs.argmin()), int(probs.argmax())
    templates[rare] = (1 - overlap) * templates[rare] + overlap * templates[common]
    x = (
        templates[labels]
        + noise * _smooth_noise(shape, spatial_dims, g)
        + 0.3 * torch.randn(shape, generator=g)
    )
    x[labels == rare, 0] += tint
    images = (torch.sigmoid(x) * 255).round().to(torch.uint8)
    if label_noise > 0:
        flip = torch.rand(len(labels), generator=g) < label_noise
        drawn = torch.multinomial(probs.float(), len(labels), replacement=True, generator=g)
        labels = torch.where(flip, drawn, labels)
    full = ImageDataset(images, labels, k, f"synthetic{spatial_dims}d", [f"class{c}" for c in range(k)], True)
    tr, va, te = stratified_split(labels, tuple(fractions), seed)
    splits = Splits(full.subset(tr), full.subset(va), full.subset(te), source=f"synthetic (seed {seed})")
    return splits.check()
