"""Data: MedMNIST (verified), any MedMNIST-format npz, image folder + CSV, NIfTI + CSV, synthetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imbal.data.augment import Augmentation
from imbal.data.cache import load_cache, prepare_cache
from imbal.data.dataset import ImageDataset, Splits, stratified_split
from imbal.data.folder import load_image_folder
from imbal.data.medmnist import find_medmnist, load_medmnist
from imbal.data.medmnist_info import MEDMNIST
from imbal.data.nifti import load_nifti_csv
from imbal.data.npz import load_npz
from imbal.data.stream import DiskDataset, default_memory_budget, iterate_batches, place, place_splits
from imbal.data.synthetic import synthetic
from imbal.errors import DataError

KINDS = ("medmnist", "npz", "folder", "nifti", "synthetic", "cache")


def load_dataset(spec: str | dict[str, Any], *, size: int = 28, root: str | None = None) -> Splits:
    """Resolve a dataset spec: a MedMNIST name, a path to an npz, or a dict with ``kind``.

    Dict forms: ``{kind: medmnist, name, size}``, ``{kind: npz, path}``, ``{kind: folder, csv, ...}``
    (see :func:`load_image_folder`), ``{kind: nifti, csv, sequence_columns, ...}``,
    ``{kind: synthetic, spatial_dims, n, class_ratios, size, seed}``, ``{kind: cache, path, verify}``
    (a folder written by ``imbal data prepare``; a plain folder path works too), whose splits are
    disk-backed :class:`DiskDataset` s (see :func:`place`).
    """
    if isinstance(spec, str):
        if spec.lower() in MEDMNIST:
            return load_medmnist(spec, size=size, root=root)
        if spec.lower() in ("synthetic", "synthetic2d", "synthetic3d"):
            return synthetic(spatial_dims=3 if spec.lower().endswith("3d") else 2, size=size)
        if spec.endswith(".npz"):
            return load_npz(spec)
        if Path(spec).expanduser().is_dir():
            return load_cache(spec)
        raise DataError(
            f"dataset {spec!r} is neither a MedMNIST name ({', '.join(sorted(MEDMNIST))}), 'synthetic', "
            "a path ending in .npz, nor a prepared cache folder"
        )
    if not isinstance(spec, dict) or "kind" not in spec:
        raise DataError(
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
    if kind == "cache":
        if "path" not in spec:
            raise DataError("dataset {kind: cache} needs 'path': the folder `imbal data prepare` wrote")
        return load_cache(spec.pop("path"), **spec)
    raise DataError(f"unknown dataset kind {kind!r}; expected one of {KINDS}")


__all__ = [
    "KINDS",
    "MEDMNIST",
    "Augmentation",
    "DiskDataset",
    "ImageDataset",
    "Splits",
    "default_memory_budget",
    "find_medmnist",
    "iterate_batches",
    "load_cache",
    "load_dataset",
    "load_image_folder",
    "load_medmnist",
    "load_nifti_csv",
    "load_npz",
    "place",
    "place_splits",
    "prepare_cache",
    "stratified_split",
    "synthetic",
]
