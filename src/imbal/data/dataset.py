"""One in-memory dataset type for every source: uint8 images ``(N, C, *spatial)``, int64 labels."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from imbal.errors import DataError
from imbal.naming import HELD_OUT, SPLITS, class_names


class Split:
    """One split of a data set: ``images`` ``(N, C, *spatial)``, int64 ``labels`` ``(N,)``, ``num_classes``.

    The base of the in-memory :class:`ImageDataset` and the disk-backed
    ``imbal.data.stream.DiskDataset``: what both derive from their images and labels, the label
    checks both run (one error type, :class:`DataError`), and the methods the engine calls on
    either. Code that takes "a split" takes this type, so this module never names the disk type.
    """

    images: Any
    labels: torch.Tensor
    num_classes: int
    name: str
    class_names: list[str]
    synthetic: bool
    # optional per-image patient (or other group) ids, and positions in a cross-validation pool
    groups: Any = None
    pool_index: torch.Tensor | None = None

    def _check_labels(self, where: str = "") -> None:
        """(N, C, *spatial) images with 2 or 3 spatial dims and labels (N,) in [0, num_classes)."""
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64)
        n = self.images.shape[0]
        if self.images.ndim not in (4, 5):
            raise DataError(
                f"{where}images must have shape (N, C, H, W) or (N, C, D, H, W), got shape={tuple(self.images.shape)}"
            )
        if self.labels.shape != (n,):
            raise DataError(
                f"{where}{n} images but labels of shape {tuple(self.labels.shape)}; labels must have shape ({n},)"
            )
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= self.num_classes):
            raise DataError(
                f"{where}labels must lie in [0, {self.num_classes}), got min={int(self.labels.min())} "
                f"max={int(self.labels.max())}"
            )
        self.class_names = class_names(self.class_names, self.num_classes)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images in [0, 1] and labels for ``index``."""
        raise NotImplementedError

    def subset(self, index: torch.Tensor | list[int]) -> Split:
        """The samples ``index`` as a split of the same type, name and classes."""
        raise NotImplementedError

    def to(self, device: torch.device | str) -> Split:
        """A copy whose :meth:`batch` returns tensors on ``device``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes."""
        return self.images.ndim - 2

    @property
    def in_channels(self) -> int:
        """Channels ``C`` of the images."""
        return self.images.shape[1]

    @property
    def spatial_size(self) -> tuple[int, ...]:
        """``(H, W)`` or ``(D, H, W)``."""
        return tuple(self.images.shape[2:])

    @property
    def class_counts(self) -> torch.Tensor:
        """Samples per class, int64 ``(num_classes,)`` on the CPU (0 for an absent class)."""
        return torch.bincount(self.labels.cpu(), minlength=self.num_classes)

    @property
    def imbalance_ratio(self) -> float:
        """Largest over smallest class count (an absent class counts as 1)."""
        counts = self.class_counts.float()
        return float(counts.max() / counts.clamp_min(1).min())

    @property
    def minority_class(self) -> int:
        """Index of the rarest class in this set (the lowest index on ties)."""
        return int(torch.argmin(self.class_counts))


