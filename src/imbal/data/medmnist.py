"""Find, verify (MD5) and download official MedMNIST files."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from imbal.data.medmnist_info import MEDMNIST, MedMNISTInfo
from imbal.errors import DataError, MissingFileError
from imbal.naming import SPLITS

if TYPE_CHECKING:
    from imbal.data.dataset import Splits


def cache_dir() -> Path:
    """``$IMBAL_CACHE`` or ``~/.cache/imbal``: where downloads go."""
    return Path(os.environ.get("IMBAL_CACHE", Path.home() / ".cache" / "imbal")).expanduser()


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    """The hex MD5 of a file, read in ``chunk``-byte blocks (MedMNIST publishes MD5s, not sha256)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def medmnist_info(name: str, size: int = 28) -> MedMNISTInfo:
    """The table entry of a MedMNIST set (any case); an unknown name or size is a :class:`DataError`."""
    key = name.lower()
    if key not in MEDMNIST:
        raise DataError(f"unknown MedMNIST set {name!r}; known: {', '.join(sorted(MEDMNIST))}")
    info = MEDMNIST[key]
    if size not in info.md5:
        raise DataError(f"{key} has sizes {list(info.sizes)}, got size={size}")
    return info


def candidate_paths(info: MedMNISTInfo, size: int, root: str | Path | None) -> list[Path]:
    """Lookup order: ``root``, then ``$IMBAL_DATA`` (``<root>/<name>/<file>`` or ``<root>/<file>``), then the cache."""
    fname = info.filename(size)
    roots = [Path(r).expanduser() for r in (root, os.environ.get("IMBAL_DATA")) if r]
    out = []
    for r in roots:
        out += [r / info.name / fname, r / fname]
    out.append(cache_dir() / info.name / fname)
    return out


def verify(path: Path, expected_md5: str) -> None:
    """Raise :class:`DataError` unless the file's MD5 is ``expected_md5`` (a corrupt or unofficial file)."""
    got = md5sum(path)
    if got != expected_md5:
        raise DataError(
            f"MD5 mismatch for {path}: expected {expected_md5}, got {got}. The file is corrupt or not the "
            "official MedMNIST file; delete it and download it again."
        )


def download(url: str, dest: Path, expected_md5: str, *, progress: bool = True) -> Path:
    """Download to a temporary file next to ``dest``, check MD5, then rename (never a half file)."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
        verify(Path(tmp), expected_md5)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def find_medmnist(
    name: str, size: int = 28, root: str | Path | None = None, download_missing: bool = True
) -> Path:
    """Path of a verified file, downloading it into the cache when it is nowhere local."""
    info = medmnist_info(name, size)
    paths = candidate_paths(info, size, root)
    for p in paths:
        if p.is_file():
            verify(p, info.md5[size])
            return p.resolve()
    if not download_missing:
        raise MissingFileError(
            f"{info.filename(size)} not found; looked in {', '.join(map(str, paths))}. Put the official file "
            f"(MD5 {info.md5[size]}) in one of those places, or allow the download."
        )
    dest = paths[-1]
    try:
        return download(info.url(size), dest, info.md5[size])
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise MissingFileError(
            f"could not download {info.url(size)} ({exc}). Offline? Put {info.filename(size)} "
            f"(MD5 {info.md5[size]}) into {dest.parent} or into $IMBAL_DATA/{info.name}/"
        ) from exc


def load_medmnist(name: str, size: int = 28, root: str | Path | None = None, download: bool = True) -> Splits:
    """Load a MedMNIST v3 / MedMNIST+ set (any size, 2D or 3D) as verified train/val/test splits."""
    from imbal.data.npz import load_npz  # imports torch: `imbal data list` uses this module without it

    info = medmnist_info(name, size)
    if info.task == "multi-label":
        raise DataError(f"{info.name} is multi-label; imbal trains single-label classifiers")
    path = find_medmnist(name, size, root, download_missing=download)
    splits = load_npz(
        path,
        name=info.name,
        spatial_dims=info.spatial_dims,
        num_classes=info.num_classes,
        class_names=list(info.class_names),
    )
    for split in SPLITS:
        n = len(splits[split])
        if n != info.n_samples[split]:
            raise DataError(f"{path}: {split} has {n} samples, the official file has {info.n_samples[split]}")
    splits.ordinal = info.ordinal
    return splits
