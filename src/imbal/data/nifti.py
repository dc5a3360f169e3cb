"""3D NIfTI volumes listed in a CSV, one column per sequence (``t1,t1c,t2,flair`` become channels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from imbal.data.dataset import ImageDataset, Splits
from imbal.data.folder import labels_from_frame, split_frame


def normalise_in_mask(volume: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] over the non-zero voxels (the brain mask); background stays 0."""
    volume = volume.astype(np.float32)
    mask = volume != 0
    if not mask.any():
        return volume
    lo, hi = volume[mask].min(), volume[mask].max()
    out = np.zeros_like(volume)
    out[mask] = (volume[mask] - lo) / (hi - lo) if hi > lo else 1.0
    return out


def centre_crop_or_pad(volume: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    out = np.zeros(size, dtype=volume.dtype)
    src, dst = [], []
    for have, want in zip(volume.shape, size):
        if have >= want:
            start = (have - want) // 2
            src.append(slice(start, start + want))
            dst.append(slice(0, want))
        else:
            start = (want - have) // 2
            src.append(slice(0, have))
            dst.append(slice(start, start + have))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def load_nifti_csv(
    csv: str | Path,
    *,
    sequence_columns: list[str],
    label_column: str = "label",
    class_names_column: str | None = None,
    split_column: str | None = None,
    image_dir: str | Path | None = None,
    size: int | tuple[int, int, int] = 96,
    fractions: tuple[float, float, float] = (0.65, 0.1, 0.25),
    seed: int = 0,
    name: str | None = None,
) -> Splits:
    """Load NIfTI volumes (via nibabel); each sequence column becomes one channel.

    Intensities are normalised to [0, 1] within the non-zero mask, centre cropped/padded to
    ``size`` and stored as uint8 (1/255 steps) so that the set sits in memory like the others.
    """
    import nibabel as nib

    csv = Path(csv)
    df = pd.read_csv(csv)
    missing_cols = [c for c in sequence_columns if c not in df.columns]
    if missing_cols:
        raise ValueError(f"sequence columns {missing_cols} not in CSV columns {list(df.columns)}")
    image_dir = Path(image_dir) if image_dir else csv.parent
    size3 = (size,) * 3 if isinstance(size, int) else tuple(size)
    labels, names = labels_from_frame(df, label_column, class_names_column)
    volumes = np.zeros((len(df), len(sequence_columns), *size3), dtype=np.uint8)
    for i, row in enumerate(df.itertuples(index=False)):
        for j, col in enumerate(sequence_columns):
            path = image_dir / str(getattr(row, col))
            if not path.is_file():
                raise FileNotFoundError(f"{csv} row {i}: {col} volume {path} does not exist")
            data = np.asarray(nib.load(str(path)).dataobj)
            if data.ndim != 3:
                raise ValueError(f"{path}: expected a 3D volume, got shape={data.shape}")
            vol = centre_crop_or_pad(normalise_in_mask(data), size3)
            volumes[i, j] = np.clip(np.rint(vol * 255), 0, 255).astype(np.uint8)
    idx = split_frame(df, labels, split_column, fractions, seed)
    full = ImageDataset(torch.from_numpy(volumes), labels, len(names), name or csv.stem, names)
    return Splits(
        full.subset(idx["train"]), full.subset(idx["val"]), full.subset(idx["test"]), source=str(csv)
    )
