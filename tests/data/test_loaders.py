"""Loaders on the real MedMNIST files, the study's own formats, and failure modes."""

import shutil
import typing
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from imbal.data import load_dataset, load_image_folder, load_medmnist, load_nifti_csv, load_npz, synthetic
from imbal.data.medmnist import md5sum

MANIFEST = {
    "retinamnist": ({"train": 1080, "val": 120, "test": 400}, [486, 128, 206, 194, 66], (3, 28, 28)),
    "vesselmnist3d": ({"train": 1335, "val": 191, "test": 382}, [1185, 150], (1, 28, 28, 28)),
}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_medmnist_matches_manifest(data_root, name):
    sizes, train_counts, shape = MANIFEST[name]
    splits = load_medmnist(name, root=data_root, download=False)
    for split, n in sizes.items():
        assert len(splits[split]) == n
        assert splits[split].images.dtype == torch.uint8
        assert tuple(splits[split].images.shape[1:]) == shape
    assert splits.train.class_counts.tolist() == train_counts
    assert splits.train.spatial_dims == len(shape) - 1
    assert not splits.synthetic
    assert splits.ordinal is (name == "retinamnist")  # diabetic-retinopathy grades 0-4 are ordered


def test_imbal_data_env_lookup(data_root, monkeypatch, tmp_path):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    monkeypatch.setenv("IMBAL_CACHE", str(tmp_path / "cache"))
    assert len(load_medmnist("retinamnist", download=False).train) == 1080
    # flat layout <root>/<file> works too
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(data_root / "retinamnist" / "retinamnist.npz", flat / "retinamnist.npz")
    monkeypatch.setenv("IMBAL_DATA", str(flat))
    assert len(load_medmnist("retinamnist", download=False).test) == 400


def test_md5_mismatch_raises(data_root, tmp_path):
    bad = tmp_path / "retinamnist"
    bad.mkdir()
    data = (data_root / "retinamnist" / "retinamnist.npz").read_bytes()
    (bad / "retinamnist.npz").write_bytes(data[:-10] + b"0123456789")
    with pytest.raises(
        ValueError, match="MD5 mismatch for .*retinamnist.npz: expected bd4c0672f1bba3e3a89f0e4e876791e4"
    ):
        load_medmnist("retinamnist", root=tmp_path, download=False)


def test_missing_file_offline_says_where(tmp_path, monkeypatch):
    monkeypatch.delenv("IMBAL_DATA", raising=False)
    monkeypatch.setenv("IMBAL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(
        FileNotFoundError,
        match=r"breastmnist.npz not found; looked in .*MD5 750601b1f35ba3300ea97c75c52ff8f6",
    ):
        load_medmnist("breastmnist", root=tmp_path, download=False)


def test_download_failure_message(tmp_path, monkeypatch):
    import urllib.error

    import imbal.data.medmnist as mm

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(mm.urllib.request, "urlopen", offline)
    monkeypatch.delenv("IMBAL_DATA", raising=False)
    monkeypatch.setenv("IMBAL_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"could not download .*Offline\? Put breastmnist.npz"):
        load_medmnist("breastmnist")
    assert not list(tmp_path.rglob("*.part"))  # no half file left behind


def test_download_verifies_and_renames(data_root, tmp_path, monkeypatch):
    import io

    import imbal.data.medmnist as mm

    payload = (data_root / "retinamnist" / "retinamnist.npz").read_bytes()

    class Resp(io.BytesIO):
        headers: typing.ClassVar = {"Content-Length": str(len(payload))}

    monkeypatch.setattr(mm.urllib.request, "urlopen", lambda *a, **k: Resp(payload))
    monkeypatch.delenv("IMBAL_DATA", raising=False)
    monkeypatch.setenv("IMBAL_CACHE", str(tmp_path))
    splits = load_medmnist("retinamnist")
    assert len(splits.train) == 1080
    assert md5sum(tmp_path / "retinamnist" / "retinamnist.npz") == "bd4c0672f1bba3e3a89f0e4e876791e4"
    # a corrupt download is refused and not kept
    (tmp_path / "retinamnist" / "retinamnist.npz").unlink()
    monkeypatch.setattr(mm.urllib.request, "urlopen", lambda *a, **k: Resp(payload[:1000]))
    with pytest.raises(ValueError, match="MD5 mismatch"):
        load_medmnist("retinamnist")
    assert not (tmp_path / "retinamnist" / "retinamnist.npz").exists()


def test_unknown_and_bad_size():
    with pytest.raises(ValueError, match="unknown MedMNIST set 'nosuchmnist'"):
        load_medmnist("nosuchmnist")
    with pytest.raises(ValueError, match=r"vesselmnist3d has sizes \[28, 64\], got size=128"):
        load_medmnist("vesselmnist3d", size=128)
    with pytest.raises(ValueError, match="chestmnist is multi-label"):
        load_medmnist("chestmnist")


def write_npz(path, shape, k=3, n=(20, 6, 8)):
    g = np.random.default_rng(0)
    arrays = {}
    for split, m in zip(("train", "val", "test"), n):
        arrays[f"{split}_images"] = g.integers(0, 256, (m, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(m) % k).astype(np.uint8)[:, None]
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((16, 16), (1, 16, 16)), ((16, 16, 3), (3, 16, 16)), ((12, 12, 12), (1, 12, 12, 12))],
)
def test_load_npz_layouts(tmp_path, shape, expected):
    write_npz(tmp_path / "x.npz", shape)
    splits = load_npz(tmp_path / "x.npz")
    assert tuple(splits.train.images.shape[1:]) == expected
    assert splits.train.num_classes == 3
    assert load_dataset(str(tmp_path / "x.npz")).val.images.shape[0] == 6


