"""Refusals found by the reliability review: bad pixel scales, class sets, empty splits, unclear errors.

Each case used to load silently wrong (or die with a raw library error); each now raises a
user error naming the file, split or row, the value and the count.
"""

import inspect

import numpy as np
import pandas as pd
import pytest
import torch

from imbal.data import (
    MEDMNIST,
    Splits,
    load_dataset,
    load_image_folder,
    load_medmnist,
    load_nifti_csv,
    load_npz,
)
from imbal.data.cache import write_cache
from imbal.data.folder import read_image
from imbal.data.nifti import normalise_in_mask
from imbal.errors import DataError, MissingFileError
from imbal.naming import SPLITS


def save_npz(path, images=None, labels=None, n=(12, 6, 6), k=3, dtype=np.uint8):
    """A valid 3-class npz unless ``images`` / ``labels`` (split -> array) override a split."""
    g = np.random.default_rng(0)
    arrays = {}
    for split, m in zip(SPLITS, n):
        arrays[f"{split}_images"] = g.integers(0, 255, (m, 6, 6)).astype(dtype)
        arrays[f"{split}_labels"] = (np.arange(m) % k)[:, None]
    for split, a in (images or {}).items():
        arrays[f"{split}_images"] = a
    for split, a in (labels or {}).items():
        arrays[f"{split}_labels"] = a
    np.savez(path, **arrays)
    return path


# --- 1. pixel values and labels -----------------------------------------------------------


