"""A prepared cache's manifest and the checks of its files against it (see :mod:`imbal.data.cache`).

What is checked when (the cost is the point):

- every load: the manifest's own checksum (a sha256 of its other entries) and the type of every
  entry it holds; each file's size and ``.npy`` header; the sha256 of the label files (a few
  hundred KiB at most, so a flipped label is never trained on);
- when a run starts or resumes (:func:`imbal.engine.build.data_checksum`) and on
  ``imbal data prepare --verify``: the sha256 of the image files too. Hashing runs at about
  1.5 GB/s (sha256 with SHA extensions), i.e. one read of the data set, which a run does every epoch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from imbal.errors import DataError, MissingFileError
from imbal.naming import SPLITS

FORMAT = "imbal-cache"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHECKSUM = "checksum"  # the manifest's sha256 of its other entries (absent in older caches)
REBUILD = "rebuild the cache with --force"
_CHUNK = 16 << 20
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def images_file(split: str) -> str:
    """The cache's file of a split's uint8 images ``(N, C, *spatial)``."""
    return f"{split}_images.npy"


def labels_file(split: str) -> str:
    """The cache's file of a split's int64 labels ``(N,)``."""
    return f"{split}_labels.npy"


def cache_files() -> set[str]:
    """Every file name a complete cache holds: the manifest and two files per split."""
    return {MANIFEST} | {f(s) for s in SPLITS for f in (images_file, labels_file)}


def manifest_checksum(manifest: dict[str, Any]) -> str:
    """The sha256 (hex) of the manifest's entries other than its checksum, as canonical JSON."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 16 MiB blocks (memory stays flat for any file size)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _not_a_cache(path: Path) -> DataError:
    """The message for a folder without a manifest: an unfinished cache, an empty folder, or other files."""
    names = sorted(p.name for p in path.iterdir())
    if not names:
        return DataError(
            f"{path} is an empty folder, not a prepared cache; build one with "
            f"`imbal data prepare SOURCE --out {path}`"
        )
    strangers = [n for n in names if n not in cache_files()]
    if strangers:
        more = ", ..." if len(strangers) > 3 else ""
        return DataError(
            f"{path} is not a prepared cache (no {MANIFEST}; it holds other files: {', '.join(strangers[:3])}{more}); "
            "name a folder written by `imbal data prepare`, an .npz file, a MedMNIST name or a data-set mapping"
        )
    return DataError(
        f"{path} has no {MANIFEST}: not a prepared cache (or an unfinished one); "
        f"rebuild it with `imbal data prepare SOURCE --out {path} --force`"
    )


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the cache folder ``path``, its checksum and entry types checked."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(
            f"{path} does not exist; build it with `imbal data prepare SOURCE --out {path}`"
        )
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; a prepared cache is a folder with a {MANIFEST}")
    file = path / MANIFEST
    if not file.is_file():
        raise _not_a_cache(path)
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{file} is damaged ({exc}); {REBUILD}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{file} is not an imbal cache manifest; {REBUILD}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{file} has cache format version {manifest.get('format_version')}, this imbal reads "
            f"{FORMAT_VERSION}; {REBUILD}"
        )
    if CHECKSUM in manifest and manifest[CHECKSUM] != manifest_checksum(manifest):
        raise DataError(f"{file} does not match its checksum: edited or corrupt; {REBUILD}")
    check_manifest_types(manifest, file)
    return manifest


