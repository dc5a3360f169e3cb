"""`imbal predict`: the same probabilities as `imbal evaluate` on the same images (2D and 3D, every input
kind), streamed in batches, post-hoc values applied as stored, and every mismatching input refused by name."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import imbal.engine.predict as predict_mod
from imbal.calibration import scale_logits
from imbal.cli.main import main
from imbal.data import synthetic
from imbal.engine import run_dir as rd
from imbal.engine.config import load_config
from imbal.engine.trainer import train
from imbal.naming import SPLITS
from imbal.posthoc import adjust_logits


def medmnist_layout(images: torch.Tensor) -> np.ndarray:
    """(N, C, *spatial) uint8 as MedMNIST stores it: channels last, a single channel dropped."""
    a = images.numpy()
    return a[:, 0] if a.shape[1] == 1 else np.moveaxis(a, 1, -1)


def train_tiny(dataset, out, **kw):
    base = dict(dataset=dataset, widen_factor=0.125, epochs=1, batch_size=20, out=str(out), quiet=True)
    return train(load_config(None, {**base, **kw}))


def write_pngs(folder, splits):
    from PIL import Image

    rows = []
    for split in SPLITS:
        for i, (img, y) in enumerate(zip(splits[split].images, splits[split].labels)):
            name = f"{split}{i:03d}.png"
            Image.fromarray(np.moveaxis(img.numpy(), 0, -1)).save(folder / name)
            rows.append({"Filename": name, "Class_Int": int(y), "split": split})
    return pd.DataFrame(rows)


def write_volumes(folder, splits):
    import nibabel as nib

    rows = []
    for split in SPLITS:
        for i, (vol, y) in enumerate(zip(splits[split].images, splits[split].labels)):
            row = {"label": int(y), "split": split}
            for c, seq in enumerate(("t1", "t2")):
                padded = np.zeros((10, 10, 10), np.float32)  # background 0 around the 8^3 case
                padded[1:9, 1:9, 1:9] = vol[c].numpy().astype(np.float32) + 1  # + 1: all inside the mask
                nib.save(nib.Nifti1Image(padded, np.eye(4)), folder / f"{split}{i:03d}_{seq}.nii.gz")
                row[seq] = f"{split}{i:03d}_{seq}.nii.gz"
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny finished runs on every input kind, with the test split as new inputs (what predict reads)."""
    root = tmp_path_factory.mktemp("predict")
    out = {}
    for dims, channels, size in ((2, 3, 12), (3, 1, 8)):
        s = synthetic(dims, 160, (0.6, 0.3, 0.1), size=size, seed=dims, channels=channels)
        arrays = {f"{p}_images": medmnist_layout(s[p].images) for p in SPLITS}
        arrays |= {f"{p}_labels": s[p].labels.numpy() for p in SPLITS}
        np.savez(root / f"set{dims}d.npz", **arrays)
        np.savez(root / f"new{dims}d.npz", images=arrays["test_images"])  # labels are not needed
        run = train_tiny(str(root / f"set{dims}d.npz"), root / f"npz{dims}d")
        out[f"npz{dims}d"] = (run, [str(root / f"new{dims}d.npz")])
    images = root / "pngs"
    images.mkdir()
    frame = write_pngs(images, synthetic(2, 160, (0.6, 0.3, 0.1), size=12, seed=5, channels=3))
    frame.to_csv(images / "labels.csv", index=False)
    spec = {"kind": "folder", "csv": str(images / "labels.csv"), "size": 12, "split_column": "split"}
    out["folder"] = (
        train_tiny(spec, root / "folder"),
        [str(images / f) for f in frame.Filename[frame.split == "test"]],
    )
    volumes = root / "volumes"
    volumes.mkdir()
    cases = write_volumes(volumes, synthetic(3, 120, (0.6, 0.3, 0.1), size=8, seed=6, channels=2))
    cases.to_csv(volumes / "cases.csv", index=False)
    cases[cases.split == "test"].drop(columns=["label", "split"]).to_csv(volumes / "new.csv", index=False)
    spec = {"kind": "nifti", "csv": str(volumes / "cases.csv"), "sequence_columns": ["t1", "t2"], "size": 8}
    spec["split_column"] = "split"
    out["nifti"] = (train_tiny(spec, root / "nifti"), [str(volumes / "new.csv")])
    out["root"] = root
    return out


def evaluated_probs(run, tmp_path):
    assert main(["evaluate", str(run), "--split", "test", "--out", str(tmp_path / "ev")]) == 0
    with np.load(tmp_path / "ev" / rd.outputs_file("test")) as z:
        return torch.from_numpy(z["logits"])


def prob_columns(frame):
    return frame[[c for c in frame.columns if c.startswith("prob_")]].to_numpy()


