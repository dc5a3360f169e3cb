"""New, unlabelled inputs for ``imbal predict``: found, checked against a run, decoded one by one.

Decoding is the training loaders' own: image files go through :func:`~imbal.data.folder.read_image`
(converted to the run's gray or RGB and resized to its size, as the folder loader does), volumes
through :func:`~imbal.data.nifti.read_channel` (normalised in the mask, centre cropped/padded), npz
arrays through :func:`~imbal.data.npz.images_to_tensor` (layout and intensity rule of the npz loader,
no resizing). Every item decodes to uint8 ``(C, *spatial)``; what cannot become the run's shape is
refused with the file's name.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imbal.data.dataset import exc_text
from imbal.data.folder import read_image, read_table
from imbal.data.nifti import read_channel
from imbal.data.npz import images_to_tensor
from imbal.errors import DataError, MissingFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class Expected:
    """What a run's model takes: ``(in_channels, *spatial_size)`` uint8 images, and a CSV's sequence columns."""

    in_channels: int
    spatial_size: tuple[int, ...]
    sequence_columns: tuple[str, ...] = ()

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes."""
        return len(self.spatial_size)

    @property
    def shape(self) -> tuple[int, ...]:
        """One decoded input's shape ``(in_channels, *spatial_size)``."""
        return (self.in_channels, *self.spatial_size)


@dataclass(frozen=True)
class Item:
    """One input: its name in the output, its decoder and the files it reads.

    The name is a path, ``file.npz[7]`` or ``cases.csv line 3``; the files are kept so that an
    output is never written over an input.
    """

    name: str
    decode: Callable[[], np.ndarray]
    sources: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """An entry of an input folder that predict does not read, and why."""

    path: Path
    reason: str


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _image_item(path: Path, want: Expected) -> Item:
    if want.spatial_dims != 2:
        raise DataError(
            f"{path} is a 2D image; the run takes {want.spatial_dims}D volumes of shape {want.shape} "
            "(NIfTI files, a CSV of them, or an npz)"
        )
    if want.in_channels not in (1, 3):
        raise DataError(
            f"{path}: an image file gives 1 (gray) or 3 (RGB) channels; the run takes {want.in_channels}: "
            "pass the images as an npz"
        )
    size = (want.spatial_size[0], want.spatial_size[1])
    return Item(str(path), lambda: read_image(path, size, want.in_channels), (path,))


def _volume_item(path: Path, want: Expected) -> Item:
    if want.spatial_dims != 3:
        raise DataError(f"{path} is a NIfTI volume; the run takes 2D images of shape {want.shape}")
    if want.in_channels != 1:
        columns = f" ({', '.join(want.sequence_columns)})" if want.sequence_columns else ""
        raise DataError(
            f"{path}: one volume is one channel; the run takes {want.in_channels} sequences{columns}: "
            "list each case's volumes in a CSV with one column per sequence"
        )
    size = (want.spatial_size[0], want.spatial_size[1], want.spatial_size[2])
    return Item(str(path), lambda: read_channel(path, size, str(path))[None], (path,))


def _csv_items(csv: Path, want: Expected) -> list[Item]:
    """A CSV like the NIfTI loader's: one row per case, one column per sequence (labels not needed)."""
    if want.spatial_dims != 3:
        raise DataError(
            f"{csv}: a CSV lists NIfTI cases; the run takes 2D images (pass the files or a folder)"
        )
    columns = want.sequence_columns
    if not columns:
        raise DataError(
            f"{csv}: which columns name the volumes? The run's data set names no sequence columns; "
            "pass --sequence-columns"
        )
    if len(columns) != want.in_channels:
        raise DataError(
            f"{csv}: {len(columns)} sequence column(s) {list(columns)}, the run takes {want.in_channels} channels"
        )
    df = read_table(csv, dict.fromkeys(columns, "sequence_columns"))
    size = (want.spatial_size[0], want.spatial_size[1], want.spatial_size[2])
    items = []
    for i, row in enumerate(df[list(columns)].itertuples(index=False)):
        paths = [csv.parent / str(v) for v in row]
        where = [f"{csv} line {i + 2}, column {c!r}" for c in columns]
        for path, w in zip(paths, where):
            if not path.is_file():
                raise MissingFileError(f"{w}: volume {path} does not exist")

        def decode(paths: list[Path] = paths, where: list[str] = where) -> np.ndarray:
            return np.stack([read_channel(p, size, w) for p, w in zip(paths, where)])

        items.append(Item(f"{csv} line {i + 2}", decode, (csv, *paths)))
    return items


