"""3D NIfTI volumes listed in a CSV, one column per sequence (``t1,t1c,t2,flair`` become channels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from imbal.data.dataset import Splits, exc_text, make_splits
from imbal.data.folder import frame_splits, group_ids, labels_from_frame, read_table
from imbal.errors import DataError, MissingFileError
from imbal.naming import SPLITS


def normalise_in_mask(volume: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] over the non-zero voxels (the brain mask); background stays 0.

    The volume must be finite: one NaN would make the min and max NaN and the whole mask constant.
    """
    volume = np.asarray(volume, dtype=np.float64)
    if not np.isfinite(volume).all():
        raise DataError(f"volume holds {int(np.count_nonzero(~np.isfinite(volume)))} NaN/inf voxel(s)")
    mask = volume != 0
    out = np.zeros(volume.shape, dtype=np.float32)
    if not mask.any():
        return out
    inside = volume[mask]
    lo, hi = inside.min(), inside.max()
    # halved so that hi - lo cannot overflow for intensities near the float64 limit
    span = hi / 2 - lo / 2
    out[mask] = np.clip((inside / 2 - lo / 2) / span, 0.0, 1.0) if span > 0 else 1.0
    return out


def centre_crop_or_pad(volume: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """The centre ``size`` window of a 3D volume, each axis cropped or zero-padded symmetrically."""
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


def read_volume(path: Path, where: str) -> np.ndarray:
    """One 3D scalar volume; an unreadable, non-3D or non-finite one is a :class:`DataError`."""
    import nibabel as nib

    try:
        data = np.asanyarray(nib.load(str(path)).dataobj)  # type: ignore[attr-defined]  # every NIfTI image has it
    except MemoryError:
        raise
    except Exception as exc:  # nibabel raises ImageFileError, EOFError, zlib/gzip errors, ... for bad files
        raise DataError(
            f"{path} ({where}) is not a readable NIfTI volume ({exc_text(exc)}); re-export it or fix the CSV"
        ) from exc
    if data.dtype.kind not in "biuf":
        raise DataError(
            f"{path} ({where}): voxel dtype {data.dtype}; expected one scalar (int or float) per voxel"
        )
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"{path} ({where}): expected a 3D volume, got shape={data.shape}")
    if data.dtype.kind == "f" and (bad := int(np.count_nonzero(~np.isfinite(data)))):
        raise DataError(
            f"{path} ({where}): {bad} NaN/inf voxel(s) of {data.size}; replace them (e.g. with 0, the "
            "background) before loading"
        )
    return data


def read_channel(path: Path, size: tuple[int, int, int], where: str) -> np.ndarray:
    """One volume as one uint8 channel: read, normalised in its mask, centre cropped/padded to ``size``."""
    vol = centre_crop_or_pad(normalise_in_mask(read_volume(path, where)), size)
    return np.rint(vol * 255).astype(np.uint8)


def _read_volumes(
    csv: Path, df: Any, sequence_columns: list[str], image_dir: Path, size3: tuple[int, int, int]
) -> np.ndarray:
    """Every case's volumes, one channel per sequence column, as uint8 ``(N, C, D, H, W)``."""
    volumes = np.zeros((len(df), len(sequence_columns), *size3), dtype=np.uint8)
    for i, row in enumerate(df[sequence_columns].itertuples(index=False)):
        for j, col in enumerate(sequence_columns):
            path = image_dir / str(row[j])
            where = f"{csv} line {i + 2}, column {col!r}"
            if not path.is_file():
                raise MissingFileError(f"{where}: volume {path} does not exist")
            volumes[i, j] = read_channel(path, size3, where)
    return volumes


def load_nifti_csv(
    csv: str | Path,
    *,
    sequence_columns: list[str],
    label_column: str = "label",
    class_names_column: str | None = None,
    split_column: str | None = None,
    group_column: str | None = None,
    classes: list[str] | None = None,
    image_dir: str | Path | None = None,
    size: int | tuple[int, int, int] = 96,
    fractions: tuple[float, float, float] = (0.65, 0.1, 0.25),
    seed: int = 0,
    name: str | None = None,
) -> Splits:
    """Load NIfTI volumes (via nibabel); each sequence column becomes one channel.

    Intensities are normalised to [0, 1] within the non-zero mask, centre cropped/padded to
    ``size`` and stored as uint8 (1/255 steps) so that the set sits in memory like the others.
    Labels and classes as in :func:`~imbal.data.folder.load_image_folder`.
    """
    if isinstance(sequence_columns, str) or not sequence_columns:
        raise DataError(f"sequence_columns must be a non-empty list of CSV columns, got {sequence_columns!r}")
    size3 = (
        (size,) * 3
        if isinstance(size, int | np.integer)
        else tuple(size)
        if isinstance(size, list | tuple)
        else ()
    )
    if len(size3) != 3 or not all(isinstance(v, int | np.integer) and v >= 1 for v in size3):
        raise DataError(f"size must be a positive integer or three of them (D, H, W), got {size!r}")
    csv = Path(csv)
    columns = dict.fromkeys(sequence_columns, "sequence_columns") | {label_column: "label_column"}
    df = read_table(
        csv,
        columns
        | ({split_column: "split_column"} if split_column else {})
        | ({group_column: "group_column"} if group_column else {}),
    )
    image_dir = Path(image_dir) if image_dir else csv.parent
    labels, names = labels_from_frame(df, label_column, class_names_column, csv, classes)
    groups = group_ids(df, group_column, csv)
    channels = len(sequence_columns)
    idx = frame_splits(csv, df, labels, names, (split_column, fractions, seed), (channels, *size3), groups)
    images = torch.from_numpy(_read_volumes(csv, df, sequence_columns, image_dir, size3))
    return make_splits(
        {s: images[idx[s]] for s in SPLITS},
        {s: labels[idx[s]] for s in SPLITS},
        num_classes=len(names),
        class_names=names,
        name=name or csv.stem,
        source=str(csv),
        groups=None if groups is None else {s: groups[idx[s].numpy()] for s in SPLITS},
    )
