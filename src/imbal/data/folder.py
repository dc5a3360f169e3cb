"""2D images in a folder, labels in a CSV (e.g. the study's glaucoma set: ``Class,Class_Int,Filename``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from imbal.data.dataset import ImageDataset, Splits, stratified_split


def read_image(path: Path, size: int, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB" if channels == 3 else "L").resize((size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def split_frame(
    df: pd.DataFrame,
    labels: torch.Tensor,
    split_column: str | None,
    fractions: tuple[float, float, float],
    seed: int,
) -> dict[str, torch.Tensor]:
    """Indices per split: from ``split_column`` (train/val/test) when given, else stratified."""
    if split_column:
        if split_column not in df.columns:
            raise ValueError(f"split column {split_column!r} not in CSV columns {list(df.columns)}")
        values = df[split_column].astype(str).str.lower()
        bad = sorted(set(values) - {"train", "val", "test"})
        if bad:
            raise ValueError(f"split column {split_column!r} must hold train/val/test, got {bad}")
        return {s: torch.from_numpy(np.flatnonzero(values.to_numpy() == s)) for s in ("train", "val", "test")}
    parts = stratified_split(labels, fractions, seed)
    return dict(zip(("train", "val", "test"), parts))


def labels_from_frame(df: pd.DataFrame, label_column: str, class_names_column: str | None):
    if label_column not in df.columns:
        raise ValueError(f"label column {label_column!r} not in CSV columns {list(df.columns)}")
    raw = df[label_column]
    if pd.api.types.is_integer_dtype(raw):
        labels = torch.tensor(raw.to_numpy(), dtype=torch.int64)
        k = int(labels.max()) + 1
        names = [str(i) for i in range(k)]
        if class_names_column and class_names_column in df.columns:
            pairs = dict(zip(raw, df[class_names_column].astype(str)))
            names = [pairs.get(i, str(i)) for i in range(k)]
        return labels, names
    names = sorted(raw.astype(str).unique())
    lookup = {n: i for i, n in enumerate(names)}
    return torch.tensor([lookup[v] for v in raw.astype(str)], dtype=torch.int64), names


def load_image_folder(
    csv: str | Path,
    *,
    image_dir: str | Path | None = None,
    filename_column: str = "Filename",
    label_column: str = "Class_Int",
    class_names_column: str | None = "Class",
    split_column: str | None = None,
    size: int = 240,
    channels: int = 3,
    fractions: tuple[float, float, float] = (0.65, 0.1, 0.25),
    seed: int = 0,
    name: str | None = None,
) -> Splits:
    """Read every image listed in ``csv`` (resized to ``size``), into uint8 memory.

    Splits come from ``split_column`` or a stratified split with ``fractions`` (train, val, test);
    the study used 3/4 train and 1/4 test, here a part of its train becomes validation.
    """
    csv = Path(csv)
    df = pd.read_csv(csv)
    if filename_column not in df.columns:
        raise ValueError(f"filename column {filename_column!r} not in CSV columns {list(df.columns)}")
    image_dir = Path(image_dir) if image_dir else csv.parent
    labels, names = labels_from_frame(df, label_column, class_names_column)
    missing = [f for f in df[filename_column] if not (image_dir / str(f)).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} image(s) listed in {csv} are missing in {image_dir}: {missing[:3]}"
        )
    images = torch.from_numpy(
        np.stack([read_image(image_dir / str(f), size, channels) for f in df[filename_column]])
    )
    idx = split_frame(df, labels, split_column, fractions, seed)
    full = ImageDataset(images, labels, len(names), name or csv.stem, names)
    return Splits(
        full.subset(idx["train"]), full.subset(idx["val"]), full.subset(idx["test"]), source=str(csv)
    )
