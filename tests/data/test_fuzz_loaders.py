"""Fuzzing the file loaders with damaged sources (hypothesis).

Property: a loader either returns valid :class:`Splits` (uint8 images, labels within the class
set, all three splits non-empty, two or more training classes, one shape) or raises a
:class:`UserError` on one line; any other exception type is a bug.

Each example starts from a healthy source and applies up to two faults drawn from a catalogue
(some harmless, such as float pixels in [0, 1] or a 16-bit PNG, most not). Each loader's test
counts its own examples' outcomes, prints them, and asserts that both kinds occurred.
"""

import collections
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imbal.data import load_dataset, load_image_folder, load_nifti_csv, load_npz
from imbal.errors import UserError
from imbal.naming import SPLITS

# examples per loader: sized for ~20 s on a laptop core; IMBAL_FUZZ_SCALE=10 for a deeper local hunt
SCALE = float(os.environ.get("IMBAL_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=int(400 * SCALE),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FILE_FAULTS = ["truncate", "flip", "junk", "empty", "missing"]


def assert_valid(splits) -> None:
    k = splits.train.num_classes
    shape = tuple(splits.train.images.shape[1:])
    for s in SPLITS:
        d = splits[s]
        assert len(d) > 0, s
        assert d.images.dtype == torch.uint8 and d.images.ndim in (4, 5)
        assert tuple(d.images.shape[1:]) == shape
        assert d.labels.dtype == torch.int64 and d.num_classes == k
        assert int(d.labels.min()) >= 0 and int(d.labels.max()) < k
        assert len(d.class_names) == k
    assert len(torch.unique(splits.train.labels)) == k >= 2


def outcome(counts: collections.Counter, load) -> None:
    """Run ``load``: a returned value must be valid, an exception must be a one-line UserError."""
    try:
        splits = load()
    except UserError as exc:
        assert "\n" not in str(exc), str(exc)  # the CLI prints user errors on one line
        counts[type(exc).__name__] += 1
        return
    assert_valid(splits)
    counts["valid"] += 1


def run_and_report(loader: str, fuzz, capsys) -> None:
    """Run the hypothesis function ``fuzz`` with a counter of its own; print and check the counts.

    The counter lives in this call, not in the module, so each test checks its own examples
    whichever tests ran before it (or did not run at all).
    """
    counts: collections.Counter = collections.Counter()
    fuzz(counts)
    with capsys.disabled():
        print(f"\nfuzz {loader}: {sum(counts.values())} examples: {dict(sorted(counts.items()))}")
    # both outcomes seen: the generators reach past the first check
    assert counts["valid"] > 0 and sum(counts.values()) > counts["valid"], dict(counts)


def faults(draw, catalogue: list[str]) -> set[str]:
    """No fault about a third of the time, else one or two from ``catalogue``."""
    n = draw(st.sampled_from([0, 0, 1, 1, 1, 2]))
    return set(draw(st.lists(st.sampled_from(catalogue), min_size=n, max_size=n)))


def damage(path: Path, how: str, rng: np.random.Generator) -> None:
    """Truncate, flip bytes in, replace with junk, empty or delete a written file."""
    if how == "missing":
        path.unlink()
        return
    data = path.read_bytes()
    if how == "truncate":
        data = data[: int(rng.integers(0, max(1, len(data))))]
    elif how == "flip":
        buf = bytearray(data)
        for i in rng.integers(0, len(buf), size=4):
            buf[i] ^= 0xFF
        data = bytes(buf)
    elif how == "junk":
        data = rng.bytes(int(rng.integers(1, 64)))
    elif how == "empty":
        data = b""
    path.write_bytes(data)


# --- npz -------------------------------------------------------------------------------------------

NPZ_FAULTS = [
    # harmless
    "unit_floats", "byte_floats", "int16_in_range", "float_whole_labels", "rgb", "volume", "extra_key",
    # bad values
    "mixed_scale", "minus1", "int_over_255", "bool_images", "complex_images", "nan", "inf",
    "label_fraction", "label_negative", "label_huge", "label_nan", "label_text", "label_2d", "label_short",
    # bad class sets and splits
    "empty_split", "one_class", "stray_label", "num_classes_1", "num_classes_big",
    # bad layouts
    "shape_mismatch", "flat_images", "zero_axis", "wrong_spatial_dims", "missing_key",
    # bad files
    *FILE_FAULTS, "npy_instead", "object_array",
]  # fmt: skip


def npz_arrays(f: set[str], rng, draw) -> tuple[dict[str, np.ndarray], int]:
    k = draw(st.sampled_from([2, 3]))
    layout = (4, 4, 3) if "rgb" in f else (3, 3, 3) if "volume" in f else (5, 5)
    victim = draw(st.sampled_from(SPLITS))
    arrays = {}
    for s in SPLITS:
        n = 0 if "empty_split" in f and s == victim else draw(st.sampled_from([6, 9]))
        own = (6, 6) if "shape_mismatch" in f and s == victim else layout
        own = (5,) if "flat_images" in f else (0, 4) if "zero_axis" in f else own
        x = rng.uniform(0, 1, (n, *own))
        if "unit_floats" in f or ("mixed_scale" in f and s == victim):
            x = x.astype(np.float32)
        elif "byte_floats" in f or "mixed_scale" in f:
            x = x * 255
        elif "minus1" in f:
            x = x * 2 - 1
        elif "int16_in_range" in f:
            x = (x * 255).astype(np.int16)
        elif "int_over_255" in f:
            x = (x * 1000).astype(np.int32)
        elif "bool_images" in f:
            x = x > 0.5
        elif "complex_images" in f:
            x = x.astype(np.complex64)
        else:
            x = (x * 255).astype(np.uint8)
        for bad in ("nan", "inf"):
            if bad in f and s == victim and x.size and x.dtype.kind == "f":
                x.flat[int(rng.integers(0, x.size))] = np.nan if bad == "nan" else -np.inf
        y = np.zeros(n, np.int64) if "one_class" in f else rng.permutation(np.arange(n) % k)
        if s == victim and n:
            y = npz_label_fault(f, y, k)
        arrays[f"{s}_images"], arrays[f"{s}_labels"] = x, y
    if "missing_key" in f:
        arrays.pop(draw(st.sampled_from(sorted(arrays))))
    if "extra_key" in f:
        arrays["notes"] = np.arange(3)
    if "object_array" in f:
        arrays["train_labels"] = np.array([object()] * 3)
    return arrays, k


def npz_label_fault(f: set[str], y: np.ndarray, k: int) -> np.ndarray:
    first = np.arange(len(y)) == 0
    if "float_whole_labels" in f:
        return y.astype(np.float64)
    if "label_fraction" in f:
        return np.where(first, 0.5, y)
    if "label_negative" in f:
        return np.where(first, -1, y)
    if "label_huge" in f:
        return np.where(first, 10**12, y)
    if "label_nan" in f:
        return np.where(first, np.nan, y)
    if "stray_label" in f:
        return np.where(first, k + 5, y)
    if "label_text" in f:
        return y.astype(str)
    if "label_2d" in f:
        return np.stack([y, y], 1)
    if "label_short" in f:
        return y[:-1]
    return y[:, None] if k == 3 else y


@FUZZ
@given(data=st.data())
def fuzz_npz(counts: collections.Counter, data) -> None:
    draw = data.draw
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    f = faults(draw, NPZ_FAULTS)
    arrays, k = npz_arrays(f, rng, draw)
    kwargs = {}
    if "num_classes_1" in f:
        kwargs["num_classes"] = 1
    if "num_classes_big" in f:
        kwargs["num_classes"] = k + 1
    if "wrong_spatial_dims" in f:
        kwargs["spatial_dims"] = 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npz"
        if "npy_instead" in f:
            with open(path, "wb") as out:
                np.save(out, arrays["train_images"])
        else:
            (np.savez_compressed if draw(st.booleans()) else np.savez)(path, **arrays)
        for how in FILE_FAULTS:
            if how in f:
                damage(path, how, rng)
                break
        if draw(st.booleans()):
            outcome(counts, lambda: load_npz(path, **kwargs))
        else:
            outcome(counts, lambda: load_dataset({"kind": "npz", "path": str(path), **kwargs}))


def test_fuzz_npz(capsys):
    run_and_report("npz", fuzz_npz, capsys)


# --- CSVs (shared by the folder and NIfTI loaders) -------------------------------------------------

CSV_FAULTS = [
    # harmless
    "text_labels", "declared_classes", "split_column",
    # bad labels and class sets
    "typo", "stray_int", "fraction", "negative", "empty_label", "one_class", "too_few_rows",
    # bad splits
    "split_no_val", "split_bogus", "split_empty_cell",
    # bad CSVs
    "csv_empty", "csv_header_only", "csv_junk", "csv_no_label_column", "empty_file_cell",
    # a bad file behind one row
    *FILE_FAULTS,
]  # fmt: skip


def csv_rows(f: set[str], rng, draw) -> tuple[list[dict], int]:
    """Rows with a label, a class name and (with a split fault) a split column; and the class count."""
    k = draw(st.sampled_from([2, 3]))
    n = 3 if "too_few_rows" in f else draw(st.sampled_from([8, 12]))
    ints = [0] * n if "one_class" in f else [i % k for i in range(n)]
    rows = [{"label": v, "name": f"c{v}"} for v in ints]
    i = int(rng.integers(0, n))
    for fault, key, value in (
        ("typo", "name", "c0x"),
        ("stray_int", "label", 7),
        ("fraction", "label", 1.5),
        ("negative", "label", -1),
        ("empty_label", "label", None),
    ):
        if fault in f:
            rows[i][key] = value
    if "text_labels" in f:
        for r in rows:
            r["label"] = r["name"]
    if f & {"split_column", "split_no_val", "split_bogus", "split_empty_cell"}:
        for j, r in enumerate(rows):
            r["split"] = SPLITS[j % 3]
            if "split_no_val" in f and r["split"] == "val":
                r["split"] = "train"
        if "split_bogus" in f:
            rows[i]["split"] = "holdout"
        if "split_empty_cell" in f:
            rows[i]["split"] = None
    return rows, k


def write_csv(path: Path, rows: list[dict], f: set[str]) -> None:
    df = pd.DataFrame(rows)
    if "csv_no_label_column" in f:
        df = df.drop(columns=["label"])
    df.to_csv(path, index=False)
    if "csv_empty" in f:
        path.write_text("")
    elif "csv_header_only" in f:
        path.write_text(path.read_text().splitlines()[0] + "\n")
    elif "csv_junk" in f:
        path.write_bytes(b"\x00\xff\xfe,,\n\x00")


def csv_kwargs(f: set[str], k: int) -> dict:
    kwargs = {"label_column": "label", "class_names_column": "name", "fractions": (0.5, 0.25, 0.25)}
    if "split" in " ".join(f):
        kwargs["split_column"] = "split"
    if "declared_classes" in f:
        kwargs |= {"label_column": "name", "class_names_column": None, "classes": [f"c{j}" for j in range(k)]}
    return kwargs


def damage_one(files: list[Path], f: set[str], rng) -> None:
    for how in FILE_FAULTS:
        if how in f:
            damage(files[int(rng.integers(0, len(files)))], how, rng)
            return


# --- image folder + CSV ----------------------------------------------------------------------------


def write_png(path: Path, rng, mode: str) -> None:
    from PIL import Image

    h, w = (int(v) for v in rng.integers(1, 12, size=2))
    if mode.startswith("I;16"):  # a 16-bit file holding 8-bit values, or (the fault) real 16-bit values
        top = 65535 if mode == "I;16 wide" else 255
        Image.fromarray(rng.integers(0, top + 1, (h, w)).astype(np.uint16)).save(path)
        return
    arr = rng.integers(0, 256, (h, w, 4) if mode == "RGBA" else (h, w, 3)).astype(np.uint8)
    Image.fromarray(arr).convert(mode).save(path)


@settings(FUZZ, max_examples=int(250 * SCALE))
@given(data=st.data())
def fuzz_image_folder(counts: collections.Counter, data) -> None:
    draw = data.draw
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    f = faults(draw, [*CSV_FAULTS, "png_16bit"])
    rows, k = csv_rows(f, rng, draw)
    wide = int(rng.integers(0, len(rows))) if "png_16bit" in f else -1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = []
        for i, r in enumerate(rows):
            files.append(root / f"im{i}.png")
            r["Filename"] = files[-1].name
            mode = draw(st.sampled_from(["RGB", "RGB", "L", "RGBA", "P", "1", "I;16"]))
            write_png(files[-1], rng, "I;16 wide" if i == wide else mode)
        if "empty_file_cell" in f:
            rows[int(rng.integers(0, len(rows)))]["Filename"] = None
        damage_one(files, f, rng)
        write_csv(root / "labels.csv", rows, f)
        kwargs = csv_kwargs(f, k) | {
            "size": draw(st.sampled_from([4, 6])),
            "channels": draw(st.sampled_from([1, 3])),
        }
        outcome(counts, lambda: load_image_folder(root / "labels.csv", **kwargs))


def test_fuzz_image_folder(capsys):
    run_and_report("folder", fuzz_image_folder, capsys)


# --- NIfTI + CSV -----------------------------------------------------------------------------------

VOLUME_FAULTS = [
    "vol_nan",
    "vol_inf",
    "vol_2d",
    "vol_4d",
    "vol_4d_singleton",
    "vol_int16",
    "vol_zero",
    "vol_tiny",
]


def write_volume(path: Path, rng, shape: tuple[int, ...], dtype, poison: str | None) -> None:
    import nibabel as nib

    vol = (rng.uniform(0, 200, shape) * (rng.uniform(size=shape) > 0.3)).astype(dtype)
    if poison == "vol_zero":
        vol[...] = 0
    elif poison in ("vol_nan", "vol_inf"):
        vol = vol.astype(np.float32)
        vol.flat[int(rng.integers(0, vol.size))] = np.nan if poison == "vol_nan" else np.inf
    nib.save(nib.Nifti1Image(vol, np.eye(4)), path)


@settings(FUZZ, max_examples=int(200 * SCALE))
@given(data=st.data())
def fuzz_nifti_csv(counts: collections.Counter, data) -> None:
    draw = data.draw
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    f = faults(draw, CSV_FAULTS + VOLUME_FAULTS)
    rows, k = csv_rows(f, rng, draw)
    sequences = ["t1", "t2"][: draw(st.integers(1, 2))]
    odd = {"vol_2d": (6, 6), "vol_4d": (5, 5, 5, 2), "vol_4d_singleton": (5, 5, 5, 1), "vol_tiny": (1, 1, 1)}
    victim = int(rng.integers(0, len(rows)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = []
        for i, r in enumerate(rows):
            for seq in sequences:
                files.append(root / (f"s{i}_{seq}.nii" + (".gz" if draw(st.booleans()) else "")))
                r[seq] = files[-1].name
                mine = i == victim and seq == sequences[0]
                shape = next((odd[v] for v in odd if v in f and mine), (6, 5, 4))
                dtype = (
                    np.int16
                    if "vol_int16" in f
                    else draw(st.sampled_from([np.float32, np.float64, np.uint8]))
                )
                write_volume(
                    files[-1], rng, shape, dtype, next((v for v in VOLUME_FAULTS if v in f and mine), None)
                )
        if "empty_file_cell" in f:
            rows[victim][sequences[0]] = None
        damage_one(files, f, rng)
        write_csv(root / "x.csv", rows, f)
        kwargs = csv_kwargs(f, k) | {"sequence_columns": sequences, "size": 4}
        if draw(st.booleans()):
            outcome(counts, lambda: load_nifti_csv(root / "x.csv", **kwargs))
        else:
            outcome(counts, lambda: load_dataset({"kind": "nifti", "csv": str(root / "x.csv"), **kwargs}))


def test_fuzz_nifti_csv(capsys):
    run_and_report("nifti", fuzz_nifti_csv, capsys)
