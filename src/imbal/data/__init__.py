"""Data: MedMNIST (verified), any MedMNIST-format npz, image folder + CSV, NIfTI + CSV, synthetic.

The names below are imported on first use (a module ``__getattr__``, PEP 562): the loaders import
torch, which costs seconds, and ``imbal data list`` or ``imbal --help`` need none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from imbal.data.augment import Augmentation
    from imbal.data.cache import load_cache
    from imbal.data.dataset import ImageDataset, Splits, check_splits, stratified_split
    from imbal.data.folder import load_image_folder
    from imbal.data.load import KINDS, LOADERS, load_dataset
    from imbal.data.medmnist import find_medmnist, load_medmnist
    from imbal.data.medmnist_info import MEDMNIST
    from imbal.data.nifti import load_nifti_csv
    from imbal.data.npz import load_npz
    from imbal.data.prepare import prepare_cache
    from imbal.data.stream import DiskDataset, default_memory_budget, iterate_batches, place, place_splits
    from imbal.data.synthetic_set import synthetic

# the submodule that defines each public name
_HOMES = {
    "Augmentation": "augment",
    "load_cache": "cache",
    "prepare_cache": "prepare",
    "ImageDataset": "dataset",
    "Splits": "dataset",
    "check_splits": "dataset",
    "stratified_split": "dataset",
    "load_image_folder": "folder",
    "KINDS": "load",
    "LOADERS": "load",
    "load_dataset": "load",
    "find_medmnist": "medmnist",
    "load_medmnist": "medmnist",
    "MEDMNIST": "medmnist_info",
    "load_nifti_csv": "nifti",
    "load_npz": "npz",
    "DiskDataset": "stream",
    "default_memory_budget": "stream",
    "iterate_batches": "stream",
    "place": "stream",
    "place_splits": "stream",
    "synthetic": "synthetic_set",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value  # found directly from now on
    return value


__all__ = [
    "KINDS",
    "LOADERS",
    "MEDMNIST",
    "Augmentation",
    "DiskDataset",
    "ImageDataset",
    "Splits",
    "check_splits",
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
