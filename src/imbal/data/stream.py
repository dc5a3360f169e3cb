"""Data sets larger than memory: a disk-backed dataset, a batch prefetcher and the memory budget.

A prepared cache (:mod:`imbal.data.cache`) stores each split's images as one uint8 ``.npy``.
:class:`DiskDataset` reads the samples a batch needs from that file with ``preadv`` into a
preallocated buffer: the file is never memory-mapped, so the process's resident set holds the
batches in flight and nothing else (mapped pages would count in RSS and grow with every sample
touched; the kernel's page cache still makes a second epoch fast without counting against us).

The engine needs two calls: :func:`place` (keep a set in memory / on the device when it fits the
budget, else the disk view) and :func:`iterate_batches` (the plain gather for a set already on the
device, the background :class:`Prefetcher` otherwise). Both paths yield the same tensors.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imbal.data.dataset import ImageDataset, Split, Splits
from imbal.errors import DataError
from imbal.naming import SPLITS

IndexBatches = torch.Tensor | Sequence[torch.Tensor]


class DiskImages:
    """A uint8 ``(N, C, *spatial)`` view of the rows ``rows`` of an ``.npy`` file's C-order data.

    Quacks like the ``images`` tensor where the engine only slices it (``shape``, ``ndim``,
    ``dtype``, ``[start:stop]`` -> a uint8 CPU tensor); reads go through :meth:`read_into`.
    The file is reopened by path for each read, so each read checks that it is still the file
    first opened (device, inode, size, modification time): a cache rebuilt (``prepare --force``)
    or changed while a run reads it stops the run instead of mixing two data sets into one.

    Args:
        path: the ``.npy`` file.
        offset: byte offset of its data (after the header).
        file_shape: the array's shape ``(N, C, *spatial)`` in the file.
        rows: the file rows this view holds, in view order (None: all, in file order).
        stamp: the file identity to hold reads to (None: taken from the file now).
    """

    dtype = torch.uint8
    device = torch.device("cpu")

    def __init__(
        self,
        path: Path,
        offset: int,
        file_shape: tuple[int, ...],
        rows: np.ndarray | None = None,
        stamp: tuple[int, ...] | None = None,
    ):
        self.path = Path(path)
        self.offset = int(offset)
        self.file_shape = tuple(int(s) for s in file_shape)
        self.rows = rows  # None: every row of the file, in order
        self.sample_bytes = math.prod(self.file_shape[1:])
        self.stamp = stamp if stamp is not None else _stamp(os.stat(self.path))

    @property
    def shape(self) -> torch.Size:
        """``(len(rows), C, *spatial)``, as a tensor's ``shape``."""
        n = self.file_shape[0] if self.rows is None else len(self.rows)
        return torch.Size((n, *self.file_shape[1:]))

    @property
    def ndim(self) -> int:
        """Dimensions of :attr:`shape` (4 for images, 5 for volumes)."""
        return len(self.file_shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, index: np.ndarray) -> np.ndarray:
        n = len(self)
        if index.size and (index.min() < -n or index.max() >= n):
            raise IndexError(f"index out of range for {n} samples of {self.path}")
        index = np.where(index < 0, index + n, index)
        return index if self.rows is None else self.rows[index]

    def read_into(self, index: np.ndarray, out: np.ndarray) -> None:
        """Read samples ``index`` (view positions) into ``out`` (uint8, ``(len(index), C, *spatial)``)."""
        rows = self._rows(np.asarray(index, dtype=np.int64).reshape(-1))
        if rows.size == 0:
            return
        flat = memoryview(out.reshape(-1)).cast("B")  # type: ignore[arg-type]  # an ndarray is a buffer
        sb = self.sample_bytes
        # runs of consecutive rows (evaluation's sequential batches) become one read each
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        # opened per call: no descriptor to leak, share across threads or carry over a fork
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise self._changed() from None
        try:
            if _stamp(os.fstat(fd)) != self.stamp:
                raise self._changed()
            for lo, hi in zip([0, *breaks.tolist()], [*breaks.tolist(), len(rows)]):
                _pread_exact(fd, flat[lo * sb : hi * sb], self.offset + int(rows[lo]) * sb, self.path)
        finally:
            os.close(fd)

    def __getitem__(self, key: slice | torch.Tensor | np.ndarray | Sequence[int]) -> torch.Tensor:
        if isinstance(key, slice):
            r = range(len(self))[key]
            index = np.arange(r.start, r.stop, r.step, dtype=np.int64)
        else:
            index = np.asarray(torch.as_tensor(key).cpu(), dtype=np.int64)
        out = np.empty((index.size, *self.file_shape[1:]), dtype=np.uint8)
        self.read_into(index.reshape(-1), out)
        return torch.from_numpy(out.reshape(*index.shape, *self.file_shape[1:]))

    def select(self, index: np.ndarray) -> DiskImages:
        """A view of the samples ``index`` (view positions) of this view; nothing is read."""
        return DiskImages(
            self.path, self.offset, self.file_shape, self._rows(np.asarray(index, dtype=np.int64)), self.stamp
        )

    def _changed(self) -> DataError:
        return DataError(
            f"{self.path} changed while it was being read (the cache was rebuilt, e.g. by `imbal data "
            "prepare --force`, or deleted); stopped rather than mix two data sets. Train again into a new "
            "--out; a --resume refuses data other than the run started with"
        )


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _pread_exact(fd: int, buf: memoryview, offset: int, path: Path) -> None:
    done = 0
    while done < len(buf):
        got = os.preadv(fd, [buf[done:]], offset + done)
        if got == 0:
            raise DataError(
                f"{path} ends before byte {offset + len(buf)}: the cache is truncated; "
                "rebuild it with `imbal data prepare ... --force`"
            )
        done += got