@dataclass
class ImageDataset(Split):
    """Images and labels held in memory, gathered by index without per-sample Python work.

    ``images`` is uint8 ``(N, C, *spatial)`` with 2 or 3 spatial dims; :meth:`batch` returns float
    images in ``[0, 1]``. Tensors may live on any device (see :meth:`to`).
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    name: str = "dataset"
    class_names: list[str] = field(default_factory=list)
    synthetic: bool = False
    groups: Any = None  # (N,) group ids (a patient's images), or None
    pool_index: torch.Tensor | None = None  # (N,) positions in a cross-validation pool, or None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8:
            raise TypeError(f"images must be uint8 (N, C, *spatial), got dtype={self.images.dtype}")
        self._check_labels()
        if self.groups is not None:
            self.groups = np.asarray(self.groups)
            if self.groups.shape != (len(self.labels),):
                raise DataError(
                    f"groups must have one entry per image, shape ({len(self.labels)},), got {self.groups.shape}"
                )

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images in [0, 1] and labels for ``index`` (a gather, on the data's device)."""
        index = index.to(self.images.device)
        return self.images[index].float().div_(255.0), self.labels[index]

    def subset(self, index: torch.Tensor | list[int]) -> ImageDataset:
        """The samples ``index`` (a copy, on the data's device)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageDataset(
            self.images[index],
            self.labels[index],
            self.num_classes,
            self.name,
            self.class_names,
            self.synthetic,
            None if self.groups is None else self.groups[index.cpu().numpy()],
            None if self.pool_index is None else self.pool_index[index.cpu()],
        )

    def to(self, device: torch.device | str) -> ImageDataset:
        """The images and labels moved to ``device`` (where :meth:`batch` then gathers)."""
        return ImageDataset(
            self.images.to(device),
            self.labels.to(device),
            self.num_classes,
            self.name,
            self.class_names,
            self.synthetic,
            self.groups,
            self.pool_index,
        )


@dataclass
class Splits:
    """train / val / test of one source; ``source`` says where the data came from.

    ``ordinal``: the classes are ordered grades (docs/method.md, "Ordinal grades"), which adds the
    quadratic weighted kappa to the metrics. Copies of a :class:`Splits` keep it (``dataclasses.replace``).
    """

    train: Split
    val: Split
    test: Split
    source: str = ""
    ordinal: bool = False

    def __getitem__(self, split: str) -> Split:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return getattr(self, split)

    @property
    def synthetic(self) -> bool:
        """The data are generated (``imbal.data.synthetic_set``), not a real data set."""
        return self.train.synthetic

    def check(self) -> Splits:
        """Refuse splits that cannot be trained and scored as one problem (see :func:`check_splits`)."""
        parts = {s: self[s] for s in SPLITS}
        for s in HELD_OUT:
            if parts[s].num_classes != self.train.num_classes or list(parts[s].class_names) != list(
                self.train.class_names
            ):
                raise DataError(
                    f"{self.source}: {s} has classes {list(parts[s].class_names)}, train has "
                    f"{list(self.train.class_names)}; all splits need one class set"
                )
        check_splits(
            {s: d.labels for s, d in parts.items()},
            {s: tuple(d.images.shape) for s, d in parts.items()},
            self.train.num_classes,
            self.train.class_names,
            self.source,
        )
        return self


def exc_text(exc: BaseException) -> str:
    """``Type: message`` on one line, for a library error wrapped in a user error (printed on one line)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _class(k: int, names: Sequence[str]) -> str:
    return f"{k} ({names[k]!r})" if k < len(names) and names[k] != str(k) else str(k)


def check_splits(
    labels: Mapping[str, torch.Tensor],
    shapes: Mapping[str, tuple[int, ...]],
    num_classes: int,
    class_names: Sequence[str] = (),
    source: str = "",
) -> None:
    """The rules every source's train/val/test must meet together, in one place for all loaders.

    ``shapes`` are the image shapes ``(N, C, *spatial)``. Each split must be non-empty (an empty
    validation set silently yields zero metrics, an empty test set fails only after training);
    every label must be one of the ``num_classes`` classes (which come from the training split or
    from what the caller declared, never from the largest label of another split); the training
    split must hold every class and at least two; all splits need the same channels and size.
    """
    where = f"{source}: " if source else ""
    _check_sizes(labels, shapes, where)
    if class_names and len(class_names) != num_classes:
        raise DataError(
            f"{where}{len(class_names)} class names {list(class_names)} for {num_classes} classes"
        )
    for s in SPLITS:
        values, counts = torch.unique(labels[s].cpu(), return_counts=True)
        outside = [(int(v), int(c)) for v, c in zip(values, counts) if v < 0 or v >= num_classes]
        if outside:
            found = ", ".join(f"{v} ({c} sample{'s' * (c != 1)})" for v, c in outside)
            raise DataError(
                f"{where}{s} has label(s) outside the {num_classes} classes 0..{num_classes - 1} of the "
                f"training split: {found}"
            )
    _check_training_classes(labels, num_classes, class_names, where)
    for s in HELD_OUT:
        if tuple(shapes[s][1:]) != tuple(shapes["train"][1:]):
            raise DataError(
                f"{where}{s} images are (C, *spatial)={tuple(shapes[s][1:])}, train images are "
                f"{tuple(shapes['train'][1:])}; all splits need the same channels and size"
            )


