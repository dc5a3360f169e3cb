"""`imbal export`: the exported ONNX / TorchScript model gives `imbal predict`'s probabilities (2D and 3D,
batch 1 and 7), its preprocessing.json is enough to build predict's input from a PNG or a NIfTI file
with plain readers, and every refusal (missing extra, failed parity, a bad --out) writes nothing."""

import importlib
import io
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

import imbal.export.bundle as bundle_mod
from imbal.cli.main import main
from imbal.data import synthetic
from imbal.data.inputs import collect_inputs, decode
from imbal.engine import run_dir as rd
from imbal.export import onnx_export
from imbal.export.source import load_run
from tests.engine.test_predict import train_tiny, write_pngs, write_volumes

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2D run on a folder of PNGs and a 3D run (trained with crops) on two-channel NIfTI cases, with test inputs."""
    root = tmp_path_factory.mktemp("export")
    pngs, volumes = root / "pngs", root / "volumes"
    pngs.mkdir()
    volumes.mkdir()
    frame = write_pngs(pngs, synthetic(2, 160, (0.6, 0.3, 0.1), size=12, seed=5, channels=3))
    frame.to_csv(pngs / "labels.csv", index=False)
    spec = {"kind": "folder", "csv": str(pngs / "labels.csv"), "size": 12, "split_column": "split"}
    cases = write_volumes(volumes, synthetic(3, 120, (0.6, 0.3, 0.1), size=8, seed=6, channels=2))
    cases.to_csv(volumes / "cases.csv", index=False)
    new = cases[cases.split == "test"].head(7).drop(columns=["label", "split"])
    new.to_csv(volumes / "new.csv", index=False)
    nifti = {"kind": "nifti", "csv": str(volumes / "cases.csv"), "sequence_columns": ["t1", "t2"], "size": 8}
    nifti["split_column"] = "split"
    return {
        2: (
            train_tiny(spec, root / "run2d"),
            [str(pngs / f) for f in frame.Filename[frame.split == "test"][:7]],
        ),
        3: (
            train_tiny(nifti, root / "run3d", crop_size=6),
            [str(volumes / "new.csv")],
        ),  # the crop: in the graph
        "root": root,
    }


def run_model(path: Path, fmt: str, images: np.ndarray) -> np.ndarray:
    """The exported file run by its own runtime, not by imbal's parity code."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["probabilities"], {"images": images})[0]
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(torch.from_numpy(images))[1].numpy()


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("dims", [2, 3])
def test_export_gives_predicts_probabilities_at_batch_1_and_7(runs, dims, fmt, tmp_path, capsys):
    run, inputs = runs[dims]
    out = tmp_path / "export"
    assert main(["export", str(run), "--format", fmt, "--out", str(out), "--check-images", "7"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [FORMATS[fmt], "preprocessing.json", "MODEL_CARD.md"]
    )
    assert "parity on 7 image(s)" in capsys.readouterr().out
    assert main(["predict", str(run), *inputs, "--out", str(tmp_path / "p.csv")]) == 0
    frame = pd.read_csv(tmp_path / "p.csv")
    want = frame[[c for c in frame.columns if c.startswith("prob_")]].to_numpy()
    items, _ = collect_inputs(inputs, load_run(run).want)
    x = np.stack([decode(item, load_run(run).want) for item in items]).astype(np.float32) / 255
    assert len(x) == 7
    for size in (1, 7):
        got = np.concatenate([run_model(out / FORMATS[fmt], fmt, x[i : i + size]) for i in range(0, 7, size)])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    spec = json.loads((out / "preprocessing.json").read_text())
    assert spec["input"]["shape"] == ["batch", 3 if dims == 2 else 2, *([12, 12] if dims == 2 else [8, 8, 8])]
    assert spec["parity"]["batch_sizes"] == [1, 7] and spec["parity"]["max_abs_difference"] <= 1e-5
    assert spec["parity"]["max_logit_difference_relative"] <= 1e-4
    assert spec["class_names"] == ["0", "1", "2"]
    assert spec["input"]["channel_order"] == (["red", "green", "blue"] if dims == 2 else ["t1", "t2"])
    assert spec["input"]["centre_crop"] == ({"size": 6, "inside_model": True} if dims == 3 else None)
    assert spec["posthoc"]["applied_in_model"] is False and spec["posthoc"]["temperature"] > 0
    text = (out / "preprocessing.json").read_text() + (out / "MODEL_CARD.md").read_text()
    assert str(runs["root"]) not in text and os.path.expanduser("~") + "/" not in text


def plain_png(path: Path, spec: dict) -> np.ndarray:
    """A PNG decoded from preprocessing.json's words alone, with PIL and numpy."""
    from PIL import Image

    files = spec["decode"]["image_files"]
    size = (files["resize"]["width"], files["resize"]["height"])
    img = Image.open(path).convert(files["convert"]).resize(size, Image.Resampling.BILINEAR)
    a = np.asarray(img, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
    return a.astype(np.float32) / 255


def plain_nifti(paths: list[Path], spec: dict) -> np.ndarray:
    """A case decoded from preprocessing.json's words alone, with nibabel and numpy."""
    want = spec["decode"]["nifti_volumes"]["size"]
    channels = []
    for path in paths:
        v = np.asanyarray(nib.load(path).dataobj).astype(np.float64)
        mask = v != 0
        lo, hi = v[mask].min(), v[mask].max()
        x = np.where(mask, np.clip((v - lo) / (hi - lo), 0, 1) if hi > lo else 1.0, 0.0)
        for axis, n in enumerate(want):
            have = x.shape[axis]
            if have > n:
                x = np.take(x, range((have - n) // 2, (have - n) // 2 + n), axis=axis)
            elif have < n:
                pad = [(0, 0)] * 3
                pad[axis] = ((n - have) // 2, n - have - (n - have) // 2)
                x = np.pad(x, pad)
        channels.append(np.rint(x * 255).astype(np.uint8))
    return np.stack(channels).astype(np.float32) / 255


def test_preprocessing_json_rebuilds_predicts_input_from_a_png_and_a_nifti_case(runs, tmp_path):
    from PIL import Image

    run2, _ = runs[2]
    assert main(["export", str(run2), "--format", "torchscript", "--out", str(tmp_path / "e2")]) == 0
    spec = json.loads((tmp_path / "e2" / "preprocessing.json").read_text())
    rng = np.random.default_rng(0)
    odd = tmp_path / "odd.png"  # another size and a grey file: converted and resized as the JSON says
    Image.fromarray(rng.integers(0, 256, (17, 23), dtype=np.uint8)).save(odd)
    for png in (odd, Path(runs[2][1][0])):
        (item,), _ = collect_inputs([png], load_run(run2).want)
        np.testing.assert_array_equal(
            plain_png(png, spec), decode(item, load_run(run2).want) / np.float32(255)
        )

    run3, inputs = runs[3]
    assert main(["export", str(run3), "--format", "torchscript", "--out", str(tmp_path / "e3")]) == 0
    spec = json.loads((tmp_path / "e3" / "preprocessing.json").read_text())
    assert spec["decode"]["nifti_volumes"]["channels"] == ["t1", "t2"] and spec["input"]["layout"] == "NCDHW"
    items, _ = collect_inputs(inputs, load_run(run3).want)
    table = pd.read_csv(inputs[0])
    folder = Path(inputs[0]).parent
    for item, (_, row) in zip(items, table.iterrows()):
        got = plain_nifti([folder / row[c] for c in spec["decode"]["nifti_volumes"]["channels"]], spec)
        np.testing.assert_array_equal(got, decode(item, load_run(run3).want) / np.float32(255))


def test_onnx_without_its_extra_is_one_line_and_writes_nothing(runs, tmp_path, monkeypatch, capsys):
    real = importlib.import_module

    def without_onnxruntime(name, *a, **k):
        if name == "onnxruntime":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(onnx_export.importlib, "import_module", without_onnxruntime)
    out = tmp_path / "e"
    assert main(["export", str(runs[2][0]), "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "needs onnxruntime, which is not installed: pip install 'imbal[export]'" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "output,shift,message",
    [
        (1, 3e-4, "differs from PyTorch by 0.0003 (tolerance 1e-05) in the probability of class '1'"),
        # the probabilities unchanged: a logit error a saturated softmax would hide
        (
            0,
            5e-3,
            r"differs from PyTorch by 0.005 (tolerance 0.0001 x max(1, |logit|)) in the logit of class '1'",
        ),
    ],
)
def test_a_parity_failure_names_the_difference_and_writes_nothing(
    runs, tmp_path, monkeypatch, capsys, output, shift, message
):
    real = bundle_mod.FORMATS["torchscript"]

    def off_by_a_bit(data, threads):
        run = real.runner(data, threads)

        def shifted(x):
            outs = list(run(x))
            outs[output] = outs[output] + np.float32(shift) * (np.arange(3) == 1)
            return tuple(outs)

        return shifted

    off = bundle_mod.Format(**{**real.__dict__, "runner": off_by_a_bit})
    monkeypatch.setitem(bundle_mod.FORMATS, "torchscript", off)
    out = tmp_path / "e"
    out.mkdir()
    assert main(["export", str(runs[2][0]), "--format", "torchscript", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing was written" in err and list(out.iterdir()) == []


def test_out_folders_that_are_refused_stay_as_they_were(runs, tmp_path, capsys):
    run = str(runs[2][0])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    cases = {
        str(busy): "is not empty (notes.txt); --overwrite replaces an earlier export",
        str(Path(run) / "export"): "lies inside the run folder",
        str(busy / "notes.txt"): "is a file, not a folder",
    }
    for out, message in cases.items():
        assert main(["export", run, "--format", "torchscript", "--out", out]) == 2
        assert message in capsys.readouterr().err
    assert main(["export", run, "--format", "torchscript", "--out", str(busy), "--overwrite"]) == 2
    assert "holds files that are not an export's (notes.txt)" in capsys.readouterr().err
    assert (busy / "notes.txt").read_text() == "mine" and not (Path(run) / "export").exists()


def test_overwrite_replaces_an_earlier_export_and_only_its_files(runs, tmp_path):
    run, out = str(runs[2][0]), tmp_path / "e"
    assert main(["export", run, "--format", "onnx", "--out", str(out)]) == 0
    assert main(["export", run, "--format", "torchscript", "--out", str(out)]) == 2
    assert main(["export", run, "--format", "torchscript", "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "model.pt", "preprocessing.json"]
    module = torch.jit.load(io.BytesIO((out / "model.pt").read_bytes()))
    logits, probs = module(torch.rand(5, 3, 12, 12))
    assert logits.shape == probs.shape == (5, 3)


def test_an_unfinished_run_and_a_broken_checkpoint_are_refused(runs, tmp_path, capsys):
    run, out = tmp_path / "run", str(tmp_path / "o")
    run.mkdir()
    (run / rd.BEST).write_bytes((runs[2][0] / rd.BEST).read_bytes())  # no metrics.json yet
    assert main(["export", str(run), "--format", "torchscript", "--out", out]) == 2
    assert "has not finished" in capsys.readouterr().err
    (run / rd.BEST).write_bytes(b"")
    assert main(["export", str(run), "--format", "torchscript", "--out", out]) == 2
    assert "is not a readable checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_names_have_one_home_and_a_users_three_channels_are_not_called_rgb():
    from types import SimpleNamespace

    from imbal.data.inputs import Expected
    from imbal.export.preprocessing import _channel_order
    from imbal.naming import EXECUTORS, EXPORT_FORMATS
    from imbal.study.run import cluster

    assert tuple(bundle_mod.FORMATS) == EXPORT_FORMATS and cluster.EXECUTORS is EXECUTORS
    want = Expected(3, (12, 12))
    assert _channel_order(SimpleNamespace(want=want, cfg=SimpleNamespace(dataset="retinamnist"))) == [
        "red",
        "green",
        "blue",
    ]
    mine = SimpleNamespace(want=want, cfg=SimpleNamespace(dataset="/data/mine.npz"))
    assert _channel_order(mine) == [f"channel {k} of the training data" for k in range(3)]
