"""One in-memory dataset type for every source: uint8 images ``(N, C, *spatial)``, int64 labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ImageDataset:
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

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8:
            raise TypeError(f"images must be uint8 (N, C, *spatial), got dtype={self.images.dtype}")
        if self.images.ndim not in (4, 5):
            raise ValueError(
                f"images must have shape (N, C, H, W) or (N, C, D, H, W), got shape={tuple(self.images.shape)}"
            )
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64)
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.images.shape[0]},), got shape={tuple(self.labels.shape)}"
            )
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}), got min={int(self.labels.min())} "
                f"max={int(self.labels.max())}"
            )
        if not self.class_names:
            self.class_names = [str(k) for k in range(self.num_classes)]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def spatial_dims(self) -> int:
        return self.images.ndim - 2

    @property
    def in_channels(self) -> int:
        return self.images.shape[1]

    @property
    def spatial_size(self) -> tuple[int, ...]:
        return tuple(self.images.shape[2:])

    @property
    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels.cpu(), minlength=self.num_classes)

    @property
    def imbalance_ratio(self) -> float:
        counts = self.class_counts.float()
        return float(counts.max() / counts.clamp_min(1).min())

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images in [0, 1] and labels for ``index`` (a gather, on the data's device)."""
        index = index.to(self.images.device)
        return self.images[index].float().div_(255.0), self.labels[index]

    def subset(self, index: torch.Tensor | list[int]) -> ImageDataset:
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageDataset(
            self.images[index],
            self.labels[index],
            self.num_classes,
            self.name,
            self.class_names,
            self.synthetic,
        )

    def to(self, device: torch.device | str) -> ImageDataset:
        return ImageDataset(
            self.images.to(device),
            self.labels.to(device),
            self.num_classes,
            self.name,
            self.class_names,
            self.synthetic,
        )


@dataclass
class Splits:
    """train / val / test of one source; ``source`` says where the data came from."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    source: str = ""

    def __getitem__(self, split: str) -> ImageDataset:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        return getattr(self, split)

    @property
    def synthetic(self) -> bool:
        return self.train.synthetic


def stratified_split(labels: torch.Tensor, fractions: tuple[float, ...], seed: int = 0) -> list[torch.Tensor]:
    """Split indices into parts of the given fractions, class by class (every part keeps the mix)."""
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions} (sum {sum(fractions)})")
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
