"""Cross-validation folds over all labelled images: stratified, grouped by patient, seeded (docs/method.md, "Cross-validated studies").

A repeat is one partition of the pooled images into ``k`` folds. Fold ``f`` of a repeat is a run's
test part; the next fold, ``(f + 1) % k``, is its inner validation part (best epoch, tau,
temperature, the configuration choice); the other ``k - 2`` folds train it. So, pooled over the
folds of a repeat, every image has exactly one test prediction and one validation prediction, and
no part of a run ever holds an image (or a patient) of another of its parts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from imbal.data.dataset import ImageDataset, Splits
from imbal.errors import DataError
from imbal.naming import SPLITS

MIN_FOLDS = 3  # a test fold, a validation fold and at least one training fold


def _check(labels: np.ndarray, k: int, groups: np.ndarray | None) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < MIN_FOLDS:
        raise DataError(f"cv folds must be an integer >= {MIN_FOLDS} (test, validation, training), got {k!r}")
    if labels.ndim != 1:
        raise DataError(f"labels must have shape (N,), got {labels.shape}")
    if groups is not None and groups.shape != labels.shape:
        raise DataError(f"groups must have one entry per image, shape {labels.shape}, got {groups.shape}")
    units = len(labels) if groups is None else len(np.unique(groups))
    if units < k:
        what = "images" if groups is None else "groups"
        raise DataError(f"{k} folds need at least {k} {what}, got {units}")


def assign_folds(labels: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Fold id in ``[0, k)`` per image: stratified by class, no group split, seeded.

    Without groups every class is dealt out in a seeded random order, continuing the deal across
    classes, so that each fold holds within 1 image of ``n_c / k`` of every class c and within 1 of
    ``N / k`` images. With groups (a patient's images move together) the groups are placed largest
    first, ties in seeded random order, each where it brings the folds' class counts closest to
    ``n_c / k`` (the least squares increase); how close that came is :func:`fold_balance`.
    """
    labels = np.asarray(labels)
    groups = None if groups is None else np.asarray(groups)
    _check(labels, k, groups)
    rng = np.random.default_rng(seed)
    if groups is None or len(np.unique(groups)) == len(labels):
        folds = np.empty(len(labels), dtype=np.int64)
        deal = 0
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            folds[idx] = (deal + np.arange(len(idx))) % k
            deal += len(idx)
        return folds
    return place_groups(labels, groups, np.full(k, 1.0 / k), rng)


def place_groups(
    labels: np.ndarray, groups: np.ndarray, shares: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Part id per image, whole groups at a time, largest first (ties in ``rng`` order).

    Each group goes into the part where the squared distance of the parts' class counts from
    ``shares * n_c`` grows least (ties: the part least filled for its share).
    """
    names, member = np.unique(groups, return_inverse=True)
    classes, y = np.unique(labels, return_inverse=True)
    counts = np.zeros((len(names), len(classes)))
    np.add.at(counts, (member, y), 1)
    target = shares[:, None] * counts.sum(0)[None, :]
    order = rng.permutation(len(names))
    order = order[np.argsort(-counts[order].sum(1), kind="stable")]
    filled = np.zeros_like(target)
    place = np.empty(len(names), dtype=np.int64)
    for g in order:
        add = counts[g]
        cost = (add * (2 * (filled - target) + add)).sum(1)
        best = np.flatnonzero(cost <= cost.min() + 1e-9)
        f = best[np.argmin(filled[best].sum(1) / shares[best])]
        place[g] = f
        filled[f] += add
    return place[member]


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[torch.Tensor]:
    """Indices of parts of about ``fractions`` of every class, no group in two parts (a loader's train/val/test)."""
    shares = np.asarray(fractions, dtype=float)
    if shares.min() < 0 or abs(shares.sum() - 1) > 1e-6:
        raise DataError(f"fractions must be >= 0 and sum to 1, got {fractions}")
    parts = place_groups(
        np.asarray(labels), np.asarray(groups), np.maximum(shares, 1e-12), np.random.default_rng(seed)
    )
    return [torch.from_numpy(np.flatnonzero(parts == j)) for j in range(len(shares))]


def fold_balance(labels: np.ndarray, folds: np.ndarray, k: int) -> float:
    """The largest distance, in images, of any fold's count of any class from ``n_c / k``."""
    labels, folds = np.asarray(labels), np.asarray(folds)
    worst = 0.0
    for c in np.unique(labels):
        per_fold = np.bincount(folds[labels == c], minlength=k)
        worst = max(worst, float(np.abs(per_fold - per_fold.sum() / k).max()))
    return worst


@dataclass(frozen=True)
class FoldParts:
    """Indices into the pooled images of one fold's three parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def fold_parts(folds: np.ndarray, fold: int, k: int) -> FoldParts:
    """Fold ``fold`` tests, the next fold validates, the rest train."""
    if not 0 <= fold < k:
        raise DataError(f"cv fold must lie in [0, {k}), got {fold}")
    val = (fold + 1) % k
    return FoldParts(
        np.flatnonzero((folds != fold) & (folds != val)),
        np.flatnonzero(folds == val),
        np.flatnonzero(folds == fold),
    )


def pooled(splits: Splits, over: tuple[str, ...]) -> ImageDataset:
    """The images of the splits ``over`` as one in-memory set, in split order; groups kept when every split has them."""
    parts = [splits[s] for s in over]
    if not all(isinstance(p, ImageDataset) for p in parts):
        raise DataError(
            "cross-validation pools the splits in memory; this data set is streamed from a cache "
            "(load the source with its own kind: npz, folder, nifti or a MedMNIST name)"
        )
    groups = [p.groups for p in parts]
    first = parts[0]
    return ImageDataset(
        torch.cat([p.images for p in parts]),
        torch.cat([p.labels for p in parts]),
        first.num_classes,
        first.name,
        first.class_names,
        first.synthetic,
        groups=None if any(g is None for g in groups) else np.concatenate(groups),
    )


def cv_splits(splits: Splits, k: int, fold: int, repeat: int, over: tuple[str, ...] = SPLITS) -> Splits:
    """The splits of fold ``fold`` of repeat ``repeat``: every image of ``over`` pooled and partitioned.

    The partition's seed is the repeat, so every configuration of a study meets the same folds
    (paired differences). Each part carries ``pool_index``, its images' positions in the pool,
    which a run writes beside its outputs so that a report can put the folds back together.
    """
    unknown = [s for s in over if s not in SPLITS]
    if unknown or "train" not in over or len(set(over)) != len(over):
        raise DataError(f"cv over must be distinct splits of {SPLITS} including train, got {list(over)}")
    pool = pooled(splits, tuple(over))
    folds = assign_folds(pool.labels.numpy(), k, repeat, pool.groups)
    parts = fold_parts(folds, fold, k)

    def part(index: np.ndarray) -> ImageDataset:
        sub = pool.subset(torch.from_numpy(index))
        return dataclasses.replace(sub, pool_index=torch.from_numpy(index))

    out = Splits(part(parts.train), part(parts.val), part(parts.test), splits.source, splits.ordinal)
    return out.check()
