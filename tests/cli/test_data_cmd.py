import pytest

from imbal.cli.main import main


def test_data_list_shows_local_files(data_root, monkeypatch, capsys):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("retinamnist"))
    assert "1080" in line and str(data_root) in line
    assert any(row.startswith("vesselmnist3d") and "3D" in row for row in out.splitlines())
    absent = next(row for row in out.splitlines() if row.startswith("pathmnist"))
    assert absent.rstrip().endswith("-")


def test_data_info_counts_and_ratio(data_root, monkeypatch, capsys):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    assert main(["data", "info", "vesselmnist3d"]) == 0
    out = capsys.readouterr().out
    assert "train n=  1335  counts=[1185, 150]  imbalance=7.9:1" in out
    assert "val   n=   191" in out and "3D, 1 channel(s)" in out


def test_data_info_class_names_minority_and_ratio(data_root, monkeypatch, capsys):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    assert main(["data", "info", "vesselmnist3d"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  class         train    val   test" in lines
    assert "  0 vessel       1185    169    339" in lines
    assert "  1 aneurysm      150     22     43  <- minority" in lines
    assert "  imbalance ratio (train, largest / smallest class): 7.9:1; minority class 1 aneurysm" in lines


def test_data_info_refuses_a_bad_npz_on_one_line(tmp_path, capsys):
    import numpy as np

    arrays = {f"{s}_images": np.zeros((6, 4, 4), np.uint8) for s in ("train", "val", "test")}
    arrays |= {f"{s}_labels": np.arange(6) % 3 for s in ("train", "val", "test")}
    arrays["test_labels"] = np.array([0, 1, 2, 9, 9, 0])
    np.savez(tmp_path / "x.npz", **arrays)
    assert main(["data", "info", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "test has label(s) outside the 3 classes 0..2 of the training split: 9 (2 samples)" in err


def test_data_info_synthetic_is_labelled(capsys):
    assert main(["data", "info", "synthetic"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out


def test_data_fetch_finds_local_and_fails_cleanly_offline(data_root, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    assert main(["data", "fetch", "retinamnist"]) == 0
    assert capsys.readouterr().out.strip().endswith("retinamnist.npz")
    import urllib.error

    import imbal.data.medmnist as mm

    def offline(*a, **k):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(mm.urllib.request, "urlopen", offline)
    monkeypatch.setenv("IMBAL_CACHE", str(tmp_path))
    assert main(["data", "fetch", "breastmnist"]) == 2
    assert "could not download" in capsys.readouterr().err


def test_unknown_subcommand_arguments():
    with pytest.raises(SystemExit):
        main(["report"])


def test_data_info_says_when_grades_are_ordinal(data_root, monkeypatch, capsys):
    monkeypatch.setenv("IMBAL_DATA", str(data_root))
    assert main(["data", "info", "retinamnist"]) == 0
    assert (
        "classes are ordinal grades: runs report the quadratic weighted kappa (qwk)"
        in capsys.readouterr().out
    )
    assert main(["data", "info", "vesselmnist3d"]) == 0
    assert "ordinal" not in capsys.readouterr().out
