"""MedMNIST-format npz files: six arrays ``{train,val,test}_{images,labels}``, 2D gray/RGB or 3D.

Pixel values (one rule for the whole file, decided over all three splits together, so that train
and test can never be scaled differently):

- uint8 images are used as they are;
- other integer images must lie in 0..255;
- float images must be finite, and either all lie in [0, 1] (multiplied by 255) or all in
  [0, 255] (rounded); anything else is refused: rescale to [0, 1] or [0, 255] first. A float
  split within [0, 1] beside a split that exceeds 1 is refused too (two scales in one file).

Labels must be non-negative integers (float labels only when every value is a whole number).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from imbal.data.dataset import Splits, exc_text, make_splits
from imbal.data.medmnist_info import MedMNISTInfo
from imbal.errors import DataError, MissingFileError
from imbal.naming import SPLITS

IMAGE_RULE = "uint8, integers in 0..255, or finite floats all in [0, 1] or all in [0, 255]"


def scale_images(arrays: dict[str, np.ndarray], path: str | Path = "") -> dict[str, np.ndarray]:
    """Per-split images to uint8 by the module's one rule (see the module docstring)."""
    for s, a in arrays.items():
        if a.dtype.kind not in "uif":
            raise DataError(f"{path}: {s}_images has dtype {a.dtype}; expected {IMAGE_RULE}")
    if all(a.dtype == np.uint8 for a in arrays.values()):
        return arrays
    for s, a in arrays.items():
        if a.dtype.kind == "f" and (bad := int(np.count_nonzero(~np.isfinite(a)))):
            raise DataError(
                f"{path}: {s}_images holds {bad} NaN/inf value(s) of {a.size}; replace or drop those images"
            )
    ranges = {s: (float(a.min()), float(a.max())) for s, a in arrays.items() if a.size}
    lo = min((r[0] for r in ranges.values()), default=0.0)
    hi = max((r[1] for r in ranges.values()), default=0.0)
    span = ", ".join(f"{s} [{r[0]:g}, {r[1]:g}]" for s, r in ranges.items())
    if any(a.dtype.kind == "f" for a in arrays.values()) and lo >= 0.0 and hi <= 1.0:
        scale = 255.0
    elif lo >= 0.0 and hi <= 255.0:
        scale = 1.0
        # rounding a [0, 1] split beside a [0, 255] one would crush it to {0, 1}
        small = [s for s, a in arrays.items() if a.dtype.kind == "f" and s in ranges and ranges[s][1] <= 1.0]
        if small:
            raise DataError(
                f"{path}: {', '.join(small)} images lie in [0, 1] but the others reach {hi:g} ({span}); "
                "store every split on one scale, [0, 1] or [0, 255]"
            )
    else:
        raise DataError(
            f"{path}: images span [{lo:g}, {hi:g}] ({span}); expected {IMAGE_RULE}: rescale them to "
            "[0, 1] or [0, 255]"
        )
    return {s: np.rint(a.astype(np.float64) * scale).astype(np.uint8) for s, a in arrays.items()}


def images_to_tensor(array: np.ndarray, spatial_dims: int | None = None, where: str = "") -> torch.Tensor:
    """MedMNIST layouts to ``(N, C, *spatial)`` uint8.

    2D: ``(N, H, W)`` gray or ``(N, H, W, C)`` with C in 1..4; 3D: ``(N, D, H, W)`` or
    ``(N, D, H, W, C)``. An ``(N, a, b, c)`` array is 2D channels-last when ``c <= 4`` unless
    ``spatial_dims`` says otherwise. Non-uint8 input goes through :func:`scale_images`.
    """
    if array.dtype != np.uint8:
        array = scale_images({"": array}, where)[""]
    if spatial_dims is None:
        if array.ndim == 3:
            spatial_dims = 2
        elif array.ndim == 4:
            spatial_dims = 2 if array.shape[-1] <= 4 else 3
        elif array.ndim == 5:
            spatial_dims = 3
        else:
            raise DataError(
                f"{where}: images must have 3 to 5 dims (N, *spatial[, C]), got shape={array.shape}"
            )
    if array.ndim not in (spatial_dims + 1, spatial_dims + 2):
        raise DataError(f"{where}: images of shape {array.shape} do not fit spatial_dims={spatial_dims}")
    if 0 in array.shape[1:]:
        raise DataError(f"{where}: images of shape {array.shape} have an empty channel or spatial axis")
    t = torch.from_numpy(np.ascontiguousarray(array))
    if t.ndim == spatial_dims + 1:
        return t.unsqueeze(1)
    return t.movedim(-1, 1).contiguous()