def _is_int(v: Any, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _get(manifest: dict[str, Any], file: Path, *keys: str) -> Any:
    value: Any = manifest
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise DataError(f"{file} lacks {'.'.join(keys)!r}; {REBUILD}")
        value = value[key]
    return value


def _need(ok: bool, file: Path, what: str, value: Any) -> None:
    if not ok:
        raise DataError(f"{file}: {what}, got {value!r}; {REBUILD}")


def check_manifest_types(manifest: dict[str, Any], file: Path) -> None:
    """Every entry that loading reads, with its type: one line naming the first bad one."""
    n = _get(manifest, file, "num_classes")
    _need(_is_int(n, 2), file, "num_classes must be an integer >= 2", n)
    names = _get(manifest, file, "class_names")
    _need(
        isinstance(names, list) and len(names) == n and all(isinstance(c, str) for c in names),
        file,
        f"class_names must be a list of {n} strings",
        names,
    )
    for key, kind in (("name", str), ("synthetic", bool)):
        v = _get(manifest, file, key)
        _need(isinstance(v, kind), file, f"{key} must be a {kind.__name__}", v)
    dims = _get(manifest, file, "spatial_dims")
    _need(dims in (2, 3) and not isinstance(dims, bool), file, "spatial_dims must be 2 or 3", dims)
    size = _get(manifest, file, "spatial_size")
    _need(
        isinstance(size, list) and len(size) == dims and all(_is_int(s, 1) for s in size),
        file,
        f"spatial_size must be a list of integers >= 1, one per spatial dim ({dims})",
        size,
    )
    for split in SPLITS:
        count = _get(manifest, file, "splits", split, "count")
        _need(_is_int(count), file, f"splits.{split}.count must be an integer >= 0", count)
        shape = _get(manifest, file, "splits", split, "images_shape")
        _need(
            isinstance(shape, list) and len(shape) == dims + 2 and all(_is_int(s) for s in shape),
            file,
            f"splits.{split}.images_shape must be a list of {dims + 2} integers",
            shape,
        )
        for name in (images_file(split), labels_file(split)):
            size_bytes = _get(manifest, file, "files", name, "bytes")
            _need(_is_int(size_bytes), file, f"files.{name}.bytes must be an integer >= 0", size_bytes)
            sha = _get(manifest, file, "files", name, "sha256")
            _need(isinstance(sha, str) and len(sha) == 64, file, f"files.{name}.sha256 must be a sha256", sha)


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of an ``.npy`` file (reads the header only)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in _HEADER_READERS:
                raise ValueError(f"npy format version {version}")
            shape, fortran, dtype = _HEADER_READERS[version](f)
            offset = f.tell()
    except (ValueError, OSError, SyntaxError) as exc:
        raise DataError(f"{path} is not a readable .npy file ({exc}); {REBUILD}") from None
    if fortran:
        raise DataError(f"{path} is stored in Fortran order; {REBUILD}")
    return tuple(shape), dtype, offset


def check_cache(path: str | Path, manifest: dict[str, Any] | None = None, *, verify: bool = False) -> None:
    """Check every file against the manifest: size, ``.npy`` header, label checksums; image checksums if ``verify``.

    See the module doc for what each check costs and when the image checksums run.
    """
    path = Path(path)
    manifest = read_manifest(path) if manifest is None else manifest
    for split in SPLITS:
        info = manifest["splits"][split]
        expected: dict[str, tuple[tuple[int, ...], type[np.generic]]] = {
            images_file(split): (tuple(info["images_shape"]), np.uint8),
            labels_file(split): ((info["count"],), np.int64),
        }
        for name, (shape, dtype) in expected.items():
            file, record = path / name, manifest["files"][name]
            if not file.is_file():
                raise DataError(f"{file} is missing; {REBUILD}")
            if file.stat().st_size != record["bytes"]:
                raise DataError(
                    f"{file} has {file.stat().st_size} bytes, the manifest says {record['bytes']}: "
                    f"truncated or replaced; {REBUILD}"
                )
            got_shape, got_dtype, _ = npy_header(file)
            if got_shape != shape or got_dtype != np.dtype(dtype):
                raise DataError(
                    f"{file} holds {got_dtype} {got_shape}, the manifest says {np.dtype(dtype)} {shape}; "
                    f"{REBUILD}"
                )
            if (verify or name == labels_file(split)) and sha256_file(file) != record["sha256"]:
                raise DataError(f"{file} fails its sha256 checksum: corrupt; {REBUILD}")


def content_checksum(manifest: dict[str, Any]) -> str:
    """The identity of a cache's data: a sha256 over its files' checksums (as recorded at the build)."""
    files = manifest["files"]
    text = json.dumps({name: files[name]["sha256"] for name in sorted(files)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