@dataclass
class DiskDataset(Split):
    """The disk-backed twin of :class:`ImageDataset`: images stay in their cache file, labels in memory.

    ``device`` is where :meth:`batch` puts its output (set by :meth:`to`, which moves the labels
    only); use :func:`iterate_batches` to overlap the reads with compute.
    """

    images: DiskImages
    labels: torch.Tensor
    num_classes: int
    name: str = "dataset"
    class_names: list[str] = field(default_factory=list)
    synthetic: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        self._check_labels(f"{self.images.path}: ")
        self.device = torch.device(self.device)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images in [0, 1] on ``device`` and labels, read synchronously (no prefetch)."""
        index = torch.as_tensor(index, dtype=torch.long)
        x = self.images[index.cpu()].to(self.device)
        return x.float().div_(255.0), self.labels[index.to(self.labels.device)]

    def subset(self, index: torch.Tensor | list[int]) -> DiskDataset:
        """The samples ``index``: a narrower view of the same file, nothing is read."""
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        return replace(
            self, images=self.images.select(index.numpy()), labels=self.labels[index.to(self.labels.device)]
        )

    def to(self, device: torch.device | str) -> DiskDataset:
        """Labels moved to ``device``, and :meth:`batch` output there; the images stay on disk."""
        return replace(self, labels=self.labels.to(device), device=torch.device(device))

    def load(self, chunk_bytes: int = 64 << 20) -> ImageDataset:
        """Every image read into host memory, as an :class:`ImageDataset` (labels stay where they are)."""
        images = torch.empty(tuple(self.images.shape), dtype=torch.uint8)
        step = max(1, chunk_bytes // max(self.images.sample_bytes, 1))
        for start in range(0, len(self), step):
            stop = min(start + step, len(self))
            self.images.read_into(np.arange(start, stop), images[start:stop].numpy())
        return ImageDataset(
            images, self.labels, self.num_classes, self.name, self.class_names, self.synthetic
        )


AnyDataset = Split  # an ImageDataset or a DiskDataset


def nbytes(dataset: AnyDataset) -> int:
    """The uint8 image bytes of a set (what keeping it in memory costs)."""
    return math.prod(dataset.images.shape)


def _device_index(d: torch.device) -> int:
    # "cuda" means the current device: compare it to "cuda:0" by number
    if d.index is not None:
        return d.index
    return torch.cuda.current_device() if d.type == "cuda" else 0


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and _device_index(a) == _device_index(b)


def _as_batches(index_batches: IndexBatches) -> list[torch.Tensor]:
    # one host copy per epoch (a single sync) instead of one per step
    if isinstance(index_batches, torch.Tensor):
        return (
            list(index_batches.to("cpu", torch.long).unbind(0))
            if index_batches.ndim == 2
            else [index_batches.cpu()]
        )
    return [torch.as_tensor(b, dtype=torch.long).cpu() for b in index_batches]


def _read_uint8(dataset: AnyDataset, index: torch.Tensor, out: torch.Tensor) -> None:
    if isinstance(dataset, DiskDataset):
        dataset.images.read_into(index.numpy(), out.numpy())
    elif dataset.images.device.type == "cpu":
        torch.index_select(dataset.images, 0, index, out=out)
    else:
        out.copy_(dataset.images[index.to(dataset.images.device)])


class Prefetcher:
    """Gathers the next ``depth`` batches in a background thread while the caller trains on this one.

    Batches land in reused host buffers (pinned when ``device`` is CUDA, so the copy is
    asynchronous); each is moved with ``non_blocking`` and converted to float on the device.
    A CUDA event per buffer keeps the reader from overwriting a batch still being copied. The
    yielded ``(x, y)`` equal ``dataset.batch(idx)`` for each ``idx`` of ``index_batches``, in order.

    Args:
        dataset: an :class:`ImageDataset` or :class:`DiskDataset`.
        index_batches: a ``(steps, batch)`` index tensor or a list of 1-D index tensors.
        device: where the batches go.
        depth: batches read ahead, >= 1 (``ValueError`` otherwise).
    """

    def __init__(
        self, dataset: AnyDataset, index_batches: IndexBatches, device: torch.device | str, depth: int = 2
    ):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.dataset = dataset
        self.batches = _as_batches(index_batches)
        self.device = torch.device(device)
        self.depth = depth

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.batches:
            return
        pin = self.device.type == "cuda"
        slots = self._slots(pin)
        free: queue.Queue = queue.Queue()
        for slot in range(len(slots)):
            free.put((slot, None))
        ready: queue.Queue = queue.Queue()
        stop = threading.Event()
        args = (slots, free, ready, stop, self.dataset.labels.cpu())
        thread = threading.Thread(target=self._produce, args=args, name="imbal-prefetch", daemon=True)
        thread.start()
        try:
            for _ in self.batches:
                item = ready.get()
                if isinstance(item, BaseException):
                    raise item
                slot, n = item
                x, y = slots[slot]
                if pin:
                    x = x[:n].to(self.device, non_blocking=True)
                    y = y[:n].to(self.device, non_blocking=True)
                    event = torch.cuda.Event()
                    event.record(torch.cuda.current_stream(self.device))  # the stream the copies went to
                    free.put((slot, event))
                    yield x.float().div_(255.0), y
                else:
                    # on the CPU .to() is a no-op: copy out before the buffer goes back
                    out = x[:n].to(self.device).float().div_(255.0), y[:n].to(self.device, copy=True)
                    free.put((slot, None))
                    yield out
        finally:
            stop.set()
            thread.join()

    def _slots(self, pin: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Reused host buffers for images and labels: ``depth`` being filled or waiting, one being converted."""
        most = max(len(b) for b in self.batches)
        shape = tuple(self.dataset.images.shape[1:])
        return [
            (
                torch.empty((most, *shape), dtype=torch.uint8, pin_memory=pin),
                torch.empty(most, dtype=torch.long, pin_memory=pin),
            )
            for _ in range(self.depth + 1)
        ]

    def _produce(
        self,
        slots: list[tuple[torch.Tensor, torch.Tensor]],
        free: queue.Queue,
        ready: queue.Queue,
        stop: threading.Event,
        labels: torch.Tensor,
    ) -> None:
        """The reader thread: each batch, in order, into a free buffer; an error goes to the consumer."""
        try:
            for idx in self.batches:
                taken = _take(free, stop)
                if taken is None:
                    return
                slot, event = taken
                if event is not None:
                    event.synchronize()  # the previous copy out of this buffer has finished
                x, y = slots[slot]
                _read_uint8(self.dataset, idx, x[: len(idx)])
                torch.index_select(labels, 0, idx, out=y[: len(idx)])
                ready.put((slot, len(idx)))
        except BaseException as exc:  # handed to the consumer, which re-raises it in its thread
            ready.put(exc)


