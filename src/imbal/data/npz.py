"""MedMNIST-format npz files: six arrays ``{train,val,test}_{images,labels}``, 2D gray/RGB or 3D."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from imbal.data.dataset import ImageDataset, Splits

SPLITS = ("train", "val", "test")


def images_to_tensor(array: np.ndarray, spatial_dims: int | None = None) -> torch.Tensor:
    """MedMNIST layouts to ``(N, C, *spatial)`` uint8.

    2D: ``(N, H, W)`` gray or ``(N, H, W, C)`` with C in 1..4; 3D: ``(N, D, H, W)`` or
    ``(N, D, H, W, C)``. An ``(N, a, b, c)`` array is 2D channels-last when ``c <= 4`` unless
    ``spatial_dims`` says otherwise.
    """
    if array.dtype != np.uint8:
        lo, hi = float(array.min()), float(array.max())
        scale = 255.0 if hi <= 1.0 and lo >= 0.0 else 1.0
        array = np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
    if spatial_dims is None:
        if array.ndim == 3:
            spatial_dims = 2
        elif array.ndim == 4:
            spatial_dims = 2 if array.shape[-1] <= 4 else 3
        elif array.ndim == 5:
            spatial_dims = 3
        else:
            raise ValueError(f"images must have 3 to 5 dims (N, *spatial[, C]), got shape={array.shape}")
    t = torch.from_numpy(np.ascontiguousarray(array))
    if t.ndim == spatial_dims + 1:
        return t.unsqueeze(1)
    if t.ndim == spatial_dims + 2:
        return t.movedim(-1, 1).contiguous()
    raise ValueError(f"images of shape {array.shape} do not fit spatial_dims={spatial_dims}")


def labels_to_tensor(array: np.ndarray, path: str | Path = "") -> torch.Tensor:
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{path}: labels must have shape (N,) or (N, 1) for single-label classification, got shape="
            f"{array.shape} (multi-label sets such as ChestMNIST are not supported)"
        )
    return torch.from_numpy(array.astype(np.int64))


def load_npz(
    path: str | Path,
    *,
    name: str | None = None,
    spatial_dims: int | None = None,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> Splits:
    """Load any MedMNIST-format npz into :class:`Splits` (no pickle; uint8 in memory)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no npz file at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in z.files]
            if missing:
                raise ValueError(
                    f"{path} is not MedMNIST-format: missing keys {missing}; has {sorted(z.files)}"
                )
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{path} is not a readable npz archive (corrupt or truncated): {exc}") from exc
    labels = {s: labels_to_tensor(arrays[f"{s}_labels"], path) for s in SPLITS}
    k = num_classes or int(max(int(v.max()) for v in labels.values() if len(v))) + 1
    name = name or path.stem
    parts = {
        s: ImageDataset(
            images_to_tensor(arrays[f"{s}_images"], spatial_dims), labels[s], k, name, class_names or []
        )
        for s in SPLITS
    }
    return Splits(parts["train"], parts["val"], parts["test"], source=str(path))