def test_corrupt_and_incomplete_npz(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="not a readable npz archive"):
        load_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="missing keys"):
        load_npz(tmp_path / "partial.npz")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(ValueError, match="missing keys"):
        load_npz(tmp_path / "empty.npz")


def test_image_folder_csv(tmp_path):
    from PIL import Image

    names = ["normal", "early", "advanced"]
    rows = []
    for i in range(24):
        k = [0, 0, 0, 1, 2, 2][i % 6]
        img = np.full((40, 50, 3), 40 * k + 20, dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / f"img{i}.png")
        rows.append({"Class": names[k], "Class_Int": k, "Filename": f"img{i}.png"})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    splits = load_image_folder(tmp_path / "labels.csv", size=32, fractions=(0.5, 0.25, 0.25))
    assert splits.train.images.shape[1:] == (3, 32, 32)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 24
    assert splits.train.class_names == names
    # stratified: every split holds every class
    for s in ("train", "val", "test"):
        assert (splits[s].class_counts > 0).all()
    # pixel values survive (class 2 images are uniform 100)
    i = int(torch.nonzero(splits.train.labels == 2)[0])
    assert int(splits.train.images[i].float().mean().round()) == 100
    with pytest.raises(ValueError, match="label column 'grade' not in CSV columns"):
        load_image_folder(tmp_path / "labels.csv", label_column="grade")


def test_nifti_csv(tmp_path):
    import nibabel as nib

    rows = []
    g = np.random.default_rng(1)
    for i in range(12):
        row = {"label": i % 3}
        for seq in ("t1", "t1c", "t2", "flair"):
            vol = np.zeros((20, 22, 18), np.float32)
            vol[4:16, 5:17, 3:15] = g.uniform(100, 900, (12, 12, 12))
            nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / f"s{i}_{seq}.nii.gz")
            row[seq] = f"s{i}_{seq}.nii.gz"
        rows.append(row)
    pd.DataFrame(rows).to_csv(tmp_path / "glioma.csv", index=False)
    splits = load_nifti_csv(
        tmp_path / "glioma.csv",
        sequence_columns=["t1", "t1c", "t2", "flair"],
        size=16,
        fractions=(0.5, 0.25, 0.25),
    )
    x = splits.train.images
    assert x.shape[1:] == (4, 16, 16, 16) and x.dtype == torch.uint8
    assert int(x.max()) == 255 and int(x.min()) == 0  # [0, 1] inside the mask, 0 outside
    assert splits.train.spatial_dims == 3 and splits.train.num_classes == 3


def test_synthetic_labelled_and_imbalanced():
    s = synthetic(2, 400, (0.7, 0.2, 0.1), size=16, seed=3)
    assert s.synthetic and s.train.synthetic and "synthetic" in s.source
    counts = s.train.class_counts
    assert counts[0] > counts[1] > counts[2]
    assert torch.equal(synthetic(2, 400, (0.7, 0.2, 0.1), size=16, seed=3).train.images, s.train.images)


@pytest.mark.parametrize("dims", [2, 3])
def test_synthetic_is_learnable(dims):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    s = synthetic(dims, 600, (0.5, 0.3, 0.2), size=12, seed=0)
    x_tr = s.train.images.flatten(1).float().numpy() / 255
    x_te = s.test.images.flatten(1).float().numpy() / 255
    probe = LogisticRegression(max_iter=300).fit(x_tr, s.train.labels.numpy())
    ba = balanced_accuracy_score(s.test.labels.numpy(), probe.predict(x_te))
    assert ba > 0.6  # chance is 1/3


