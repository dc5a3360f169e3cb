"""Disk-backed sets and the prefetcher: the same tensors as the in-memory gather, bounded memory."""

import threading
from pathlib import Path

import pytest
import torch

import imbal.data.stream as stream
from imbal.data import (
    DiskDataset,
    ImageDataset,
    default_memory_budget,
    iterate_batches,
    place,
    place_splits,
    synthetic,
)
from imbal.data.cache import load_cache, write_cache
from imbal.data.stream import Prefetcher, nbytes
from imbal.errors import DataError


@pytest.fixture(params=[2, 3], ids=["2d", "3d"])
def pair(request, tmp_path):
    """The same splits in memory and from a cache."""
    dims = request.param
    mem = synthetic(
        spatial_dims=dims, n=80, size=10 if dims == 2 else 6, channels=3 if dims == 2 else 2, seed=4
    )
    write_cache(mem, tmp_path / "c", source="test", settings={})
    return mem, load_cache(tmp_path / "c")


def random_index(n: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (k,), generator=g)
    idx[1] = idx[0]  # a duplicate, and (almost surely) unsorted
    return idx


def test_batch_equals_in_memory_gather(pair):
    mem, disk = pair
    for seed in range(5):
        idx = random_index(len(mem.train), 17, seed)
        x, y = disk.train.batch(idx)
        xm, ym = mem.train.batch(idx)
        assert x.dtype == torch.float32 and torch.equal(x, xm) and torch.equal(y, ym)
    # sequential ranges (one read per run) and single samples
    assert torch.equal(disk.test.batch(torch.arange(3, 11))[0], mem.test.batch(torch.arange(3, 11))[0])
    assert torch.equal(disk.val.images[2], mem.val.images[2])
    assert torch.equal(disk.val.images[-3:], mem.val.images[-3:])


def test_subset_and_to_keep_images_on_disk(pair):
    mem, disk = pair
    keep = torch.tensor([9, 2, 2, 30, 5, 41])
    sub_disk, sub_mem = disk.train.subset(keep), mem.train.subset(keep)
    assert isinstance(sub_disk, DiskDataset) and len(sub_disk) == 6
    assert torch.equal(sub_disk.labels, sub_mem.labels)
    assert torch.equal(sub_disk.class_counts, sub_mem.class_counts)
    assert sub_disk.imbalance_ratio == sub_mem.imbalance_ratio
    inner = torch.tensor([5, 0, 1])
    assert torch.equal(
        sub_disk.subset(inner).batch(torch.arange(3))[0], sub_mem.subset(inner).batch(torch.arange(3))[0]
    )
    moved = disk.train.to("cpu")
    assert moved.images is disk.train.images and moved.device == torch.device("cpu")
    assert torch.equal(moved.load().images, mem.train.images)


def test_index_out_of_range(pair):
    _, disk = pair
    with pytest.raises(IndexError, match="out of range"):
        disk.train.batch(torch.tensor([0, len(disk.train)]))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_prefetcher_yields_the_plain_loop(pair, depth):
    mem, disk = pair
    g = torch.Generator().manual_seed(depth)
    epoch = torch.randint(0, len(mem.train), (7, 5), generator=g)  # a sampler's (steps, batch)
    got = list(iterate_batches(disk.train, epoch, "cpu", depth=depth))
    want = [mem.train.batch(idx) for idx in epoch]
    assert len(got) == len(want)
    for (x, y), (xm, ym) in zip(got, want):
        assert torch.equal(x, xm) and torch.equal(y, ym)
    # evaluation's batches: sequential, the last one shorter
    ranges = list(torch.arange(len(mem.test)).split(6))
    got = list(Prefetcher(disk.test, ranges, "cpu", depth))
    assert torch.equal(torch.cat([x for x, _ in got]), mem.test.batch(torch.arange(len(mem.test)))[0])
    assert torch.equal(torch.cat([y for _, y in got]), mem.test.labels)