def _take(free: queue.Queue, stop: threading.Event) -> Any:
    """The next free buffer, or None once the consumer stopped (checked every 50 ms)."""
    while not stop.is_set():
        try:
            return free.get(timeout=0.05)
        except queue.Empty:
            continue
    return None


def iterate_batches(
    dataset: AnyDataset, index_batches: IndexBatches, device: torch.device | str, *, depth: int = 2
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` per batch of ``index_batches``: float images in [0, 1] and labels on ``device``.

    ``index_batches`` is a ``(steps, batch)`` tensor or a list of 1-D index tensors. A set already
    on ``device`` is gathered in place; a disk-backed set, or one held in host memory for a CUDA
    device, goes through the :class:`Prefetcher`. The tensors are equal either way.
    """
    device = torch.device(device)
    if isinstance(dataset, ImageDataset) and _same_device(dataset.images.device, device):
        if isinstance(index_batches, torch.Tensor):
            # one transfer per epoch, not one per step
            index_batches = index_batches.to(dataset.images.device, non_blocking=True)
        for idx in index_batches:
            yield dataset.batch(idx)
        return
    yield from Prefetcher(dataset, index_batches, device, depth)


def _read_meminfo(field_name: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    # a container's limit is invisible in /proc/meminfo, which shows the host's memory
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None


def default_memory_budget(device: torch.device | str) -> int:
    """Bytes of images :func:`place` may keep in memory on ``device`` when the user set no budget.

    CUDA: half of the device's free memory (``torch.cuda.mem_get_info``), the other half left to the
    model, its activations and the allocator's slack. Anything else: half of the available RAM
    (``MemAvailable`` of ``/proc/meminfo``, capped by a cgroup v2 limit; ``os.sysconf`` elsewhere),
    since the host also holds the model, the optimiser and the prefetch buffers.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free) // 2
    candidates = [v for v in (_read_meminfo("MemAvailable"), _cgroup_headroom()) if v is not None]
    if not candidates:
        try:
            candidates = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (ValueError, OSError):
            return 0  # unknown: stream rather than risk running out of memory
    return max(0, min(candidates)) // 2


def place(dataset: AnyDataset, device: torch.device | str, budget_bytes: int | None = None) -> AnyDataset:
    """``dataset`` in memory on ``device`` when its uint8 images fit ``budget_bytes``, else streamed.

    ``budget_bytes=None`` uses :func:`default_memory_budget`. Too large: a disk-backed set stays on
    disk (labels moved to ``device``); an in-memory set has no disk copy and stays in host memory,
    from where :func:`iterate_batches` prefetches it.
    """
    device = torch.device(device)
    budget = default_memory_budget(device) if budget_bytes is None else budget_bytes
    if nbytes(dataset) <= budget:
        loaded = dataset.load() if isinstance(dataset, DiskDataset) else dataset
        return loaded.to(device)
    return dataset.to(device) if isinstance(dataset, DiskDataset) else dataset.to("cpu")


def place_splits(splits: Splits, device: torch.device | str, budget_bytes: int | None = None) -> Splits:
    """:func:`place` for train, then val, then test, sharing one budget (train gets first claim)."""
    device = torch.device(device)
    left = default_memory_budget(device) if budget_bytes is None else budget_bytes
    placed = {}
    for split in SPLITS:
        data = place(splits[split], device, left)
        if isinstance(data, ImageDataset) and _same_device(data.images.device, device):
            left -= nbytes(data)
        placed[split] = data
    return replace(splits, train=placed["train"], val=placed["val"], test=placed["test"])
