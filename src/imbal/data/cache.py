"""Prepared caches: a data set decoded once into per-split uint8 ``.npy`` files plus a manifest.

Layout of a cache folder::

    manifest.json                      format version, source spec, settings, shapes, checksums
    {train,val,test}_images.npy        uint8 (N, C, *spatial), C order (np.load(mmap_mode="r") works)
    {train,val,test}_labels.npy        int64 (N,)

A cache is built in a temporary sibling folder ``.<name>.tmp-<pid>-<token>`` and renamed into
place only once every file and the manifest are written and synced, so a folder named like the
cache is always complete; a killed build leaves only the temporary folder, which the next
:func:`~imbal.data.prepare.prepare_cache` removes. Loading returns disk-backed sets (:class:`~imbal.data.stream.DiskDataset`);
:func:`~imbal.data.stream.place` keeps the ones that fit the memory budget in memory.

Limit: the build goes through :func:`~imbal.data.load_dataset`, whose loaders decode a whole
source into memory, so preparing needs the decoded set to fit in RAM once (training from the
cache afterwards does not). Writing per sample while decoding would lift that, but needs
streaming loaders.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

import imbal
from imbal.data.cache_manifest import (
    CHECKSUM,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    check_cache,
    content_checksum,
    images_file,
    labels_file,
    manifest_checksum,
    npy_header,
    read_manifest,
    sha256_file,
)
from imbal.data.dataset import Splits
from imbal.data.stream import DiskDataset, DiskImages
from imbal.errors import DataError
from imbal.naming import SPLITS
from imbal.processes import pid_alive

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "cache_folder",
    "check_cache",
    "content_checksum",
    "images_file",
    "labels_file",
    "load_cache",
    "read_manifest",
    "sha256_file",
    "write_cache",
]
PATH_KEYS = ("path", "csv", "image_dir", "root")  # spec entries naming files, made absolute
_CHUNK = 16 << 20
# what a user can fix (permissions, a read-only or full disk): one line, not a traceback
_USER_OS_ERRORS = (
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.EEXIST,
)


def normalize_source(spec: str | dict[str, Any]) -> str | dict[str, Any]:
    """The spec as recorded in a manifest: file paths made absolute, so the cwd does not matter."""
    if isinstance(spec, str):
        from imbal.data.medmnist_info import MEDMNIST

        if spec.lower() in MEDMNIST or spec.lower().startswith("synthetic"):
            return spec.lower()
        return str(Path(spec).expanduser().absolute())
    out = dict(spec)
    for key in PATH_KEYS:
        if isinstance(out.get(key), str):
            out[key] = str(Path(out[key]).expanduser().absolute())
    # JSON round trip: tuples become lists, as they will read back from the manifest
    return json.loads(json.dumps(out))


def describe_source(source: Any, settings: dict[str, Any]) -> str:
    spec = source if isinstance(source, str) else json.dumps(source, sort_keys=True)
    return f"{spec} ({', '.join(f'{k} {v}' for k, v in settings.items())})"


class _HashingWriter:
    """A file that hashes what goes through it (the header that numpy writes included)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes | np.ndarray) -> int:
        view = memoryview(data).cast("B")  # type: ignore[arg-type]  # an ndarray is a buffer
        self.sha.update(view)
        self.size += len(view)
        return self.f.write(view)


