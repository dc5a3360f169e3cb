"""Data: MedMNIST (verified), any MedMNIST-format npz, image folder + CSV, NIfTI + CSV, synthetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imbal.data.augment import Augmentation
from imbal.data.dataset import ImageDataset, Splits, stratified_split
from imbal.data.folder import load_image_folder
from imbal.data.medmnist import find_medmnist, load_medmnist
from imbal.data.medmnist_info import MEDMNIST
from imbal.data.nifti import load_nifti_csv
from imbal.data.npz import load_npz
from imbal.data.synthetic import synthetic

KINDS = ("medmnist", "npz", "folder", "nifti", "synthetic")


def load_dataset(spec: str | dict[str, Any], *, size: int = 28, root: str | None = None) -> Splits:
    """Resolve a dataset spec: a MedMNIST name, a path to an npz, or a dict with ``kind``.

    Dict forms: ``{kind: medmnist, name, size}``, ``{kind: npz, path}``, ``{kind: folder, csv, ...}``
    (see :func:`load_image_folder`), ``{kind: nifti, csv, sequence_columns, ...}``,
    ``{kind: synthetic, spatial_dims, n, class_ratios, size, seed}``.
    """
    if isinstance(spec, str):
        if spec.lower() in MEDMNIST:
            return load_medmnist(spec, size=size, root=root)
        if spec.lower() in ("synthetic", "synthetic2d", "synthetic3d"):
            return synthetic(spatial_dims=3 if spec.lower().endswith("3d") else 2, size=size)
        if spec.endswith(".npz"):
            return load_npz(spec)
        raise ValueError(
            f"dataset {spec!r} is neither a MedMNIST name ({', '.join(sorted(MEDMNIST))}), 'synthetic', "
            "nor a path ending in .npz"
        )
    if not isinstance(spec, dict) or "kind" not in spec:
        raise ValueError(
            f"dataset must be a name, an npz path or a mapping with 'kind' in {KINDS}, got {spec!r}"
        )
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "medmnist":
        return load_medmnist(spec.pop("name"), size=spec.pop("size", size), root=spec.pop("root", root))
    if kind == "npz":
        return load_npz(Path(spec.pop("path")), **spec)
    if kind == "folder":
        return load_image_folder(spec.pop("csv"), **spec)
    if kind == "nifti":
        return load_nifti_csv(spec.pop("csv"), **spec)
    if kind == "synthetic":
        if "class_ratios" in spec:
            spec["class_ratios"] = tuple(spec["class_ratios"])
        return synthetic(**spec)
    raise ValueError(f"unknown dataset kind {kind!r}; expected one of {KINDS}")


__all__ = [
    "KINDS",
    "MEDMNIST",
    "Augmentation",
    "ImageDataset",
    "Splits",
    "find_medmnist",
    "load_dataset",
    "load_image_folder",
    "load_medmnist",
    "load_nifti_csv",
    "load_npz",
    "stratified_split",
    "synthetic",
]