def test_ordinal_key_for_any_kind_and_kept_by_copies(tmp_path):
    from imbal.data import place_splits
    from imbal.data.medmnist_info import MEDMNIST
    from imbal.errors import DataError

    assert [n for n, i in MEDMNIST.items() if i.ordinal] == ["retinamnist"]
    spec = {"kind": "synthetic", "n": 60, "size": 8}
    assert not load_dataset(spec).ordinal
    graded = load_dataset({**spec, "ordinal": True})
    assert graded.ordinal and place_splits(graded, "cpu", 0).ordinal and place_splits(graded, "cpu").ordinal
    path = tmp_path / "graded.npz"
    write_npz(path, (8, 8))
    assert load_dataset({"kind": "npz", "path": str(path), "ordinal": True}).ordinal
    with pytest.raises(DataError, match=r"dataset key 'ordinal' must be true or false, got 'yes'"):
        load_dataset({**spec, "ordinal": "yes"})


def _digest(splits):
    import hashlib

    parts = (
        splits[p].images.numpy().tobytes() + splits[p].labels.numpy().tobytes()
        for p in ("train", "val", "test")
    )
    return hashlib.sha256(b"".join(parts)).hexdigest()[:16]


def test_synthetic_defaults_are_the_original_set_bit_for_bit():
    # digests of the generator before overlap / tint / label_noise / fractions existed
    assert _digest(synthetic(2, 300, (0.6, 0.3, 0.1), size=12, seed=4, channels=3)) == "9b2715de5794e3ce"
    assert _digest(synthetic(3, 60, size=8, seed=1)) == "ed0507652e02de49"


@pytest.mark.parametrize("dims", [2, 3])
def test_synthetic_hard_set_parts(dims):
    ratios = (0.5, 0.3, 0.2)  # class 2 is the rarest, class 0 the most frequent
    base = dict(spatial_dims=dims, n=300, class_ratios=ratios, size=10, seed=1, fractions=(0.5, 0.2, 0.3))
    plain, tinted = synthetic(**base, channels=3), synthetic(**base, channels=3, tint=0.5)
    for split in ("train", "val", "test"):
        diff = (tinted[split].images.int() - plain[split].images.int()).flatten(2)  # (N, C, pixels)
        # the tint raises the first channel of the rarest class only, every image of it
        assert torch.equal(diff[:, 0].amax(1) > 0, plain[split].labels == 2) and (diff[:, 0] >= 0).all()
        assert (diff[:, 1:] == 0).all()
    assert len(plain.test) == 90 and (plain.test.class_counts > 0).all()
    # overlap 1: the rarest class's template is the most frequent one's
    same = synthetic(**base, overlap=1.0)
    x, y = same.train.images.float().flatten(1), same.train.labels
    gap = lambda a, b: (x[y == a].mean(0) - x[y == b].mean(0)).abs().mean()  # noqa: E731
    assert gap(2, 0) < gap(1, 0) / 3
    # label noise: the same images (split anew by the new labels), 0.3 of the labels redrawn from the
    # class mix, so about 0.3 * (1 - sum p^2) = 0.19 of them change
    noisy, clean = synthetic(**base, label_noise=0.3), synthetic(**base)
    truth = {img.numpy().tobytes(): int(y) for s in ("train", "val", "test") for img, y in zip(clean[s].images, clean[s].labels)}  # fmt: skip
    pairs = [(truth[img.numpy().tobytes()], int(y)) for s in ("train", "val", "test") for img, y in zip(noisy[s].images, noisy[s].labels)]  # fmt: skip
    assert len(pairs) == 300 and 0.1 < sum(a != b for a, b in pairs) / 300 < 0.3


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"overlap": 1.5}, r"synthetic overlap must be a number in \[0, 1\], got 1.5"),
        ({"label_noise": 1.0}, r"synthetic label_noise must be a number in \[0, 0.999\], got 1.0"),
        ({"tint": float("nan")}, r"synthetic tint must be a finite number, got nan"),
        ({"fractions": (0.5, 0.5, 0.0)}, r"synthetic fractions must be three numbers > 0 summing to 1"),
    ],
)
def test_synthetic_hard_set_arguments_checked(kw, message):
    from imbal.errors import DataError

    with pytest.raises(DataError, match=message):
        synthetic(**{"n": 60, "size": 8, **kw})


def test_an_official_medmnist_file_loaded_by_path_gets_its_class_names(data_root, tmp_path):
    from imbal.data.medmnist_info import MEDMNIST

    copy = tmp_path / "my_copy.npz"  # recognised by its MD5, not by its name
    shutil.copy(data_root / "retinamnist" / "retinamnist.npz", copy)
    for spec in (str(copy), {"kind": "npz", "path": str(copy)}):
        splits = load_dataset(spec)
        assert splits.train.class_names == list(MEDMNIST["retinamnist"].class_names)
        assert splits.train.name == "retinamnist"