def labels_to_tensor(array: np.ndarray, path: str | Path = "", split: str = "") -> torch.Tensor:
    """``(N,)`` or ``(N, 1)`` non-negative whole numbers to int64 (never truncating 1.7 to 1)."""
    where = f"{path}: {split}_labels" if split else f"{path}: labels"
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"{where} must have shape (N,) or (N, 1) for single-label classification, got shape="
            f"{array.shape} (multi-label sets such as ChestMNIST are not supported)"
        )
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where} have dtype {array.dtype}; expected integer class indices")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            raise DataError(
                f"{where}: {int(bad.sum())} label(s) are not whole numbers (e.g. {array[bad][0].item()!r}); "
                "expected integer class indices"
            )
    if array.size and array.min() < 0:
        neg = array[array < 0]
        raise DataError(
            f"{where}: {neg.size} negative label(s) (e.g. {neg[0].item()!r}); expected class indices 0..K-1"
        )
    if array.size and array.max() > np.iinfo(np.int64).max // 2:
        raise DataError(f"{where}: label {array.max().item()!r} is not a plausible class index")
    return torch.from_numpy(array.astype(np.int64))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The six arrays of a MedMNIST-format npz; any unreadable file becomes a :class:`DataError`."""
    try:
        z = np.load(path, allow_pickle=False)
    except MemoryError:
        raise
    except Exception as exc:  # numpy/zipfile raise many types (BadZipFile, EOFError, ValueError, ...)
        raise DataError(
            f"{path} is not a readable npz archive (corrupt or truncated): {exc_text(exc)}"
        ) from exc
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds a single array (an .npy file), not an npz archive of six arrays")
    with z:
        wanted = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels")]
        missing = [k for k in wanted if k not in z.files]
        if missing:
            raise DataError(f"{path} is not MedMNIST-format: missing keys {missing}; has {sorted(z.files)}")
        try:
            return {k: z[k] for k in wanted}
        except MemoryError:
            raise
        except Exception as exc:  # a damaged member: bad CRC, short data, bad header, object dtype
            raise DataError(
                f"{path} is not a readable npz archive (corrupt or truncated): {exc_text(exc)}"
            ) from exc


def official_medmnist(path: Path, counts: dict[str, int]) -> MedMNISTInfo | None:
    """The MedMNIST set whose official file ``path`` is, recognised by its MD5, else None.

    The MD5 is read only when the split sizes are an official set's, so other files cost nothing.
    """
    from imbal.data.medmnist_info import MEDMNIST

    candidates = [info for info in MEDMNIST.values() if info.n_samples == counts]
    if not candidates:
        return None
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    md5 = h.hexdigest()
    return next((info for info in candidates if md5 in info.md5.values()), None)


def load_npz(
    path: str | Path,
    *,
    name: str | None = None,
    spatial_dims: int | None = None,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> Splits:
    """Load any MedMNIST-format npz into checked :class:`Splits` (no pickle; uint8 in memory).

    The classes are ``num_classes`` / ``class_names`` when given, else those of the official
    MedMNIST set when the file is one (by MD5, whatever its name), else those of the training
    split (0 .. its largest label); a label outside them in any split is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no npz file at {path}")
    arrays = read_npz(path)
    labels = {s: labels_to_tensor(arrays[f"{s}_labels"], path, s) for s in SPLITS}
    if name is None and num_classes is None and class_names is None:
        info = official_medmnist(path, {s: len(labels[s]) for s in SPLITS})
        if info is not None:
            name, num_classes, class_names = info.name, info.num_classes, list(info.class_names)
            spatial_dims = spatial_dims or info.spatial_dims
    scaled = scale_images({s: arrays[f"{s}_images"] for s in SPLITS}, path)
    images = {s: images_to_tensor(scaled[s], spatial_dims, f"{path}: {s}_images") for s in SPLITS}
    return make_splits(
        images,
        labels,
        num_classes=num_classes,
        class_names=class_names,
        name=name or path.stem,
        source=str(path),
    )
