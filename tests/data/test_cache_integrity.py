"""Caches under races and tampering: concurrent prepares, replaced or flipped files, bad manifests, advice."""

import json

import numpy as np
import pytest
import torch

import imbal.data.load
from imbal.cli.main import main
from imbal.data import load_dataset
from imbal.data.cache import MANIFEST, load_cache
from imbal.data.prepare import prepare_cache
from imbal.errors import DataError

SPEC_A = {"kind": "synthetic", "spatial_dims": 3, "n": 40, "size": 8, "seed": 1}
SPEC_B = {"kind": "synthetic", "spatial_dims": 3, "n": 40, "size": 8, "seed": 2}


def _while_building(monkeypatch, spec, action):
    """Run ``action`` once, after ``spec`` is decoded and before its cache is renamed into place."""
    real = imbal.data.load.load_dataset  # prepare.py looks it up in its home module at each build

    def load(source, **kw):
        splits = real(source, **kw)
        if source == spec:
            monkeypatch.setattr(imbal.data.load, "load_dataset", real)
            action()
        return splits

    monkeypatch.setattr(imbal.data.load, "load_dataset", load)


def _source(out):
    return json.loads((out / MANIFEST).read_text())["source"]


def test_a_prepare_finishing_second_never_replaces_another_source(tmp_path, monkeypatch):
    out = tmp_path / "c"
    _while_building(monkeypatch, SPEC_A, lambda: prepare_cache(SPEC_B, out))
    with pytest.raises(
        DataError, match=r"another prepare built a cache of .*\"seed\": 2.* while this one built"
    ):
        prepare_cache(SPEC_A, out)
    assert _source(out) == SPEC_B
    assert not list(tmp_path.glob(".c.*"))  # our build is cleaned up


def test_a_prepare_finishing_second_of_the_same_source_reuses(tmp_path, monkeypatch):
    out = tmp_path / "c"
    _while_building(monkeypatch, SPEC_A, lambda: prepare_cache(SPEC_A, out))
    assert prepare_cache(SPEC_A, out) == (out, True)
    assert _source(out) == SPEC_A


def test_force_replaces_only_the_cache_it_judged(tmp_path, monkeypatch):
    out, _ = prepare_cache(SPEC_A, tmp_path / "c")
    third = {**SPEC_A, "seed": 3}
    _while_building(monkeypatch, SPEC_B, lambda: prepare_cache(third, out, force=True))
    with pytest.raises(DataError, match="was replaced by another prepare while this one built"):
        prepare_cache(SPEC_B, out, force=True)
    assert _source(out) == third


def _flip(path, at=-1):
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_label_byte_is_refused_on_every_load(tmp_path):
    out, _ = prepare_cache(SPEC_A, tmp_path / "c")
    # a label byte that stays a valid label: the value 1 becomes 0 (same size, same header)
    labels = np.load(out / "train_labels.npy")
    k = int(np.flatnonzero(labels == 1)[0])
    raw = bytearray((out / "train_labels.npy").read_bytes())
    offset = len(raw) - labels.nbytes + 8 * k
    raw[offset] ^= 0x01
    (out / "train_labels.npy").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="train_labels.npy fails its sha256 checksum"):
        load_cache(out)
    with pytest.raises(DataError, match="train_labels.npy fails its sha256 checksum"):
        prepare_cache(SPEC_A, out)  # a plain prepare does not reuse it either


def test_manifest_edit_is_refused(tmp_path):
    out, _ = prepare_cache(SPEC_A, tmp_path / "c")
    m = json.loads((out / MANIFEST).read_text())
    m["class_names"] = ["a", "b"]
    (out / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(DataError, match=r"manifest.json does not match its checksum"):
        load_cache(out)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(num_classes="five"), r"num_classes must be an integer >= 2, got 'five'"),
        (lambda m: m.pop("class_names"), r"lacks 'class_names'"),
        (lambda m: m["splits"]["val"].update(count=None), r"splits.val.count must be an integer >= 0"),
        (lambda m: m["files"].pop("test_labels.npy"), r"lacks 'files.test_labels.npy"),
        (lambda m: m.update(spatial_size="28"), r"spatial_size must be a list of integers"),
    ],
)
def test_manifest_with_wrong_types_is_one_line(tmp_path, capsys, edit, message):
    out, _ = prepare_cache(SPEC_A, tmp_path / "c")
    m = json.loads((out / MANIFEST).read_text())
    m.pop("checksum", None)  # as an older imbal wrote them: the types are still checked
    edit(m)
    (out / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(DataError, match=message):
        load_cache(out)
    assert main(["data", "info", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imbal: error: ") and err.count("\n") == 1


def test_prepare_into_an_unwritable_place_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    spec = json.dumps(SPEC_A)
    assert main(["data", "prepare", spec, "--out", str(tmp_path / "file" / "c")]) == 2
    err = capsys.readouterr().err
    assert "cannot create" in err and err.count("\n") == 1


def test_a_folder_of_other_files_gets_the_right_advice(tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    for argv in (
        ["data", "prepare", str(folder), "--out", str(tmp_path / "c")],
        ["data", "info", str(folder)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is not a prepared cache" in err and "a.txt" in err and "--force" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="is an empty folder, not a prepared cache"):
        load_dataset(str(empty))


def test_a_replaced_cache_stops_its_reader(tmp_path):
    out, _ = prepare_cache(SPEC_A, tmp_path / "c")
    splits = load_cache(out)
    first = splits.train.images[0:2]
    assert torch.equal(first, load_dataset(SPEC_A).train.images[0:2])
    prepare_cache(SPEC_B, out, force=True)
    with pytest.raises(DataError, match=r"train_images.npy changed while it was being read"):
        splits.train.images[0:2]
