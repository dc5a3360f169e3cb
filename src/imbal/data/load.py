"""Resolve a data-set spec (a name, a path or a mapping with ``kind``) to its loader: the loaders table."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imbal.data.cache import load_cache
from imbal.data.dataset import Splits
from imbal.data.folder import load_image_folder
from imbal.data.medmnist import load_medmnist
from imbal.data.medmnist_info import MEDMNIST
from imbal.data.nifti import load_nifti_csv
from imbal.data.npz import load_npz
from imbal.data.synthetic_set import synthetic
from imbal.errors import DataError

LOADERS: dict[str, Callable[..., Splits]] = {
    "medmnist": load_medmnist,
    "npz": load_npz,
    "folder": load_image_folder,
    "nifti": load_nifti_csv,
    "synthetic": synthetic,
    "cache": load_cache,
}
KINDS = tuple(LOADERS)
# what each kind's required key is, for the message when it is missing
REQUIRED_HELP = {
    ("medmnist", "name"): "a MedMNIST name",
    ("npz", "path"): "the .npz file",
    ("folder", "csv"): "the CSV listing the images and their labels",
    ("nifti", "csv"): "the CSV listing the volumes and their labels",
    ("nifti", "sequence_columns"): "the CSV columns naming one volume each",
    ("cache", "path"): "the folder `imbal data prepare` wrote",
}
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _load_kind(kind: str, spec: dict[str, Any]) -> Splits:
    """Call the loader of ``kind`` with ``spec``, whose keys must be that loader's arguments."""
    params = inspect.signature(LOADERS[kind]).parameters
    accepted = [n for n, p in params.items() if p.kind not in _VARIADIC]
    unknown = sorted((k for k in spec if k not in accepted), key=str)
    if unknown:
        raise DataError(
            f"dataset {{kind: {kind}}} has unknown key(s) {unknown}; {kind} accepts {', '.join(accepted)}"
        )
    missing = [n for n in accepted if params[n].default is inspect.Parameter.empty and n not in spec]
    if missing:
        need = ", ".join(f"{n!r} ({REQUIRED_HELP.get((kind, n), 'required')})" for n in missing)
        raise DataError(f"dataset {{kind: {kind}}} needs {need}")
    if kind == "synthetic" and isinstance(spec.get("class_ratios"), list):
        spec["class_ratios"] = tuple(spec["class_ratios"])
    return LOADERS[kind](**spec)


def load_dataset(spec: str | dict[str, Any], *, size: int = 28, root: str | None = None) -> Splits:
    """Resolve a dataset spec: a MedMNIST name, a path to an npz, or a dict with ``kind``.

    Dict forms: ``{kind: medmnist, name, size}``, ``{kind: npz, path}``, ``{kind: folder, csv, ...}``
    (see :func:`load_image_folder`), ``{kind: nifti, csv, sequence_columns, ...}``,
    ``{kind: synthetic, spatial_dims, n, class_ratios, size, seed}``, ``{kind: cache, path, verify}``
    (a folder written by ``imbal data prepare``; a plain folder path works too), whose splits are
    disk-backed :class:`DiskDataset` s (see :func:`place`). The other keys of a kind are its
    loader's keyword arguments, plus ``label`` (any kind: the name used in run paths and reports) and
    ``ordinal`` (any kind: true when the classes are ordered grades; MedMNIST sets bring their own);
    an unknown key is an error that lists them. Every result passes
    :meth:`Splits.check` (non-empty splits, one class set, two or more training classes, one shape).
    """
    if isinstance(spec, str):
        if spec.lower() in MEDMNIST:
            splits = load_medmnist(spec, size=size, root=root)
        elif spec.lower() in ("synthetic", "synthetic2d", "synthetic3d"):
            splits = synthetic(spatial_dims=3 if spec.lower().endswith("3d") else 2, size=size)
        elif spec.endswith(".npz"):
            splits = load_npz(spec)
        elif Path(spec).expanduser().is_dir():
            splits = load_cache(spec)
        else:
            raise DataError(
                f"dataset {spec!r} is neither a MedMNIST name ({', '.join(sorted(MEDMNIST))}), 'synthetic', "
                "a path ending in .npz, nor a prepared cache folder"
            )
        return splits.check()
    if not isinstance(spec, dict) or "kind" not in spec:
        raise DataError(
            f"dataset must be a name, an npz path or a mapping with 'kind' in {KINDS}, got {spec!r}"
        )
    spec = dict(spec)
    # `label` names the data in run paths and reports (imbal.engine.run_dir.dataset_label), for every kind
    spec.pop("label", None)
    # `ordinal` marks ordered grades (any kind; a MedMNIST set brings its own flag)
    ordinal = spec.pop("ordinal", None)
    if ordinal is not None and not isinstance(ordinal, bool):
        raise DataError(f"dataset key 'ordinal' must be true or false, got {ordinal!r}")
    kind = spec.pop("kind")
    if not isinstance(kind, str) or kind not in LOADERS:
        raise DataError(f"unknown dataset kind {kind!r}; expected one of {KINDS}")
    if kind == "medmnist":
        spec.setdefault("size", size)
        spec.setdefault("root", root)
    splits = _load_kind(kind, spec)
    if ordinal is not None:
        splits.ordinal = ordinal
    return splits.check()