@pytest.mark.parametrize("kind", ["npz2d", "npz3d", "folder", "nifti"])
def test_predict_equals_evaluate_on_the_same_images(runs, kind, tmp_path, capsys):
    run, inputs = runs[kind]
    logits = evaluated_probs(run, tmp_path)
    assert main(["predict", str(run), *inputs, "--out", str(tmp_path / "p.csv")]) == 0
    got = pd.read_csv(tmp_path / "p.csv")
    assert len(got) == len(logits)
    np.testing.assert_allclose(prob_columns(got), logits.softmax(-1).numpy(), rtol=0, atol=1e-6)
    class_names = json.loads((run / rd.METRICS_FILE).read_text())["dataset"]["class_names"]
    assert list(got.columns) == ["input"] + [f"prob_{c}" for c in class_names] + ["prediction"]
    assert got.prediction.astype(str).tolist() == [class_names[k] for k in logits.argmax(-1).tolist()]
    assert f"{len(got)} input(s) -> " in capsys.readouterr().out


def test_folder_streams_in_batches_and_lists_skipped_files(runs, tmp_path, monkeypatch, capsys):
    run, _ = runs["folder"]
    folder = runs["root"] / "pngs"
    assert main(["predict", str(run), str(folder), "--out", str(tmp_path / "all.csv")]) == 0
    assert (
        "skipped 1 entry of the input folders:\n  labels.csv: not an image or NIfTI file\n"
        in capsys.readouterr().out
    )
    decoded, seen = [], []
    decode = predict_mod.decode
    monkeypatch.setattr(predict_mod, "decode", lambda item, want: decoded.append(1) or decode(item, want))
    forward = predict_mod.Classifier.features
    monkeypatch.setattr(
        predict_mod.Classifier, "features", lambda m, x: seen.append(len(decoded)) or forward(m, x)
    )
    assert (
        main(["predict", str(run), str(folder), "--batch-size", "16", "--out", str(tmp_path / "b.csv")]) == 0
    )
    n = len(list(folder.glob("*.png")))
    assert len(seen) == -(-n // 16)
    # at most one batch decoded ahead of the model: never the whole folder first
    assert all(done <= 16 * (k + 2) for k, done in enumerate(seen)) and seen[0] <= 32 < n
    whole, batched = pd.read_csv(tmp_path / "all.csv"), pd.read_csv(tmp_path / "b.csv")
    assert whole.input.tolist() == sorted(whole.input) and len(whole) == n
    np.testing.assert_allclose(prob_columns(whole), prob_columns(batched), rtol=0, atol=1e-6)


def test_posthoc_applies_the_stored_temperature_and_tau(runs, tmp_path, capsys):
    run, inputs = runs["npz2d"]
    logits = evaluated_probs(run, tmp_path)
    stored = json.loads((run / rd.POSTHOC).read_text())
    assert main(["predict", str(run), *inputs, "--posthoc", "--out", str(tmp_path / "p.csv")]) == 0
    assert "post hoc from posthoc.json: temperature" in capsys.readouterr().out
    got = pd.read_csv(tmp_path / "p.csv")
    scaled = scale_logits(logits, stored["temperature"]).softmax(-1).numpy()
    np.testing.assert_allclose(prob_columns(got), scaled, rtol=0, atol=1e-6)
    adjusted = adjust_logits(logits, stored["train_counts"], stored["tau"]).argmax(-1)
    names = json.loads((run / rd.METRICS_FILE).read_text())["dataset"]["class_names"]
    assert got.prediction_posthoc.astype(str).tolist() == [names[k] for k in adjusted.tolist()]
    assert got.prediction.astype(str).tolist() == [names[k] for k in logits.argmax(-1).tolist()]
    # a run finished before posthoc.json existed: the same values, fit from its stored validation outputs
    old = tmp_path / "old_run"
    shutil.copytree(run, old)
    (old / rd.POSTHOC).unlink()
    assert main(["predict", str(old), *inputs, "--posthoc", "--out", str(tmp_path / "q.csv")]) == 0
    assert "fit now from outputs_val.npz" in capsys.readouterr().out
    assert not (old / rd.POSTHOC).exists()  # predict never writes into a run folder
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "q.csv"), got)


def _png(path, size=12, mode="RGB"):
    from PIL import Image

    Image.new(mode, (size, size)).save(path)
    return path


def _nifti(path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), path)
    return path