def test_in_memory_on_device_is_the_plain_gather(pair, monkeypatch):
    mem, _ = pair

    def boom(*a, **k):
        raise AssertionError("an in-memory set on the device needs no prefetcher")

    monkeypatch.setattr(stream, "Prefetcher", boom)
    epoch = torch.randint(0, len(mem.train), (3, 4))
    for (x, y), idx in zip(iterate_batches(mem.train, epoch, "cpu"), epoch):
        assert torch.equal(x, mem.train.batch(idx)[0]) and torch.equal(y, mem.train.labels[idx])


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "imbal-prefetch"]


def test_prefetcher_stops_when_abandoned_and_reports_errors(pair, tmp_path):
    _, disk = pair
    epoch = torch.arange(len(disk.train) // 2 * 2).view(-1, 2)
    it = iterate_batches(disk.train, epoch, "cpu")
    next(it)
    it.close()  # the training loop broke out early
    assert not _prefetch_threads()
    # a file truncated after loading: the reader's error reaches the consumer
    images = Path(disk.train.images.path)
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    with pytest.raises(DataError, match=r"train_images.npy changed while it was being read"):
        list(iterate_batches(disk.train, epoch, "cpu"))
    assert not _prefetch_threads()


def test_reads_never_map_the_file(pair):
    _, disk = pair
    path = str(disk.train.images.path)
    for _ in iterate_batches(disk.train, torch.randint(0, len(disk.train), (4, 8)), "cpu"):
        assert path not in Path("/proc/self/maps").read_text()


def test_place_follows_the_budget(pair):
    mem, disk = pair
    size = nbytes(disk.train)
    kept = place(disk.train, "cpu", budget_bytes=size)
    assert isinstance(kept, ImageDataset) and torch.equal(kept.images, mem.train.images)
    streamed = place(disk.train, "cpu", budget_bytes=size - 1)
    assert isinstance(streamed, DiskDataset)
    # an in-memory set has no disk copy: too large, it stays in host memory
    assert place(mem.train, "cpu", budget_bytes=0).images is mem.train.images
    # one budget shared by the splits, train first
    split = place_splits(disk, "cpu", budget_bytes=size + nbytes(disk.val))
    assert isinstance(split.train, ImageDataset) and isinstance(split.val, ImageDataset)
    assert isinstance(split.test, DiskDataset)
    assert isinstance(place(disk.test, "cpu").images, torch.Tensor)  # default budget: RAM, it fits


def test_default_memory_budget_is_half_of_available_ram():
    budget = default_memory_budget("cpu")
    total = stream._read_meminfo("MemTotal")
    assert budget > 0 and (total is None or budget <= total // 2)


def test_bad_labels_raise_data_error(pair):
    # one set of label checks (Split._check_labels) and one error type for both split types
    mem, disk = pair
    n = len(disk.train)
    with pytest.raises(DataError, match=r".*train_images.npy: labels must lie in \[0, 4\), got min=7 max=7"):
        DiskDataset(disk.train.images, torch.full((n,), 7), 4)
    with pytest.raises(DataError, match=r"^labels must lie in \[0, 4\), got min=7 max=7"):
        ImageDataset(mem.train.images, torch.full((n,), 7), 4)
    message = rf"{n} images but labels of shape \(3,\); labels must have shape \({n},\)"
    with pytest.raises(DataError, match=message):
        DiskDataset(disk.train.images, torch.zeros(3), 4)
    with pytest.raises(DataError, match=message):
        ImageDataset(mem.train.images, torch.zeros(3), 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_prefetcher_to_cuda_matches(pair):
    mem, disk = pair
    epoch = torch.randint(0, len(mem.train), (9, 6))
    gpu = place(mem.train, "cuda", budget_bytes=1 << 30)
    for src in (disk.train.to("cuda"), mem.train):  # from disk, and from host memory
        got = list(iterate_batches(src, epoch, "cuda", depth=2))
        for (x, y), idx in zip(got, epoch):
            xm, ym = gpu.batch(idx)
            assert x.is_cuda and torch.equal(x, xm) and torch.equal(y, ym)