def _npz_items(path: Path, want: Expected) -> list[Item]:
    """An npz with an ``images`` array (``labels`` ignored); read whole, as numpy reads a member."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise DataError(
                    f"{path} has no 'images' array (it has {sorted(z.files)}); predict reads 'images'"
                )
            array = z["images"]
    except (DataError, MemoryError):
        raise
    except Exception as exc:  # numpy/zipfile raise many types for a damaged file
        raise DataError(f"{path} is not a readable npz archive ({exc_text(exc)})") from exc
    images = images_to_tensor(array, want.spatial_dims, str(path))
    if tuple(images.shape[1:]) != want.shape:
        raise DataError(
            f"{path}: images are (C, *spatial) = {tuple(images.shape[1:])}; the run takes {want.shape} "
            "(npz images are used as they are, never resized)"
        )

    def row(k: int) -> Callable[[], np.ndarray]:
        return lambda: images[k].numpy()

    if not len(images):
        raise DataError(f"{path}: its 'images' array holds no images; nothing to predict")
    return [Item(f"{path}[{k}]", row(k), (path,)) for k in range(len(images))]


def _file_items(path: Path, want: Expected) -> list[Item]:
    suffix = _suffix(path)
    if suffix in IMAGE_SUFFIXES:
        return [_image_item(path, want)]
    if suffix in NIFTI_SUFFIXES:
        return [_volume_item(path, want)]
    if suffix == ".csv":
        return _csv_items(path, want)
    if suffix == ".npz":
        return _npz_items(path, want)
    kinds = ", ".join((*IMAGE_SUFFIXES, *NIFTI_SUFFIXES, ".csv", ".npz"))
    raise DataError(f"{path}: not an input predict reads (files ending in {kinds}, or a folder of them)")


def _folder_entry(entry: Path) -> str | None:
    """Why an entry of an input folder is not read (None: it is an image or NIfTI file)."""
    if entry.is_symlink() and not entry.exists():
        try:
            entry.resolve(strict=True)
        except RuntimeError:
            return "a link that points to itself (a loop)"
        except OSError as exc:
            return "a link in a loop" if exc.errno == errno.ELOOP else "a link to nothing (dangling)"
        return "a link to nothing (dangling)"
    if entry.is_dir():
        return "a folder (input folders are not searched recursively)"
    if not entry.is_file():
        return "not a regular file"
    if _suffix(entry) not in (*IMAGE_SUFFIXES, *NIFTI_SUFFIXES):
        return "not an image or NIfTI file"
    return None


def collect_inputs(paths: Sequence[str | Path], want: Expected) -> tuple[list[Item], list[Skipped]]:
    """Every input of ``paths`` (files, or folders of image / NIfTI files), checked before any is decoded.

    Returns the items in the given order (a folder's files sorted by name) and every entry of the
    folders that was left out, with the reason (subfolders, dangling or looping links, other types):
    reported, never dropped silently.
    """
    items: list[Item] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            usable = []
            for entry in sorted(path.iterdir()):
                reason = _folder_entry(entry)
                if reason is None:
                    usable.append(entry)
                else:
                    skipped.append(Skipped(entry, reason))
            if not usable:
                raise DataError(f"{path} holds no image or NIfTI files")
            for p in usable:
                items += _file_items(p, want)
        elif path.is_file():
            items += _file_items(path, want)
        else:
            raise MissingFileError(f"input {path} does not exist")
    return items, skipped


def decode(item: Item, want: Expected) -> np.ndarray:
    """The item's uint8 ``(C, *spatial)``, checked against the run's shape (a file that decodes otherwise is named)."""
    array = item.decode()
    if tuple(array.shape) != want.shape:
        raise DataError(
            f"{item.name}: decodes to (C, *spatial) = {tuple(array.shape)}; the run takes {want.shape}"
        )
    return array