REFUSALS = [
    ("npz2d", lambda d: np.savez(d / "small.npz", images=np.zeros((4, 10, 10, 3), np.uint8)) or d / "small.npz",
     r"small.npz: images are \(C, \*spatial\) = \(3, 10, 10\); the run takes \(3, 12, 12\)"),
    ("npz2d", lambda d: np.savez(d / "gray.npz", images=np.zeros((4, 12, 12), np.uint8)) or d / "gray.npz",
     r"gray.npz: images are \(C, \*spatial\) = \(1, 12, 12\); the run takes \(3, 12, 12\)"),
    ("npz3d", lambda d: np.savez(d / "flat.npz", images=np.zeros((4, 8, 8), np.uint8)) or d / "flat.npz",
     r"flat.npz: images of shape \(4, 8, 8\) do not fit spatial_dims=3"),
    ("npz2d", lambda d: np.savez(d / "other.npz", test_images=np.zeros((4, 12, 12, 3), np.uint8)) or d / "other.npz",
     r"other.npz has no 'images' array \(it has \['test_images'\]\)"),
    ("npz3d", lambda d: _png(d / "slice.png"), r"slice.png is a 2D image; the run takes 3D volumes"),
    ("npz2d", lambda d: _nifti(d / "vol.nii.gz"), r"vol.nii.gz is a NIfTI volume; the run takes 2D images"),
    ("nifti", lambda d: _nifti(d / "t1only.nii.gz"), r"t1only.nii.gz: one volume is one channel; the run takes 2 sequences \(t1, t2\)"),
    ("nifti", lambda d: (d / "c.csv").write_text("t1\nx.nii.gz\n") and d / "c.csv",
     r"c.csv: sequence column 't2' not in CSV columns \['t1'\]"),
    ("nifti", lambda d: (d / "m.csv").write_text("t1,t2\na.nii.gz,b.nii.gz\n") and d / "m.csv",
     r"m.csv line 2, column 't1': volume .*a.nii.gz does not exist"),
    ("folder", lambda d: (d / "broken.png").write_bytes(b"\x89PNG not really") and d / "broken.png",
     r"broken.png is not a readable image"),
    ("folder", lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", r"notes.txt: not an input predict reads"),
    ("folder", lambda d: d / "nowhere.png", r"input .*nowhere.png does not exist"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "make", "message"), REFUSALS)
def test_mismatching_or_unreadable_inputs_are_refused_by_name(runs, kind, make, message, tmp_path, capsys):
    run, inputs = runs[kind]
    bad = make(tmp_path)
    out = tmp_path / "p.csv"
    # the bad input after good ones: nothing is written, whatever came first
    assert main(["predict", str(run), *inputs, str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("imbal: error: ")
    assert re.search(message, err), err
    assert not out.exists()


def test_unfinished_run_is_refused(runs, tmp_path, capsys):
    run, inputs = runs["npz2d"]
    half = tmp_path / "half"
    shutil.copytree(run, half)
    (half / rd.METRICS_FILE).unlink()
    assert main(["predict", str(half), *inputs, "--out", str(tmp_path / "p.csv")]) == 2
    assert "has not finished (no metrics.json); predict needs a finished run" in capsys.readouterr().err


# ---------------------------------------------------------------- nothing lost (issue 30)


def test_out_never_replaces_an_input_or_a_run_file(runs, tmp_path, capsys):
    run, inputs = runs["folder"]
    image = tmp_path / "x.png"
    shutil.copy(inputs[0], image)
    before = image.read_bytes()
    assert main(["predict", str(run), str(image), "--out", str(image)]) == 2
    assert "x.png is one of the inputs; write to another file" in capsys.readouterr().err
    assert image.read_bytes() == before
    # a link to an input is the input
    (tmp_path / "link.csv").symlink_to(image)
    assert main(["predict", str(run), str(image), "--out", str(tmp_path / "link.csv")]) == 2
    assert image.read_bytes() == before
    # the cases CSV of NIfTI inputs, and the volumes it names
    nifti_run, (cases,) = runs["nifti"]
    text = Path(cases).read_text()
    assert main(["predict", str(nifti_run), cases, "--out", cases]) == 2
    assert "is one of the inputs" in capsys.readouterr().err and Path(cases).read_text() == text
    # a run's own files
    metrics = (run / rd.METRICS_FILE).read_text()
    for target in (run / rd.METRICS_FILE, run / "evaluations" / "p.csv", run / "new.csv"):
        assert main(["predict", str(run), str(image), "--out", str(target)]) == 2
        assert f"lies inside the run folder {run}" in capsys.readouterr().err
        assert not (run / "new.csv").exists()
    assert (run / rd.METRICS_FILE).read_text() == metrics


def test_out_must_be_a_regular_file_and_is_followed_through_a_link(runs, tmp_path, capsys):
    run, inputs = runs["npz2d"]
    for target, said in ((tmp_path, "is a folder, not a regular file"), ("/dev/full", "is a device, pipe or socket"),
                         ("", "--out is empty")):  # fmt: skip
        assert main(["predict", str(run), *inputs, "--out", str(target)]) == 2
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, err
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")
    # a link is followed: its target gets the CSV, the link stays a link
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    (tmp_path / "link.csv").symlink_to(real)
    assert main(["predict", str(run), *inputs, "--out", str(tmp_path / "link.csv")]) == 0
    assert (tmp_path / "link.csv").is_symlink() and real.read_text().startswith("input,")
    # - writes the CSV to standard output, the summary to standard error
    capsys.readouterr()
    assert main(["predict", str(run), *inputs, "--out", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out == real.read_text() and "input(s) -> standard output" in captured.err


def test_an_unwritable_out_is_one_line(runs, tmp_path, capsys):
    run, inputs = runs["npz2d"]
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # root writes into a read-only folder; nobody creates files in /sys
    target = Path("/sys") if os.geteuid() == 0 else locked
    assert main(["predict", str(run), *inputs, "--out", str(target / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "cannot be written: Permission denied" in err and err.count("\n") == 1


BAD_POSTHOC = [
    ({"temperature": 1e-300}, r"temperature is 1e-300, not a number in \[0.05, 20\]"),
    ({"temperature": -1.0}, r"temperature is -1.0, not a number in \[0.05, 20\]"),
    ({"temperature": None}, r"temperature is None"),  # a NaN in JSON is written as null
    ({"tau": -50}, r"tau is -50, not a number in \[0, 3\]"),
    ({"tau": 1e308}, r"tau is 1e\+308, not a number in \[0, 3\]"),
    ({"train_counts": [1]}, r"train_counts is \[1\], not 3 training counts"),
    ({"tau_metric": 3}, r"tau_metric is 3, not a metric name"),
]


@pytest.mark.parametrize(("change", "message"), BAD_POSTHOC)
def test_posthoc_values_outside_a_fits_range_are_refused(runs, tmp_path, change, message, capsys):
    run, inputs = runs["npz2d"]
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    record = json.loads((copy / rd.POSTHOC).read_text())
    (copy / rd.POSTHOC).write_text(json.dumps({**record, **change}))
    out = tmp_path / "p.csv"
    assert main(["predict", str(copy), *inputs, "--posthoc", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "posthoc.json" in err and err.count("\n") == 1, err
    assert not out.exists()
    # a missing key is the same one line
    del record["temperature"]
    (copy / rd.POSTHOC).write_text(json.dumps(record))
    assert main(["predict", str(copy), *inputs, "--posthoc", "--out", str(out)]) == 2
    assert "temperature is None" in capsys.readouterr().err


def test_an_npz_without_images_and_batch_size_zero_are_refused(runs, tmp_path, capsys):
    run, inputs = runs["npz2d"]
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 12, 12, 3), np.uint8))
    assert main(["predict", str(run), str(tmp_path / "empty.npz"), "--out", str(tmp_path / "p.csv")]) == 2
    assert "its 'images' array holds no images; nothing to predict" in capsys.readouterr().err
    assert main(["predict", str(run), *inputs, "--batch-size", "0", "--out", str(tmp_path / "p.csv")]) == 2
    assert "--batch-size must be >= 1, got 0" in capsys.readouterr().err


def test_every_skipped_folder_entry_is_listed(runs, tmp_path, capsys):
    run, inputs = runs["folder"]
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(inputs[0], folder / "a.png")
    (folder / "sub").mkdir()
    shutil.copy(inputs[1], folder / "sub" / "b.png")
    (folder / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    assert main(["predict", str(run), str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    out = capsys.readouterr().out
    assert "skipped 3 entries of the input folders:" in out
    assert "  dangling.png: a link to nothing (dangling)" in out
    assert "  loop.png: a link" in out and "loop" in out.split("loop.png:")[1].splitlines()[0]
    assert "  sub: a folder (input folders are not searched recursively)" in out
    assert len(pd.read_csv(tmp_path / "p.csv")) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello\n", "best.ckpt is not a readable checkpoint"),
        ("list", "best.ckpt is not a checkpoint imbal wrote (it has no model, model_config, config)"),
        (
            "code",
            "it is not a checkpoint imbal wrote, and loading it could run its author's code; do not trust it",
        ),
    ],
)
def test_a_checkpoint_imbal_did_not_write_is_one_line(runs, tmp_path, content, message, capsys):
    run, inputs = runs["npz2d"]
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    if content == "list":
        torch.save([1, 2, 3], copy / rd.BEST)
    elif content == "code":
        torch.save({"model": warm_payload()}, copy / rd.BEST)
    else:
        (copy / rd.BEST).write_bytes(content)
    assert main(["predict", str(copy), *inputs, "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert "weights_only=False" not in err


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def warm_payload():
    return _Payload()
