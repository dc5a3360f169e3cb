"""Prepared caches: exact round trips, reuse / refuse / --force, partial builds, corruption, the CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import imbal.data.cache as cache_mod
from imbal.cli.main import main
from imbal.data import DiskDataset, load_dataset, load_medmnist, synthetic
from imbal.data.cache import MANIFEST, load_cache, write_cache
from imbal.data.prepare import prepare_cache
from imbal.errors import DataError, MissingFileError

SPEC_2D = {"kind": "synthetic", "spatial_dims": 2, "n": 90, "size": 12, "channels": 3, "seed": 1}
SPEC_3D = {"kind": "synthetic", "spatial_dims": 3, "n": 40, "size": 8, "seed": 2}


def assert_same_splits(got, want):
    for split in ("train", "val", "test"):
        g, w = got[split], want[split]
        assert len(g) == len(w)
        assert torch.equal(g.images[0 : len(g)], w.images)
        assert torch.equal(g.labels, w.labels)
        assert g.class_names == w.class_names and g.num_classes == w.num_classes
        assert g.name == w.name and g.synthetic == w.synthetic
        assert (g.spatial_dims, g.in_channels, g.spatial_size) == (
            w.spatial_dims,
            w.in_channels,
            w.spatial_size,
        )


@pytest.mark.parametrize("spec", [SPEC_2D, SPEC_3D], ids=["2d", "3d"])
def test_round_trip_equals_source(tmp_path, spec):
    out, reused = prepare_cache(spec, tmp_path / "c")
    assert not reused
    want = load_dataset(spec)
    for loaded in (load_dataset({"kind": "cache", "path": str(out)}), load_dataset(str(out))):
        assert isinstance(loaded.train, DiskDataset)
        assert_same_splits(loaded, want)
    # plain numpy can memory-map the files
    mapped = np.load(out / "train_images.npy", mmap_mode="r")
    assert mapped.dtype == np.uint8 and np.array_equal(mapped, want.train.images.numpy())
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format_version"] == cache_mod.FORMAT_VERSION
    assert manifest["source"] == json.loads(json.dumps(spec)) and manifest["settings"] == {"size": 28}
    assert manifest["splits"]["train"]["images_shape"] == list(want.train.images.shape)
    assert manifest["splits"]["val"]["class_counts"] == want.val.class_counts.tolist()
    assert set(manifest["files"]) == {
        f"{s}_{k}.npy" for s in ("train", "val", "test") for k in ("images", "labels")
    }
    load_cache(out, verify=True)  # the recorded checksums match the files


def test_real_retinamnist_round_trip(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    out, _ = prepare_cache("retinamnist", tmp_path / "retina")
    assert_same_splits(load_dataset(str(out), size=28), load_medmnist("retinamnist", download=False))


def test_reuse_refuse_force(tmp_path, capsys):
    out, _ = prepare_cache(SPEC_2D, tmp_path / "c")
    stamp = (out / "train_images.npy").stat().st_mtime_ns
    assert prepare_cache(SPEC_2D, out) == (out, True)
    assert (out / "train_images.npy").stat().st_mtime_ns == stamp  # reused, not rewritten
    other = {**SPEC_2D, "seed": 5}
    with pytest.raises(
        DataError, match=r"holds a cache of .*\"seed\": 1.*not of .*\"seed\": 5.*pass --force"
    ):
        prepare_cache(other, out)
    with pytest.raises(DataError, match=r"\(size 28\), not of .*\(size 64\); pass --force"):
        prepare_cache(SPEC_2D, out, size=64)
    assert prepare_cache(other, out, force=True) == (out, False)
    assert_same_splits(load_cache(out), load_dataset(other))
    assert not list(tmp_path.glob(".c.*"))  # the replaced cache is gone


def test_paths_in_spec_are_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rel = cache_mod.normalize_source({"kind": "npz", "path": "data/x.npz"})
    assert rel == {"kind": "npz", "path": str(tmp_path / "data" / "x.npz")}
    assert cache_mod.normalize_source("RetinaMNIST") == "retinamnist"


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(path, array):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(path, array)

    real = cache_mod._write_npy
    monkeypatch.setattr(cache_mod, "_write_npy", failing)
    with pytest.raises(OSError, match="disk full"):
        prepare_cache(SPEC_2D, tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_killed_build_is_never_read_and_is_cleaned_up(tmp_path):
    out = tmp_path / "c"
    # what a build killed before its rename leaves: a temp folder with some files, no cache folder
    tmp = tmp_path / f".c.tmp-{_dead_pid()}-abcd1234"
    tmp.mkdir()
    (tmp / "train_images.npy").write_bytes(b"\x93NUMPY partial")
    with pytest.raises(MissingFileError, match=r"c does not exist; build it with `imbal data prepare"):
        load_dataset({"kind": "cache", "path": str(out)})
    alive = tmp_path / f".c.tmp-{os.getpid()}-ffff0000"  # a build still running is left alone
    alive.mkdir()
    prepare_cache(SPEC_2D, out)
    assert not tmp.exists() and alive.exists()
    load_cache(out)


def test_missing_manifest_is_not_a_cache(tmp_path):
    out, _ = prepare_cache(SPEC_3D, tmp_path / "c")
    (out / MANIFEST).unlink()
    with pytest.raises(
        DataError, match=r"has no manifest.json: not a prepared cache \(or an unfinished one\)"
    ):
        load_dataset(str(out))
    with pytest.raises(DataError, match="has no manifest.json"):
        prepare_cache(SPEC_3D, out)
    prepare_cache(SPEC_3D, out, force=True)
    load_cache(out, verify=True)


def test_truncated_or_corrupt_files_are_detected(tmp_path):
    out, _ = prepare_cache(SPEC_2D, tmp_path / "c")
    images = out / "train_images.npy"
    data = images.read_bytes()
    images.write_bytes(data[:-100])
    with pytest.raises(DataError, match=r"train_images.npy has \d+ bytes, the manifest says \d+: truncated"):
        load_cache(out)
    # same size, one byte flipped: only the checksum sees it
    images.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    load_cache(out)
    with pytest.raises(DataError, match="train_images.npy fails its sha256 checksum"):
        load_cache(out, verify=True)
    with pytest.raises(DataError, match="fails its sha256 checksum"):
        prepare_cache(SPEC_2D, out, verify=True)
    (out / "val_labels.npy").unlink()
    with pytest.raises(DataError, match="val_labels.npy is missing"):
        load_cache(out)


def test_bad_manifests(tmp_path):
    out, _ = prepare_cache(SPEC_2D, tmp_path / "c")
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(DataError, match="has cache format version 99, this imbal reads 1"):
        load_cache(out)
    (out / MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match=r"manifest.json is damaged .*rebuild the cache with --force"):
        load_cache(out)
    (out / MANIFEST).write_text(json.dumps({**manifest, "splits": {}}))
    with pytest.raises(DataError, match="manifest.json does not match its checksum: edited or corrupt"):
        load_cache(out)
    manifest.pop("checksum")  # as an older imbal wrote them: the entries are still checked
    (out / MANIFEST).write_text(json.dumps({**manifest, "splits": {}}))
    with pytest.raises(DataError, match="manifest.json lacks 'splits.train.count'"):
        load_cache(out)


def test_refuses_foreign_folders_even_with_force(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"results holds files that are not part of a cache \(notes.txt\)"):
        prepare_cache(SPEC_2D, out, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file; name a folder"):
        prepare_cache(SPEC_2D, tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_cache(SPEC_2D, empty) == (empty, False)


def test_write_cache_from_a_disk_backed_set(tmp_path):
    src = synthetic(spatial_dims=3, n=30, size=6, seed=3)
    a = write_cache(src, tmp_path / "a", source="x", settings={})
    b = write_cache(load_cache(a), tmp_path / "b", source="x", settings={})
    assert_same_splits(load_cache(b), src)


def test_cli_prepare(tmp_path, capsys):
    out = tmp_path / "c"
    spec = "{kind: synthetic, spatial_dims: 2, n: 60, size: 8}"
    assert main(["data", "prepare", spec, "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"prepared {out}: train n=")
    assert main(["data", "prepare", spec, "--out", str(out), "--verify"]) == 0
    assert "reused" in capsys.readouterr().out
    assert main(["data", "prepare", spec, "--out", str(out), "--size", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imbal: error: ") and "pass --force" in err and err.count("\n") == 1
    assert main(["data", "prepare", spec, "--out", str(out), "--size", "64", "--force"]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(out)]) == 0  # any command taking a data set takes the cache folder
    assert "synthetic2d" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nosuchset"], "is neither a MedMNIST name"),
        (["{kind: synthetic, spatial_dims: 2"], "is not a valid YAML mapping"),
        (["{kind: cache}"], "needs 'path'"),
        (["nope.npz"], "nope.npz"),
    ],
)
def test_cli_prepare_bad_input(tmp_path, capsys, argv, message):
    assert main(["data", "prepare", *argv, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "c").exists()


def test_ordinal_flag_survives_the_cache(tmp_path):
    out, _ = prepare_cache({**SPEC_2D, "ordinal": True}, tmp_path / "graded")
    assert json.loads((out / MANIFEST).read_text())["ordinal"] is True
    assert load_dataset(str(out)).ordinal
    plain, _ = prepare_cache(SPEC_2D, tmp_path / "plain")
    assert not load_dataset(str(plain)).ordinal
