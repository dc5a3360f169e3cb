"""Prepared caches: a data set decoded once into per-split uint8 ``.npy`` files plus a manifest.

Layout of a cache folder::

    manifest.json                      format version, source spec, settings, shapes, checksums
    {train,val,test}_images.npy        uint8 (N, C, *spatial), C order (np.load(mmap_mode="r") works)
    {train,val,test}_labels.npy        int64 (N,)

A cache is built in a temporary sibling folder ``.<name>.tmp-<pid>-<token>`` and renamed into
place only once every file and the manifest are written and synced, so a folder named like the
cache is always complete; a killed build leaves only the temporary folder, which the next
:func:`prepare_cache` removes. Loading returns disk-backed sets (:class:`~imbal.data.stream.DiskDataset`);
:func:`~imbal.data.stream.place` keeps the ones that fit the memory budget in memory.

Limit: the build goes through :func:`~imbal.data.load_dataset`, whose loaders decode a whole
source into memory, so preparing needs the decoded set to fit in RAM once (training from the
cache afterwards does not). Writing per sample while decoding would lift that, but needs
streaming loaders.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import imbal
from imbal.data.dataset import Splits
from imbal.data.stream import DiskDataset, DiskImages
from imbal.errors import DataError, MissingFileError
from imbal.processes import pid_alive

FORMAT = "imbal-cache"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
PATH_KEYS = ("path", "csv", "image_dir", "root")  # spec entries naming files, made absolute
_CHUNK = 16 << 20
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def images_file(split: str) -> str:
    return f"{split}_images.npy"


def labels_file(split: str) -> str:
    return f"{split}_labels.npy"


def _cache_files() -> set[str]:
    return {MANIFEST} | {f(s) for s in SPLITS for f in (images_file, labels_file)}


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


def _describe(source: Any, settings: dict[str, Any]) -> str:
    spec = source if isinstance(source, str) else json.dumps(source, sort_keys=True)
    return f"{spec} ({', '.join(f'{k} {v}' for k, v in settings.items())})"


class _HashingWriter:
    """A file that hashes what goes through it (the header that numpy writes included)."""

    def __init__(self, f) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
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


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of an ``.npy`` file (reads the header only)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in _HEADER_READERS:
                raise ValueError(f"npy format version {version}")
            shape, fortran, dtype = _HEADER_READERS[version](f)
            offset = f.tell()
    except (ValueError, OSError, SyntaxError) as exc:
        raise DataError(
            f"{path} is not a readable .npy file ({exc}); rebuild the cache with --force"
        ) from None
    if fortran:
        raise DataError(f"{path} is stored in Fortran order; rebuild the cache with --force")
    return tuple(shape), dtype, offset


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_cache(
    splits: Splits, out: str | Path, *, source: Any = None, settings: dict[str, Any] | None = None
) -> Path:
    """Write ``splits`` as a cache at ``out`` (replacing what is there), atomically as a folder."""
    out = Path(out).expanduser().absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(tmp)  # plain mkdir: the user's umask applies, as to any of their files
    try:
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
            "settings": settings or {},
            "origin": splits.source,
            "name": train.name,
            "synthetic": bool(train.synthetic),
            "num_classes": train.num_classes,
            "class_names": list(train.class_names),
            "spatial_dims": train.spatial_dims,
            "in_channels": train.in_channels,
            "spatial_size": list(train.spatial_size),
            "splits": split_info,
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        with open(tmp / MANIFEST, "rb+") as f:
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            if out.exists():
                os.rename(out, old)
            os.rename(tmp, out)
        except OSError as exc:
            # another build renamed its folder into place between our check and our rename
            raise DataError(
                f"{out} appeared while it was being built ({exc.strerror}); another prepare finished "
                "first: run again to reuse it"
            ) from None
        shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(out.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


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


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(
            f"{path} does not exist; build it with `imbal data prepare SOURCE --out {path}`"
        )
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; a prepared cache is a folder with a {MANIFEST}")
    file = path / MANIFEST
    if not file.is_file():
        raise DataError(
            f"{path} has no {MANIFEST}: not a prepared cache (or an unfinished one); "
            f"rebuild it with `imbal data prepare SOURCE --out {path} --force`"
        )
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{file} is damaged ({exc}); rebuild the cache with --force") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{file} is not an imbal cache manifest; rebuild the cache with --force")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{file} has cache format version {manifest.get('format_version')}, this imbal reads "
            f"{FORMAT_VERSION}; rebuild the cache with --force"
        )
    return manifest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def check_cache(path: str | Path, manifest: dict[str, Any] | None = None, *, verify: bool = False) -> None:
    """Check every file against the manifest: size, ``.npy`` header shape and dtype; checksums if ``verify``.

    Sizes and headers cost a ``stat`` and a few hundred bytes per file and catch what actually
    happens to caches (a truncated copy, a file from another build, a missing file). Checksums
    read every byte, as long as a full epoch for a set too large for memory, so they run on
    request (``verify=True``, ``imbal data prepare --verify``), e.g. after copying a cache.
    """
    path = Path(path)
    manifest = read_manifest(path) if manifest is None else manifest
    try:
        for split in SPLITS:
            info = manifest["splits"][split]
            expected: dict[str, tuple[tuple[int, ...], type[np.generic]]] = {
                images_file(split): (tuple(info["images_shape"]), np.uint8)
            }
            expected[labels_file(split)] = ((info["count"],), np.int64)
            for name, (shape, dtype) in expected.items():
                file, record = path / name, manifest["files"][name]
                if not file.is_file():
                    raise DataError(f"{file} is missing; rebuild the cache with --force")
                if file.stat().st_size != record["bytes"]:
                    raise DataError(
                        f"{file} has {file.stat().st_size} bytes, the manifest says {record['bytes']}: "
                        "truncated or replaced; rebuild the cache with --force"
                    )
                got_shape, got_dtype, _ = _npy_header(file)
                if got_shape != shape or got_dtype != np.dtype(dtype):
                    raise DataError(
                        f"{file} holds {got_dtype} {got_shape}, the manifest says {np.dtype(dtype)} {shape}; "
                        "rebuild the cache with --force"
                    )
                if verify and sha256_file(file) != record["sha256"]:
                    raise DataError(
                        f"{file} fails its sha256 checksum: corrupt; rebuild the cache with --force"
                    )
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path / MANIFEST} lacks an entry ({exc}); rebuild the cache with --force") from None


def load_cache(path: str | Path, *, verify: bool = False) -> Splits:
    """The splits of a prepared cache as disk-backed sets (see :func:`check_cache` for ``verify``)."""
    path = Path(path).expanduser().absolute()
    manifest = read_manifest(path)
    check_cache(path, manifest, verify=verify)
    out = {}
    for split in SPLITS:
        file = path / images_file(split)
        shape, _, offset = _npy_header(file)
        labels = torch.from_numpy(np.load(path / labels_file(split), allow_pickle=False))
        out[split] = DiskDataset(
            DiskImages(file, offset, shape),
            labels,
            int(manifest["num_classes"]),
            str(manifest["name"]),
            list(manifest["class_names"]),
            bool(manifest["synthetic"]),
        )
    origin = manifest.get("origin") or _describe(manifest["source"], manifest["settings"])
    return Splits(out["train"], out["val"], out["test"], source=f"{origin} (prepared cache {path})")


def prepare_cache(
    source: str | dict[str, Any],
    out: str | Path,
    *,
    size: int = 28,
    force: bool = False,
    verify: bool = False,
) -> tuple[Path, bool]:
    """Build the cache of ``source`` at ``out``; returns ``(out, reused)``.

    A cache already at ``out`` is reused when its source and settings match (checked like
    :func:`load_cache`, checksums too with ``verify``) and refused when they differ, unless ``force``.
    """
    out = Path(out).expanduser().absolute()
    remove_stale_builds(out)
    spec, settings = normalize_source(source), {"size": size}
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; name a folder for the cache")
    if out.is_dir() and any(out.iterdir()):
        strangers = sorted(p.name for p in out.iterdir() if p.name not in _cache_files())
        if strangers:
            # not even --force replaces a folder of other files named by mistake
            raise DataError(
                f"{out} holds files that are not part of a cache ({', '.join(strangers[:3])}); "
                "choose another --out"
            )
        if not force:
            manifest = read_manifest(out)  # raises for an unfinished or damaged cache
            if manifest.get("source") != spec or manifest.get("settings") != settings:
                old = _describe(manifest.get("source"), manifest.get("settings") or {})
                raise DataError(
                    f"{out} holds a cache of {old}, not of {_describe(spec, settings)}; "
                    "pass --force to rebuild it or choose another --out"
                )
            check_cache(out, manifest, verify=verify)
            return out, True
    from imbal.data.load import load_dataset  # here: the loaders table imports this module

    splits = load_dataset(source, size=size)
    write_cache(splits, out, source=spec, settings=settings)
    return out, False