def test_float_images_one_scale_rule_over_all_splits(tmp_path):
    g = np.random.default_rng(1)
    unit = {s: g.uniform(0, 1, (m, 6, 6)) for s, m in zip(SPLITS, (12, 6, 6))}
    splits = load_npz(save_npz(tmp_path / "unit.npz", images=unit))
    for s in SPLITS:  # every split x255, none rounded to {0, 1}
        assert torch.equal(splits[s].images[:, 0], torch.from_numpy(np.rint(unit[s] * 255).astype(np.uint8)))
    with pytest.raises(DataError, match=r"mixed.npz: train images lie in \[0, 1\] but the others reach 254"):
        load_npz(save_npz(tmp_path / "mixed.npz", images={"train": unit["train"]}, dtype=np.float32))
    with pytest.raises(
        DataError, match=r"pm1.npz: images span \[-0\.99.*rescale them to \[0, 1\] or \[0, 255\]"
    ):
        load_npz(save_npz(tmp_path / "pm1.npz", images={"train": unit["train"] * 2 - 1}, dtype=np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_refused(tmp_path, bad):
    x = np.random.default_rng(2).uniform(0, 1, (6, 6, 6))
    x[1, 2, 3] = x[4, 0, 0] = bad
    with pytest.raises(DataError, match=r"nan.npz: val_images holds 2 NaN/inf value\(s\) of 216"):
        load_npz(save_npz(tmp_path / "nan.npz", images={"val": x}, dtype=np.float32))


def test_integer_images_outside_0_255_refused(tmp_path):
    x = np.full((6, 6, 6), 300, np.int16)
    with pytest.raises(DataError, match=r"i16.npz: images span \[0, 300\] .*test \[300, 300\]"):
        load_npz(save_npz(tmp_path / "i16.npz", images={"test": x}, dtype=np.int16))


def test_labels_must_be_non_negative_whole_numbers(tmp_path):
    whole = {"train": (np.arange(12) % 3).astype(np.float64)}
    assert load_npz(save_npz(tmp_path / "whole.npz", labels=whole)).train.labels.tolist()[:4] == [0, 1, 2, 0]
    frac = {"train": np.where(np.arange(12) == 4, 1.7, np.arange(12) % 3)}
    with pytest.raises(
        DataError, match=r"frac.npz: train_labels: 1 label\(s\) are not whole numbers \(e.g. 1.7\)"
    ):
        load_npz(save_npz(tmp_path / "frac.npz", labels=frac))
    neg = {"test": np.array([0, 1, 2, -1, -1, 0])}
    with pytest.raises(DataError, match=r"neg.npz: test_labels: 2 negative label\(s\) \(e.g. -1\)"):
        load_npz(save_npz(tmp_path / "neg.npz", labels=neg))


def nifti_set(tmp_path, first=None, rows=12, shape=(10, 10, 10)):
    import nibabel as nib

    g = np.random.default_rng(3)
    recs = []
    for i in range(rows):
        vol = np.zeros(shape, np.float32)
        vol[2:8, 2:8, 2:8] = g.uniform(100, 900, (6, 6, 6))
        if i == 0 and first is not None:
            vol = first(vol)
        if isinstance(vol, bytes):
            (tmp_path / f"s{i}.nii.gz").write_bytes(vol)
        else:
            nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / f"s{i}.nii.gz")
        recs.append({"t1": f"s{i}.nii.gz", "label": i % 3})
    pd.DataFrame(recs).to_csv(tmp_path / "x.csv", index=False)
    return tmp_path / "x.csv"


def load_nifti(csv, **kw):
    return load_nifti_csv(csv, sequence_columns=["t1"], size=8, fractions=(0.5, 0.25, 0.25), **kw)


def test_nifti_nan_voxel_refused_with_file_and_row(tmp_path):
    def one_nan(v):
        v[4, 4, 4] = np.nan
        return v

    with pytest.raises(
        DataError, match=r"s0.nii.gz \(.*x.csv line 2, column 't1'\): 1 NaN/inf voxel\(s\) of 1000"
    ):
        load_nifti(nifti_set(tmp_path, one_nan))
    with pytest.raises(DataError, match="volume holds 1 NaN/inf voxel"):
        normalise_in_mask(one_nan(np.ones((5, 5, 5))))
    # near the float64 limit the min-max still maps into [0, 1] (no overflow to NaN)
    out = normalise_in_mask(np.array([[[-1.7e308, 0.0, 1.7e308]]]))
    assert out.tolist() == [[[0.0, 0.0, 1.0]]]


def test_nifti_shape_and_corrupt_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    # a trailing singleton axis (X, Y, Z, 1) is a 3D volume
    splits = load_nifti(nifti_set(tmp_path / "a", lambda v: v[..., None]))
    assert splits.train.images.shape[1:] == (1, 8, 8, 8)
    with pytest.raises(
        DataError, match=r"s0.nii.gz \(.*line 2, column 't1'\): expected a 3D volume, got shape=\(10, 10\)"
    ):
        load_nifti(nifti_set(tmp_path / "b", lambda v: v[0]))
    with pytest.raises(
        DataError, match=r"s0.nii.gz \(.*line 2, column 't1'\) is not a readable NIfTI volume"
    ):
        load_nifti(nifti_set(tmp_path / "c", lambda v: b"\x1f\x8b\x08 not a volume"))


# --- 2. the class set ------------------------------------------------------------------------


def test_class_set_comes_from_train_not_the_largest_label(tmp_path):
    labels = {"test": np.array([0, 1, 2, 9, 0, 1])}
    with pytest.raises(
        DataError,
        match=r"t9.npz: test has label\(s\) outside the 3 classes 0..2 of the training split: 9 \(1 sample\)",
    ):
        load_npz(save_npz(tmp_path / "t9.npz", labels=labels))
    # a declared class set that train does not cover is refused too
    with pytest.raises(DataError, match=r"1 of 4 classes have no training samples \(3: val 0, test 0\)"):
        load_npz(save_npz(tmp_path / "k4.npz"), num_classes=4)


def test_one_class_train_and_shape_mismatch(tmp_path):
    zeros = {s: np.zeros((m, 1), np.int64) for s, m in zip(SPLITS, (12, 6, 6))}
    with pytest.raises(DataError, match=r"one.npz: the train split holds only class 0 \(12 samples\)"):
        load_npz(save_npz(tmp_path / "one.npz", labels=zeros))
    big = {"test": np.zeros((6, 7, 7), np.uint8)}
    with pytest.raises(
        DataError, match=r"test images are \(C, \*spatial\)=\(1, 7, 7\), train images are \(1, 6, 6\)"
    ):
        load_npz(save_npz(tmp_path / "shape.npz", images=big))
    rgb = {"val": np.zeros((6, 6, 6, 3), np.uint8)}
    with pytest.raises(DataError, match=r"val images are \(C, \*spatial\)=\(3, 6, 6\)"):
        load_npz(save_npz(tmp_path / "rgb.npz", images=rgb))


def image_folder(tmp_path, rows, corrupt=None):
    from PIL import Image

    for r in rows:
        if isinstance(r.get("Filename"), str):
            Image.fromarray(np.full((10, 12, 3), 60, np.uint8)).save(tmp_path / r["Filename"])
    if corrupt:
        (tmp_path / corrupt).write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path / "labels.csv"


NAMES = ["normal", "early", "advanced"]


def glaucoma_rows(n=24):
    return [{"Class": NAMES[i % 3], "Class_Int": i % 3, "Filename": f"i{i}.png"} for i in range(n)]


def load_folder(csv, **kw):
    return load_image_folder(csv, size=8, fractions=(0.5, 0.25, 0.25), **kw)


def test_csv_class_int_and_name_must_agree(tmp_path):
    rows = glaucoma_rows()
    rows[4]["Class"] = "eraly"  # line 6
    with pytest.raises(
        DataError,
        match=r"'Class_Int' and 'Class' disagree: Class_Int 1 goes with 'early' \(7 rows: .*'eraly' \(line 6\)",
    ):
        load_folder(image_folder(tmp_path, rows))
    rows = glaucoma_rows()
    rows[5]["Class_Int"] = 7  # 'advanced' is 2 elsewhere
    with pytest.raises(DataError, match=r"Class 'advanced' goes with 2 \(7 rows: .*\), 7 \(line 7\)"):
        load_folder(image_folder(tmp_path, rows))


def test_csv_integer_labels_without_gaps(tmp_path):
    rows = glaucoma_rows()
    for r in rows:
        del r["Class"]
    rows[5]["Class_Int"] = 7
    with pytest.raises(
        DataError,
        match=r"'Class_Int' must hold 0..K-1 without gaps; it has no \[3, 4, 5, 6\] but \[7\] \(line 7\)",
    ):
        load_folder(image_folder(tmp_path, rows))


def test_csv_declared_classes_catch_a_typo(tmp_path):
    rows = [{"Class": NAMES[i % 3], "Filename": f"i{i}.png"} for i in range(24)]
    rows[4]["Class"] = "eraly"
    csv = image_folder(tmp_path, rows)
    with pytest.raises(
        DataError, match=r"'Class' values \['eraly'\] \(line 6\) are not among the declared classes"
    ):
        load_folder(csv, label_column="Class", class_names_column=None, classes=NAMES)
    # undeclared, the typo is a class of its own that train lacks
    with pytest.raises(
        DataError, match=r"1 of 4 classes have no training samples \(2 \('eraly'\): val 1, test 0\)"
    ):
        load_folder(csv, label_column="Class", class_names_column=None)
    rows[4]["Class"] = "early"
    splits = load_folder(
        image_folder(tmp_path, rows), label_column="Class", class_names_column=None, classes=NAMES
    )
    assert splits.train.class_names == NAMES and splits.train.class_counts.tolist() == [4, 4, 4]


def test_csv_empty_label_cell_names_the_line(tmp_path):
    rows = glaucoma_rows()
    rows[3]["Class_Int"] = None
    with pytest.raises(
        DataError, match=r"labels.csv: empty 'Class_Int' cell \(line 5\); fill it or drop the row"
    ):
        load_folder(image_folder(tmp_path, rows))


# --- 3. empty splits ----------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["val", "test"])
def test_empty_split_refused_at_load(tmp_path, split):
    empty = {split: np.zeros((0, 6, 6), np.uint8)}
    with pytest.raises(DataError, match=rf"e.npz: the {split} split is empty \(0 samples\)"):
        load_npz(save_npz(tmp_path / "e.npz", images=empty, labels={split: np.zeros(0, np.int64)}))


def test_empty_val_from_a_split_column(tmp_path):
    rows = glaucoma_rows()
    for i, r in enumerate(rows):
        r["split"] = "test" if i % 4 == 3 else "train"
    with pytest.raises(DataError, match=r"labels.csv: the val split is empty \(0 samples\)"):
        load_image_folder(image_folder(tmp_path, rows), size=8, split_column="split")


def test_load_dataset_checks_every_source(tmp_path):
    """A source without its own checks (a cache written from unchecked splits) is refused too."""
    ok = load_npz(save_npz(tmp_path / "ok.npz"))
    bad = Splits(ok.train, ok.val.subset([]), ok.test, source="hand-made")
    write_cache(bad, tmp_path / "cache", source="hand-made", settings={})
    with pytest.raises(DataError, match=r"the val split is empty \(0 samples\)"):
        load_dataset({"kind": "cache", "path": str(tmp_path / "cache")})
    with pytest.raises(DataError, match=r"hand-made: the val split is empty"):
        bad.check()


# --- 4. clear errors ---------------------------------------------------------------------------


def test_corrupt_png_names_the_file(tmp_path):
    with pytest.raises(
        DataError, match=r"i3.png \(.*labels.csv line 5\) is not a readable image \(UnidentifiedImageError"
    ):
        load_folder(image_folder(tmp_path, glaucoma_rows(), corrupt="i3.png"))
    (tmp_path / "i3.png").unlink()
    with pytest.raises(
        MissingFileError, match=r"1 image\(s\) listed in .*labels.csv are missing in .*\['i3.png'\]"
    ):
        load_folder(tmp_path / "labels.csv")


def test_16_bit_png_refused_not_clipped(tmp_path):
    from PIL import Image

    csv = image_folder(tmp_path, glaucoma_rows())
    Image.fromarray(np.full((10, 12), 1000, np.uint16)).save(tmp_path / "i2.png")
    with pytest.raises(
        DataError, match=r"i2.png \(.*line 4\): I;16 pixels span \[1000, 1000\]; expected 8-bit"
    ):
        load_folder(csv)
    Image.fromarray(np.full((10, 12), 90, np.uint16)).save(tmp_path / "i2.png")  # 16-bit file, 8-bit values
    splits = load_folder(csv)
    assert 90 in [int(x.float().mean()) for d in (splits.train, splits.val, splits.test) for x in d.images]


def png_48_bit(path, value):
    """A 16-bit-per-channel RGB PNG (PIL cannot write one) of 4 x 4 pixels of ``value``."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + struct.pack(">H", value) * 3 * 4 for _ in range(4))
    ihdr = struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_16_bit_colour_png_refused_not_read_by_its_high_byte(tmp_path):
    from PIL import Image

    png_48_bit(tmp_path / "c.png", 200)
    with Image.open(tmp_path / "c.png") as im:  # what PIL alone would give: 200 -> 0, silently
        assert im.mode == "RGB" and np.asarray(im).max() == 0
    with pytest.raises(
        DataError, match=r"c.png is a 16-bit colour PNG, which PIL reads by its high byte only"
    ):
        read_image(tmp_path / "c.png", 4, 3)


def test_empty_or_incomplete_csv(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(
        DataError,
        match=r"empty.csv is empty; expected a header row with the columns \['Filename', 'Class_Int'\]",
    ):
        load_image_folder(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("Filename,Class_Int\n")
    with pytest.raises(DataError, match="header.csv has a header but no rows"):
        load_image_folder(tmp_path / "header.csv")
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(
        DataError,
        match=r"cols.csv: filename column 'Filename' not in CSV columns \['a', 'b'\]; set filename_column",
    ):
        load_image_folder(tmp_path / "cols.csv")
    with pytest.raises(
        DataError,
        match=r"cols.csv: sequence column 't1' not in CSV columns \['a', 'b'\]; set sequence_columns",
    ):
        load_nifti_csv(tmp_path / "cols.csv", sequence_columns=["t1"])
    with pytest.raises(MissingFileError, match="no CSV file at .*nothere.csv"):
        load_image_folder(tmp_path / "nothere.csv")


def test_dataset_mapping_keys(tmp_path):
    from imbal.data import LOADERS

    with pytest.raises(DataError, match=r"dataset \{kind: npz\} needs 'path' \(the .npz file\)"):
        load_dataset({"kind": "npz"})
    with pytest.raises(DataError, match=r"dataset \{kind: nifti\} needs 'csv' .*'sequence_columns'"):
        load_dataset({"kind": "nifti"})
    accepted = ", ".join(inspect.signature(load_npz).parameters)
    with pytest.raises(
        DataError, match=rf"dataset \{{kind: npz\}} has unknown key\(s\) \['pathh'\]; npz accepts {accepted}$"
    ):
        load_dataset({"kind": "npz", "pathh": "x.npz"})
    with pytest.raises(
        DataError, match=r"has unknown key\(s\) \['nn'\]; synthetic accepts spatial_dims, n, "
    ):
        load_dataset({"kind": "synthetic", "nn": 5})
    with pytest.raises(DataError, match=r"unknown dataset kind 'dicom'; expected one of \('medmnist', 'npz'"):
        load_dataset({"kind": "dicom", "path": "x"})
    with pytest.raises(DataError, match=r"unknown dataset kind \['npz'\]"):
        load_dataset({"kind": ["npz"]})
    assert set(LOADERS) == {"medmnist", "npz", "folder", "nifti", "synthetic", "cache"}
    good = load_dataset({"kind": "npz", "path": str(save_npz(tmp_path / "g.npz")), "num_classes": 3})
    assert good.train.num_classes == 3


def test_npz_that_is_not_an_npz(tmp_path):
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(DataError, match=r"single.npz holds a single array \(an .npy file\)"):
        load_npz(tmp_path / "single.npz")
    np.savez(
        tmp_path / "obj.npz",
        train_images=np.array([object()]),
        **{
            f"{s}_{k}": np.zeros(2)
            for s in SPLITS
            for k in ("images", "labels")
            if (s, k) != ("train", "images")
        },
    )
    with pytest.raises(DataError, match="obj.npz is not a readable npz archive"):
        load_npz(tmp_path / "obj.npz")
    with pytest.raises(MissingFileError, match="no npz file at"):
        load_npz(tmp_path / "none.npz")


# --- 6. class names -----------------------------------------------------------------------------


def test_official_class_names():
    assert all(len(info.class_names) == info.num_classes for info in MEDMNIST.values())
    assert MEDMNIST["breastmnist"].class_names == ("malignant", "normal, benign")
    assert MEDMNIST["retinamnist"].class_names == ("0", "1", "2", "3", "4")
    assert MEDMNIST["organmnist3d"].class_names[:2] == ("liver", "kidney-right")
    assert MEDMNIST["organamnist"].class_names[:2] == ("bladder", "femur-left")


def test_load_medmnist_sets_class_names_and_minority(data_root):
    splits = load_medmnist("vesselmnist3d", root=data_root, download=False)
    assert splits.train.class_names == ["vessel", "aneurysm"] == splits.test.class_names
    assert splits.train.minority_class == 1


def test_label_is_a_naming_key_of_every_kind():
    from imbal.data import load_dataset

    spec = {"kind": "synthetic", "n": 120, "size": 8, "label": "mine"}
    plain = load_dataset({k: v for k, v in spec.items() if k != "label"})
    labelled = load_dataset(spec)
    assert torch.equal(plain.test.images, labelled.test.images)