def _write_npy(path: Path, array: np.ndarray | DiskImages) -> dict[str, Any]:
    """Write a C-order ``.npy`` in chunks (a disk-backed source is never read whole); size and sha256."""
    shape = tuple(array.shape)
    dtype = np.dtype(np.uint8) if isinstance(array, DiskImages) else array.dtype
    per_row = max(1, _CHUNK // max(1, dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))))
    with open(path, "wb") as f:
        w = _HashingWriter(f)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(w, header)
        for start in range(0, shape[0], per_row):
            chunk = array[start : start + per_row]
            chunk = chunk.numpy() if isinstance(chunk, torch.Tensor) else chunk
            w.write(np.ascontiguousarray(chunk).reshape(-1).view(np.uint8))
        f.flush()
        os.fsync(f.fileno())
    return {"bytes": w.size, "sha256": w.sha.hexdigest()}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CacheTaken(DataError):
    """Another build put a cache at ``out`` while this one was being built; nothing was replaced."""

    def __init__(self, message: str, manifest: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.manifest = manifest


def _peek_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def identity(folder: Path) -> str | None:
    """What is at ``folder`` now, for "is it still the one I judged": None when absent or empty."""
    try:
        names = sorted(p.name for p in folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not names:
        return None
    manifest = _peek_manifest(folder)
    return manifest_checksum(manifest) if manifest is not None else "files: " + ", ".join(names)


def _what(manifest: dict[str, Any] | None) -> str:
    if manifest is None:
        return "an unfinished or unreadable cache"
    return f"a cache of {describe_source(manifest.get('source'), manifest.get('settings') or {})}"


def _put_in_place(tmp: Path, out: Path, replaces: str | None, ours: str) -> None:
    """Rename the finished build ``tmp`` to ``out``, replacing only the folder judged before the build.

    ``replaces`` is the :func:`identity` of what was at ``out`` then (None: nothing). A rename onto
    an absent or empty folder is atomic and never replaces a cache; a cache that appeared, or one
    other than the judged one, is left in place and :class:`CacheTaken` says what it holds.
    """
    try:
        os.rename(tmp, out)  # fails on a non-empty folder: never replaces a cache by itself
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    found = identity(out)
    if replaces is None or found != replaces:
        manifest = _peek_manifest(out)
        if replaces is None:
            text = f"{out}: another prepare built {_what(manifest)} while this one built {ours}"
        else:
            text = f"{out} was replaced by another prepare while this one built {ours} (it holds {_what(manifest)})"
        raise CacheTaken(
            f"{text}; nothing was replaced: pass --force to replace it, or choose another --out", manifest
        )
    old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(out, old)
    if identity(old) != replaces:  # replaced between our look and our rename: put it back
        with contextlib.suppress(OSError):
            os.rename(old, out)
        manifest = _peek_manifest(out)
        raise CacheTaken(
            f"{out} was replaced by another prepare while this one built {ours}; nothing was replaced: "
            "pass --force to replace it, or choose another --out",
            manifest,
        )
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def user_os_error(exc: OSError, what: str) -> DataError | None:
    if exc.errno not in _USER_OS_ERRORS:
        return None
    why = "a part of that path is a file" if exc.errno in (errno.EEXIST, errno.ENOTDIR) else exc.strerror
    return DataError(f"cannot {what}: {why}; choose a writable --out")


def write_cache(
    splits: Splits,
    out: str | Path,
    *,
    source: Any = None,
    settings: dict[str, Any] | None = None,
    replaces: str | None = None,
) -> Path:
    """Write ``splits`` as a cache at ``out``, atomically as a folder.

    ``out`` must be absent or empty, or hold the folder whose :func:`identity` is ``replaces``
    (which is then replaced); anything else raises :class:`CacheTaken`.
    """
    out = Path(out).expanduser().absolute()
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(tmp)  # plain mkdir: the user's umask applies, as to any of their files
    except OSError as exc:
        raise user_os_error(exc, f"create the cache folder {out}") or exc from None
    try:
        _write_files(splits, tmp, source, settings or {})
        _put_in_place(tmp, out, replaces, describe_source(source, settings or {}))
        _fsync_dir(out.parent)
    except OSError as exc:
        raise user_os_error(exc, f"write the cache {out}") or exc from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_files(splits: Splits, tmp: Path, source: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The six arrays and the manifest (with its checksum), written and synced into ``tmp``."""
    files, split_info = {}, {}
    for split in SPLITS:
        data = splits[split]
        images = data.images.cpu().numpy() if isinstance(data.images, torch.Tensor) else data.images
        files[images_file(split)] = _write_npy(tmp / images_file(split), images)
        files[labels_file(split)] = _write_npy(tmp / labels_file(split), data.labels.cpu().numpy())
        split_info[split] = {
            "count": len(data),
            "images_shape": list(images.shape),
            "class_counts": data.class_counts.tolist(),
        }
    train = splits.train
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "imbal_version": imbal.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "settings": settings,
        "origin": splits.source,
        "name": train.name,
        "synthetic": bool(train.synthetic),
        "ordinal": bool(splits.ordinal),
        "num_classes": train.num_classes,
        "class_names": list(train.class_names),
        "spatial_dims": train.spatial_dims,
        "in_channels": train.in_channels,
        "spatial_size": list(train.spatial_size),
        "splits": split_info,
        "files": files,
    }
    manifest[CHECKSUM] = manifest_checksum(manifest)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    with open(tmp / MANIFEST, "rb+") as f:
        os.fsync(f.fileno())
    _fsync_dir(tmp)
    return manifest


def remove_stale_builds(out: Path) -> list[Path]:
    """Delete temporary folders of builds of ``out`` whose process is gone (killed builds)."""
    removed = []
    for tmp in out.parent.glob(f".{glob.escape(out.name)}.*-*-*"):
        kind, _, rest = tmp.name[len(out.name) + 2 :].partition("-")
        pid = rest.split("-")[0]
        if kind in ("tmp", "old") and pid.isdigit() and not pid_alive(int(pid)) and tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def load_cache(path: str | Path, *, verify: bool = False) -> Splits:
    """The splits of a prepared cache as disk-backed sets (see :func:`check_cache` for ``verify``)."""
    path = Path(path).expanduser().absolute()
    manifest = read_manifest(path)
    check_cache(path, manifest, verify=verify)
    out = {}
    for split in SPLITS:
        file = path / images_file(split)
        shape, _, offset = npy_header(file)
        labels = torch.from_numpy(np.load(path / labels_file(split), allow_pickle=False))
        out[split] = DiskDataset(
            DiskImages(file, offset, shape),
            labels,
            manifest["num_classes"],
            manifest["name"],
            list(manifest["class_names"]),
            manifest["synthetic"],
        )
    origin = manifest.get("origin") or describe_source(manifest["source"], manifest["settings"])
    # caches written before the flag existed hold no "ordinal": their classes count as unordered
    ordinal = bool(manifest.get("ordinal", False))
    return Splits(out["train"], out["val"], out["test"], f"{origin} (prepared cache {path})", ordinal)


def cache_folder(splits: Splits) -> Path | None:
    """The one cache folder all three splits read from (a subset of a split counts), else None."""
    folders = set()
    for split in SPLITS:
        data = splits[split]
        if not isinstance(data, DiskDataset):
            return None
        if data.images.path.name != images_file(split):
            return None
        folders.add(data.images.path.parent)
    return folders.pop() if len(folders) == 1 else None