def _check_sizes(
    labels: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]], where: str
) -> None:
    """One label per image, and no empty split."""
    for s in SPLITS:
        n_images, n_labels = shapes[s][0], len(labels[s])
        if n_images != n_labels:
            raise DataError(
                f"{where}{s} has {n_images} images but {n_labels} labels; expected one label per image"
            )
        if n_labels == 0:
            raise DataError(
                f"{where}the {s} split is empty (0 samples); train, val and test each need samples "
                "(validation picks the checkpoint, test scores it)"
            )


def _check_training_classes(
    labels: Mapping[str, torch.Tensor], num_classes: int, class_names: Sequence[str], where: str
) -> None:
    """The training split holds at least two classes, and every one of the ``num_classes``."""
    present = torch.unique(labels["train"].cpu()).tolist()
    if len(present) < 2:
        only = f"class {_class(present[0], class_names)}" if present else "no class"
        raise DataError(
            f"{where}the train split holds only {only} ({len(labels['train'])} samples); a classifier "
            "needs at least two classes to learn"
        )
    if len(present) == num_classes:
        return
    # listed lazily: a stray huge label must not make us enumerate (or bincount) a billion classes
    have = set(present)
    absent = list(itertools.islice((k for k in range(num_classes) if k not in have), 8))
    found = "; ".join(
        f"{_class(k, class_names)}: val {int((labels['val'] == k).sum())}, test {int((labels['test'] == k).sum())}"
        for k in absent
    )
    missing = num_classes - len(have)
    more = f"; and {missing - len(absent)} more" if missing > len(absent) else ""
    raise DataError(
        f"{where}{missing} of {num_classes} classes have no training samples ({found}{more}); every class "
        "needs training samples (integer labels must be 0..K-1 without gaps)"
    )


def make_splits(
    images: Mapping[str, torch.Tensor],
    labels: Mapping[str, torch.Tensor],
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    name: str = "dataset",
    source: str = "",
    synthetic: bool = False,
    groups: Mapping[str, Any] | None = None,
) -> Splits:
    """Checked :class:`Splits` from per-split uint8 images and int64 labels (and group ids, when known).

    The class set is ``num_classes``, else ``len(class_names)``, else the largest training label + 1.
    """
    train = labels["train"]
    if num_classes is None:
        num_classes = len(class_names) if class_names else (int(train.max()) + 1 if len(train) else 0)
    check_splits(labels, {s: tuple(images[s].shape) for s in SPLITS}, num_classes, class_names or (), source)
    parts = {
        s: ImageDataset(
            images[s],
            labels[s],
            num_classes,
            name,
            list(class_names or []),
            synthetic,
            None if groups is None else groups[s],
        )
        for s in SPLITS
    }
    return Splits(parts["train"], parts["val"], parts["test"], source=source)


def stratified_split(labels: torch.Tensor, fractions: tuple[float, ...], seed: int = 0) -> list[torch.Tensor]:
    """Split indices into parts of the given fractions, class by class (every part keeps the mix)."""
    if min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise DataError(f"fractions must be >= 0 and sum to 1, got {fractions} (sum {sum(fractions)})")
    g = torch.Generator().manual_seed(seed)
    parts: list[list[torch.Tensor]] = [[] for _ in fractions]
    for k in torch.unique(labels):
        idx = torch.nonzero(labels == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        bounds = torch.tensor([0.0, *torch.cumsum(torch.tensor(fractions), 0).tolist()]) * len(idx)
        bounds = bounds.round().long()
        for j in range(len(fractions)):
            parts[j].append(idx[bounds[j] : bounds[j + 1]])
    return [torch.sort(torch.cat(p)).values if p else torch.empty(0, dtype=torch.long) for p in parts]
